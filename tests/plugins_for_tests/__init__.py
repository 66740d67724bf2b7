"""Plugins that exist only to test the plugin contract, loaded by dotted path like any third-party plugin."""
