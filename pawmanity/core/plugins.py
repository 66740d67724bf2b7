"""The plugin contract: each feature package exposes one `plugin` object; config lists which ones load.

A plugin is found by dotted path (`blueprints.auth`, or `acme_clinic.pawmanity_plugin` from another package),
so adding one never means editing this module. Requirements are checked before anything registers, and plugins
register in dependency order.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask


class PluginError(RuntimeError):
    """A plugin list that cannot start: a module without a plugin, a missing requirement, a cycle."""


@dataclass(frozen=True)
class Plugin:
    name: str
    register: Callable[[Flask], None]
    requires: tuple[str, ...] = field(default=())


def import_plugin(path):
    try:
        module = importlib.import_module(path)
    except ImportError as error:
        raise PluginError(f"plugin '{path}' could not be imported: {error}") from error
    plugin = getattr(module, "plugin", None)
    if not isinstance(plugin, Plugin):
        raise PluginError(f"module '{path}' has no `plugin = Plugin(...)` object")
    return plugin


def resolve_order(plugins):
    """Plugins in an order where each comes after what it requires; a clear error for anything missing."""
    by_name = {}
    for plugin in plugins:
        if plugin.name in by_name:
            raise PluginError(f"two plugins are named '{plugin.name}'")
        by_name[plugin.name] = plugin
    for plugin in plugins:
        missing = [name for name in plugin.requires if name not in by_name]
        if missing:
            raise PluginError(
                f"plugin '{plugin.name}' requires {', '.join(repr(m) for m in missing)}, which "
                f"{'is' if len(missing) == 1 else 'are'} not in PLUGINS ({', '.join(by_name)}); add it to PLUGINS "
                f"or PAWMANITY_PLUGINS"
            )
    ordered, visiting, done = [], set(), set()

    def visit(plugin):
        if plugin.name in done:
            return
        if plugin.name in visiting:
            raise PluginError(f"plugins require each other in a cycle through '{plugin.name}'")
        visiting.add(plugin.name)
        for name in plugin.requires:
            visit(by_name[name])
        visiting.discard(plugin.name)
        done.add(plugin.name)
        ordered.append(plugin)

    for plugin in plugins:
        visit(plugin)
    return ordered


def load_plugins(app, paths):
    plugins = resolve_order([import_plugin(path) for path in paths])
    for plugin in plugins:
        plugin.register(app)
    app.extensions["pawmanity.plugins"] = {plugin.name: plugin for plugin in plugins}
    return plugins
