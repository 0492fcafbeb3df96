"""The server's pipelines, built once from its settings with the stage edits and options convert takes."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..pipeline import Pipeline
from ..stage import StageSpec
from ..stageflags import edit_stages
from .completion import EVENT_STAGES_END
from .observe import OBSERVE_STAGE
from .scrub import REDACT_STAGE, SECRETS_OPTION
from .settings import Settings, SettingsError

__all__ = ["SERVER_OPTIONS", "ServerPipelines", "route_stages"]

#: Options the server sets itself, per request or for every request; --option may not set them.
SERVER_OPTIONS = frozenset({"include_usage", "usage", "on_error", "input_format", "observer", SECRETS_OPTION})


class ServerPipelines:
    """The streaming pipelines (with and without usage) and the one for non-streaming answers,
    all from the same stage list and options. A bad stage name or option raises
    `SettingsError` (the server then does not start)."""

    def __init__(self, settings: Settings) -> None:
        try:
            entries, declared = _stage_entries(settings)
            options = _options(settings, declared)
            # Thinking blocks go out whole with their signatures (delta.reasoning_details), so that
            # a client sending them back keeps Claude thinking across tool calls.
            streamed = dict(options)
            if "reasoning_details" in declared:
                streamed.setdefault("reasoning_details", True)
            plain = Pipeline(entries, block=settings.block, **streamed)
            self._stream = {
                False: plain,
                True: Pipeline(entries, block=settings.block, include_usage=True, **streamed),
            }
            # A non-streaming answer follows the same rules: the same stages up to the envelope
            # (the usage totals ride on the finish) and faults raised (they become HTTP errors).
            self.events = Pipeline(
                _before_envelope(entries), block=settings.block, on_error="raise", **options
            )
        except ConfigError as exc:
            raise SettingsError(f"the server's stages or options (--add, --option ...): {exc}") from None
        self.plain = plain
        self._given = streamed

    def stream(self, include_usage: bool) -> Pipeline:
        return self._stream[include_usage]

    def describe(self) -> dict[str, Any]:
        """The effective stage list and options of a streamed answer (for /healthz and --print-config)."""
        pipeline = self.plain
        # As given (a policy's name, not the factory it was checked into), else the default.
        options = {name: default for name, _, default, _, _ in pipeline.describe_options()}
        options.update(self._given)
        options.pop("observer", None)
        options.pop(SECRETS_OPTION, None)
        return {"stages": list(pipeline.stage_names), "options": {k: _plain(v) for k, v in options.items()}}


def _stage_entries(settings: Settings) -> tuple[list[str | StageSpec], set[str]]:
    """The stage list, and the names of the options its stages declare."""
    stages = edit_stages(
        add=settings.add, remove=settings.remove, replace=settings.replace, block=settings.block
    )
    registry = stages.registry
    declared = {
        option.name
        for name in stages
        if registry is not None and name in registry.stages
        for option in registry.stages[name].spec.options
    }
    entries: list[str | StageSpec] = list(stages)
    # The server's own observer sees the decoded events before any plugin changes them; its key
    # redaction runs on the typed events last, before the envelope writes any of them.
    if "decode" in entries:
        entries.insert(entries.index("decode") + 1, OBSERVE_STAGE)
    at = entries.index(EVENT_STAGES_END) if EVENT_STAGES_END in entries else len(entries)
    entries.insert(at, REDACT_STAGE)
    return entries, declared


def route_stages(source: str, target: str) -> list[str | StageSpec]:
    """The default stages of the route from ``source`` to ``target`` with the server's own: its
    observer right after the decoder (it sees the decoded events before any plugin changes
    them), its key redaction right before the encoder (on the neutral events, before any of
    them is written)."""
    route = Pipeline(source=source, target=target)
    names = route.stage_names
    decoded = names.index(route.registry.decoder(source).stages[-1]) + 1
    encoding = names.index(route.registry.encoder(target).stages[0])
    return [*names[:decoded], OBSERVE_STAGE, *names[decoded:encoding], REDACT_STAGE, *names[encoding:]]


def _before_envelope(entries: list[str | StageSpec]) -> list[str | StageSpec]:
    return entries[: entries.index(EVENT_STAGES_END)] if EVENT_STAGES_END in entries else entries


def _options(settings: Settings, declared: set[str]) -> dict[str, Any]:
    reserved = sorted(SERVER_OPTIONS & set(settings.options))
    if reserved:
        raise ConfigError(f"option {reserved[0]!r} is set by the server for each request, not by --option")
    for name in ("thinking", "chunking"):
        if name in settings.options:
            raise ConfigError(f"option {name!r}: set it with --{name} (CHUNKLINE_{name.upper()})")
    options: dict[str, Any] = dict(settings.options)
    # The thinking mode always has a value; it is given only where a stage takes it (a stage
    # list without the thinking stage is not an error).
    if "thinking" in declared:
        options["thinking"] = settings.thinking
    if settings.chunking is not None:
        options["chunking"] = settings.chunking
    return options


def _plain(value: Any) -> Any:
    """An option's value as JSON can show it (a compiled pattern or a callable as its repr)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return repr(value)
