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
    return _with_server_stages(list(stages), "decode", EVENT_STAGES_END), declared


def route_stages(source: str, target: str) -> list[str | StageSpec]:
    """The default stages of the route from ``source`` to ``target`` with the server's own."""
    route = Pipeline(source=source, target=target)
    registry = route.registry
    return _with_server_stages(
        list(route.stage_names), registry.decoder(source).stages[-1], registry.encoder(target).stages[0]
    )


def _with_server_stages(
    entries: list[str | StageSpec], decoder_last: str, encoder_first: str
) -> list[str | StageSpec]:
    """``entries`` with the server's observer right after ``decoder_last`` (it sees the decoded
    events before any plugin changes them; none if that stage was taken out) and its key
    redaction right before ``encoder_first`` (on the neutral events, before any of them is
    written; last if there is no such stage)."""
    if decoder_last in entries:
        entries.insert(entries.index(decoder_last) + 1, OBSERVE_STAGE)
    at = entries.index(encoder_first) if encoder_first in entries else len(entries)
    entries.insert(at, REDACT_STAGE)
    return entries


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
