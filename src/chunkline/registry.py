"""Stage and chunking-policy names collected from the plugins, with duplicate and unknown-name errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import pluggy

from .errors import OptionError, PluginError, RouteError, StageNameError
from .plugins import PluginInfo
from .stage import ChunkPolicy, ChunkPolicySpec, DecoderSpec, EncoderSpec, StageSpec

__all__ = ["Registration", "Registry"]

SpecT = TypeVar("SpecT", StageSpec, ChunkPolicySpec, DecoderSpec, EncoderSpec)


@dataclass(frozen=True, slots=True)
class Registration(Generic[SpecT]):
    """One registered stage or policy and the plugin that provided it."""

    spec: SpecT
    plugin: str
    replaced: str | None = None


class Registry:
    """Every stage, chunking policy, decoder and encoder the loaded plugins registered, by name
    (decoders and encoders by the name of the format they read or write)."""

    def __init__(
        self,
        stages: dict[str, Registration[StageSpec]],
        policies: dict[str, Registration[ChunkPolicySpec]],
        decoders: dict[str, Registration[DecoderSpec]] | None = None,
        encoders: dict[str, Registration[EncoderSpec]] | None = None,
    ) -> None:
        self.stages = stages
        self.policies = policies
        self.decoders = decoders or {}
        self.encoders = encoders or {}

    @classmethod
    def collect(cls, pm: pluggy.PluginManager) -> Registry:
        """Call each plugin's registration hooks once and resolve the names they registered."""
        stages = _collect(pm, "register_stages", (StageSpec,), "stage")
        policies = _collect(pm, "register_chunking_policies", (ChunkPolicySpec,), "chunking policy")
        spec_types: tuple[type[Any], ...] = (DecoderSpec, EncoderSpec)
        formats: dict[Any, Registration[Any]] = _collect(pm, "register_formats", spec_types, "format")
        decoders = {key[1]: r for key, r in formats.items() if key[0] == "decoder"}
        encoders = {key[1]: r for key, r in formats.items() if key[0] == "encoder"}
        return cls(stages, policies, decoders, encoders)

    @property
    def formats(self) -> list[str]:
        """Every format some plugin reads or writes, sorted."""
        return sorted({*self.decoders, *self.encoders})

    def decoder(self, name: str) -> DecoderSpec:
        """The decoder of source format ``name``; `chunkline.RouteError` names what exists."""
        registration = self.decoders.get(name)
        if registration is None:
            raise RouteError(self._missing("source", name, self.decoders, "reads"))
        return registration.spec

    def encoder(self, name: str) -> EncoderSpec:
        """The encoder of target format ``name``; `chunkline.RouteError` names what exists."""
        registration = self.encoders.get(name)
        if registration is None:
            raise RouteError(self._missing("target", name, self.encoders, "writes"))
        return registration.spec

    def _missing(self, role: str, name: str, known: dict[str, Any], verb: str) -> str:
        if not isinstance(name, str) or name not in self.formats:
            what = f"unknown format {name!r}"
        else:
            what = f"no installed plugin {verb} {name!r}, so it cannot be a {role}"
        return (
            f"{what}; formats: {', '.join(self.formats) or 'none'}; "
            f"{role}s: {', '.join(sorted(known)) or 'none'}"
        )

    def describe(self, plugin: PluginInfo) -> PluginInfo:
        """``plugin`` with the stages and policies it registered (those it lost to a replacing
        plugin not included)."""
        return replace(
            plugin,
            stages=tuple(n for n, r in self.stages.items() if r.plugin == plugin.name),
            policies=tuple(n for n, r in self.policies.items() if r.plugin == plugin.name),
        )

    def stage(self, name: str) -> StageSpec:
        """The stage registered under ``name``."""
        try:
            return self.stages[name].spec
        except KeyError:
            known = ", ".join(sorted(self.stages)) or "none"
            raise StageNameError(f"unknown stage {name!r}; registered stages: {known}") from None

    def policy_factory(self, value: Any) -> Callable[[], ChunkPolicy]:
        """Resolve a ``chunking`` option value such as ``"words:3"`` to a policy factory."""
        if not isinstance(value, str) or not value:
            raise OptionError(f"chunking: must be a policy name such as 'passthrough', not {value!r}")
        name, sep, arg = value.partition(":")
        registration = self.policies.get(name)
        if registration is None:
            known = ", ".join(sorted(self.policies))
            raise OptionError(f"chunking: unknown policy {name!r}; registered policies: {known}")
        factory = registration.spec.factory
        argument = arg if sep else None
        try:
            factory(argument)  # checks the argument once, here, rather than per conversion
        except ValueError as exc:
            raise OptionError(f"chunking: {value!r}: {exc}") from None
        return lambda: factory(argument)


def _key(spec: Any) -> Any:
    # Formats are keyed by role and name: one plugin may decode a format that another encodes.
    if isinstance(spec, DecoderSpec):
        return ("decoder", spec.name)
    if isinstance(spec, EncoderSpec):
        return ("encoder", spec.name)
    return spec.name


def _collect(
    pm: pluggy.PluginManager, hook_name: str, spec_types: tuple[type[SpecT], ...], what: str
) -> dict[Any, Registration[SpecT]]:
    plain: dict[Any, list[Registration[SpecT]]] = {}
    replacing: dict[Any, list[Registration[SpecT]]] = {}
    # get_hookimpls() lists implementations in registration order (built-ins first), which is
    # the order plugin stages join the default list in; pluggy's call order (LIFO) never matters.
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        plugin: str = impl.plugin_name

        def register(spec: Any, replace: bool = False, *, _plugin: str = plugin) -> None:
            if not isinstance(spec, spec_types):
                wanted = " or ".join(t.__name__ for t in spec_types)
                raise PluginError(f"plugin {_plugin!r} registered {spec!r}, which is not a {wanted}")
            bucket = replacing if replace else plain
            bucket.setdefault(_key(spec), []).append(Registration(spec, _plugin))

        try:
            impl.function(**{arg: register for arg in impl.argnames})
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"plugin {plugin!r} failed in {hook_name}: {exc!r}") from exc

    resolved: dict[Any, Registration[SpecT]] = {}
    for name in [*plain, *(n for n in replacing if n not in plain)]:
        label = f"{name[0]} of {name[1]!r}" if isinstance(name, tuple) else f"{what} {name!r}"
        originals = plain.get(name, [])
        replacements = replacing.get(name, [])
        if len(originals) > 1:
            owners = " and ".join(repr(r.plugin) for r in originals)
            raise PluginError(
                f"{label} is registered by both {owners}; "
                "a plugin that means to replace it must register it with replace=True"
            )
        if len(replacements) > 1:
            owners = " and ".join(repr(r.plugin) for r in replacements)
            raise PluginError(f"{label} is replaced by both {owners}; block one of them")
        if replacements:
            winner = replacements[0]
            replaced = originals[0].plugin if originals else None
            resolved[name] = Registration(winner.spec, winner.plugin, replaced)
        else:
            resolved[name] = originals[0]
    return resolved
