"""A module named in PLUGINS that forgot to expose `plugin`."""
