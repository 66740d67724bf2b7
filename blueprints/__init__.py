"""Feature plugins. Each package exposes one `plugin` object; config.PLUGINS says which ones load."""
