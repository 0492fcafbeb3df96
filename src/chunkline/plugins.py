"""Plugin loading: the built-in stage plugins, installed entry-point plugins, and blocking."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType

import pluggy

from . import hookspecs
from ._version import __version__
from .errors import PluginError

__all__ = [
    "DEFAULT_PLUGINS",
    "DISABLE_ENV",
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "make_plugin_manager",
]

ENTRY_POINT_GROUP = "chunkline"
DISABLE_ENV = "CHUNKLINE_DISABLE_PLUGINS"

# The built-in stages and policies are plugins like any other (as pytest's default_plugins):
# each module implements the registration hooks and can be blocked or replaced by name.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "chunkline.builtins.parse",
    "chunkline.builtins.decode",
    "chunkline.builtins.thinking",
    "chunkline.builtins.tool_calls",
    "chunkline.builtins.chunker",
    "chunkline.builtins.policies",
    "chunkline.builtins.finish",
    "chunkline.builtins.usage",
    "chunkline.builtins.envelope",
    "chunkline.builtins.serialize",
    "chunkline.builtins.chat_parse",
    "chunkline.builtins.chat_decode",
    "chunkline.builtins.anthropic_encode",
    "chunkline.builtins.responses_encode",
)


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """An installed or built-in plugin: its name, where it comes from, its version, and the
    stages and chunking policies it registers (a pipeline's ``plugins`` fills these in)."""

    name: str
    source: str
    version: str | None
    stages: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()


def make_plugin_manager(
    plugins: Iterable[object] = (),
    *,
    load_entrypoints: bool = True,
    block: Iterable[str] = (),
) -> tuple[pluggy.PluginManager, list[PluginInfo]]:
    """A fresh plugin manager holding the built-ins, the installed entry-point plugins and
    ``plugins``, minus any blocked by name (``block`` or ``$CHUNKLINE_DISABLE_PLUGINS``)."""
    blocked = set(block) | _blocked_from_env()
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []
    installed: list[object] = []
    for module_name in DEFAULT_PLUGINS:
        if module_name in blocked or module_name.rsplit(".", 1)[-1] in blocked:
            continue
        pm.register(importlib.import_module(module_name), name=module_name)
        infos.append(PluginInfo(module_name, "built-in", __version__))
    if load_entrypoints:
        for ep in _entry_points():
            if ep.name in blocked or pm.has_plugin(ep.name):
                continue
            dist = ep.dist
            source = f"{dist.name} (entry point {ep.value})" if dist else ep.value
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(f"plugin {ep.name!r} from {source} failed to load: {exc!r}") from exc
            _register(pm, plugin, ep.name)
            installed.append(plugin)
            infos.append(PluginInfo(ep.name, source, dist.version if dist else None))
    for plugin in plugins:
        name = _plugin_name(plugin)
        # A module installed through its entry point and also passed in is one plugin (passing
        # the same plugin twice is still a mistake, reported by _register).
        if name in blocked or any(plugin is loaded for loaded in installed):
            continue
        _register(pm, plugin, name)
        infos.append(PluginInfo(name, "passed to Pipeline(plugins=...)", None))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc)) from exc
    return pm, infos


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(f"plugin {name!r} cannot be registered: {exc}") from exc


def _plugin_name(plugin: object) -> str:
    if isinstance(plugin, ModuleType):
        return plugin.__name__
    return getattr(plugin, "__name__", None) or f"{type(plugin).__qualname__}@{id(plugin):x}"


def _blocked_from_env() -> set[str]:
    value = os.environ.get(DISABLE_ENV, "")
    return {name.strip() for name in value.split(",") if name.strip()}


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
