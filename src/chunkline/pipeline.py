"""The Pipeline: plugins loaded, the stage list and its options checked, once; conversions opened from it."""

from __future__ import annotations

import io
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from types import MappingProxyType
from typing import Any

from .conversion import Conversion, RoutePlan
from .errors import OptionError, PluginError, StageNameError, StreamError
from .plugins import PluginInfo, make_plugin_manager
from .registry import Registry
from .stage import Option, StageSpec

__all__ = [
    "DEFAULT_SOURCE",
    "DEFAULT_STAGES",
    "DEFAULT_TARGET",
    "GENERIC_THINKING_MODES",
    "MIDDLE_STAGES",
    "Pipeline",
    "list_plugins",
]

DEFAULT_SOURCE = "anthropic-messages"
DEFAULT_TARGET = "openai-chat"

# The stages between a route's decoder and its encoder: they speak only neutral events, so they
# serve every route. Plugin stages join a route through StageSpec.after; the order never depends
# on the order pluggy calls hooks in.
MIDDLE_STAGES: tuple[str, ...] = ("thinking", "tool_calls", "chunker", "finish", "usage")

# The default route's stage list (Anthropic Messages in, OpenAI Chat Completions out).
DEFAULT_STAGES: tuple[str, ...] = ("parse", "decode", *MIDDLE_STAGES, "envelope", "serialize")

#: The ``thinking`` values every target understands; an encoder may add its own.
GENERIC_THINKING_MODES: tuple[str, ...] = ("native", "tags", "drop")


class Pipeline:
    """A configured converter. Build one per configuration (it loads plugins and checks options)
    and call `open` once per upstream response.

    ``source`` and ``target`` name the route's formats (``anthropic-messages`` in and
    ``openai-chat`` out by default; ``chunkline routes`` lists what the installed plugins
    provide); an unknown format or a missing decoder or encoder raises `chunkline.RouteError`.
    ``stages`` is the stage list, by name (or as `StageSpec` objects); by default the route's
    stages plus any that installed plugins add. Every other keyword is an option of one of the
    stages; an unknown option, one that no stage of the route declares, or a bad value raises
    `chunkline.OptionError`.
    """

    def __init__(
        self,
        stages: Sequence[str | StageSpec] | None = None,
        *,
        source: str = DEFAULT_SOURCE,
        target: str = DEFAULT_TARGET,
        plugins: Iterable[object] = (),
        load_entrypoints: bool = True,
        block: Iterable[str] = (),
        **options: Any,
    ) -> None:
        pm, infos = make_plugin_manager(plugins, load_entrypoints=load_entrypoints, block=block)
        self.registry: Registry = Registry.collect(pm)
        self.plugins: list[PluginInfo] = [self.registry.describe(info) for info in infos]
        self.source = source
        self.target = target
        if stages is None:
            stages = self.default_stage_names()
        specs = self._resolve_stages(stages)
        self.stage_names: tuple[str, ...] = tuple(spec.name for spec in specs)
        self.options = MappingProxyType(self._check_options(specs, options))
        self._check_thinking()
        prototypes = []
        for spec in specs:
            try:
                prototypes.append(spec.factory(self.options))
            except Exception as exc:
                raise PluginError(f"stage {spec.name!r} could not be built: {exc!r}") from exc
        self._plan = RoutePlan(self.stage_names, [s.factory for s in specs], prototypes, self.options)

    def __repr__(self) -> str:
        return f"Pipeline(stages={list(self.stage_names)!r})"

    @property
    def route(self) -> str:
        """The route's formats, as ``source -> target``."""
        return f"{self.source} -> {self.target}"

    def open(self, **overrides: Any) -> Conversion:
        """A new conversion for one upstream response. Keyword arguments override options marked
        per-conversion (``model``, ``response_id``, ``created``) for this response only."""
        if not overrides:
            return Conversion(self._plan)
        return Conversion(self._plan, self._override(overrides))

    def _override(self, overrides: dict[str, Any]) -> MappingProxyType[str, Any]:
        options = dict(self.options)
        for name, value in overrides.items():
            option = self._declared.get(name)
            if option is None or not option.per_conversion:
                allowed = ", ".join(sorted(n for n, o in self._declared.items() if o.per_conversion))
                raise OptionError(
                    f"option {name!r} cannot be set per conversion; open() takes: {allowed or 'none'}"
                )
            try:
                options[name] = option.check(value, self.registry)
            except ValueError as exc:
                raise OptionError(f"option {name!r}: {exc}") from None
        return MappingProxyType(options)

    def convert(self, data: Any, **overrides: Any) -> list[Any]:
        """Convert a whole input at once: ``open()``, ``feed(data)``, ``close()``."""
        conversion = self.open(**overrides)
        out: list[Any] = []
        try:
            out += conversion.feed(data)
            out += conversion.close()
        except StreamError as exc:
            exc.output = out + exc.output  # everything produced before the fault
            raise
        return out

    def transform_sync(self, source: Iterable[Any], **overrides: Any) -> Iterator[Any]:
        """Convert an iterable of input pieces, yielding each output as soon as it is complete.

        The source is not read again once the stream has finished (after ``[DONE]``), so a client
        is never kept waiting on an upstream that holds its connection open (R5); a source with a
        ``close()`` method (a generator, say) is closed when the conversion ends or is abandoned;
        a file is left for its owner to close.
        """
        conversion = self.open(**overrides)
        iterator = iter(source)
        try:
            for data in iterator:
                yield from conversion.feed(data)
                if conversion.finished:
                    break
            yield from conversion.close()
        finally:
            close = None if isinstance(iterator, io.IOBase) else getattr(iterator, "close", None)
            if close is not None:
                close()

    def transform(
        self, source: AsyncIterable[Any], *, idle_timeout: float | None = None, **overrides: Any
    ) -> AsyncIterator[Any]:
        """Convert an async iterable of input pieces (on asyncio or trio, through anyio). With
        ``idle_timeout``, a source silent for that many seconds ends the stream with an error."""
        from .aio import transform

        return transform(self, source, idle_timeout=idle_timeout, **overrides)

    def _resolve_stages(self, stages: Sequence[str | StageSpec]) -> list[StageSpec]:
        if isinstance(stages, str):
            raise StageNameError("stages must be a list of stage names, not a single string")
        specs: list[StageSpec] = []
        seen: set[str] = set()
        for entry in stages:
            spec = entry if isinstance(entry, StageSpec) else self.registry.stage(entry)
            if spec.name in seen:
                raise StageNameError(f"stage {spec.name!r} appears twice in the stage list")
            seen.add(spec.name)
            specs.append(spec)
        return specs

    def default_stage_names(self, source: str | None = None, target: str | None = None) -> list[str]:
        """The default stage list of a route (this pipeline's by default): the source format's
        decoder stages, the middle stages and the target format's encoder stages, with plugin
        stages that ask to run ``after`` one of them inserted behind it (in registration order).
        A plugin stage whose anchor is not on the route stays out of it."""
        decoder = self.registry.decoder(source or self.source)
        encoder = self.registry.encoder(target or self.target)
        route = (*decoder.stages, *MIDDLE_STAGES, *encoder.stages)
        names = [name for name in route if name in self.registry.stages]
        pending = [
            r.spec
            for r in self.registry.stages.values()
            if r.spec.after and not r.spec.optional and r.spec.name not in names
        ]
        while pending:
            placed = [spec for spec in pending if spec.after in names]
            if not placed:
                # The rest run after stages of other routes (or after each other, there).
                break
            for spec in placed:
                position = names.index(spec.after or "") + 1
                while position < len(names) and names[position] in {p.name for p in placed}:
                    position += 1
                names.insert(position, spec.name)
                pending.remove(spec)
        return names

    def _check_thinking(self) -> None:
        """``thinking`` values beyond the generic ones mean something only to some targets."""
        mode = self.options.get("thinking")
        if mode is None or mode in GENERIC_THINKING_MODES:
            return
        registration = self.registry.encoders.get(self.target)
        if registration is None or not set(registration.spec.stages) <= set(self.stage_names):
            return  # a hand-made stage list without this target's encoder: nothing to check against
        allowed = (*GENERIC_THINKING_MODES, *registration.spec.thinking_modes)
        if mode not in allowed:
            raise OptionError(
                f"option 'thinking': {mode!r} has no meaning on the route {self.route}; "
                f"this route takes {', '.join(repr(m) for m in allowed)}"
            )

    def _check_options(self, specs: list[StageSpec], given: dict[str, Any]) -> dict[str, Any]:
        declared: dict[str, tuple[Option, str]] = {}
        for spec in specs:
            for option in spec.options:
                if option.name in declared and declared[option.name][0] is not option:
                    owner = declared[option.name][1]
                    raise PluginError(
                        f"stages {owner!r} and {spec.name!r} both declare option {option.name!r}"
                    )
                declared[option.name] = (option, spec.name)
        self._declared = {name: option for name, (option, _) in declared.items()}
        values: dict[str, Any] = {}
        for name, (option, owner) in declared.items():
            value = given.pop(name, option.default)
            try:
                values[name] = option.check(value, self.registry)
            except OptionError:
                raise
            except ValueError as exc:
                raise OptionError(f"option {name!r} (stage {owner!r}): {exc}") from None
        if given:
            raise OptionError(self._unknown_options_message(sorted(given), sorted(declared)))
        return values

    def _unknown_options_message(self, unknown: list[str], known: list[str]) -> str:
        elsewhere = {
            option.name: registration.spec.name
            for registration in self.registry.stages.values()
            for option in registration.spec.options
        }
        parts = []
        for name in unknown:
            if name in elsewhere:
                parts.append(
                    f"option {name!r} belongs to stage {elsewhere[name]!r}, "
                    f"which is not in this pipeline's stage list (route {self.route})"
                )
            else:
                parts.append(f"unknown option {name!r}")
        return "; ".join(parts) + f". Options of this pipeline: {', '.join(known) or 'none'}"

    def describe_options(self) -> list[tuple[str, str, Any, str, str]]:
        """Every option of this pipeline's stages: (name, stage, default, allowed, help)."""
        rows = []
        for name in self.stage_names:
            spec = self.registry.stages[name].spec if name in self.registry.stages else None
            for option in spec.options if spec else ():
                rows.append((option.name, name, option.default, option.allowed, option.help))
        return rows


def list_plugins(**kwargs: Any) -> list[PluginInfo]:
    """The plugins a default Pipeline would load (keyword arguments as for Pipeline)."""
    return Pipeline(**kwargs).plugins
