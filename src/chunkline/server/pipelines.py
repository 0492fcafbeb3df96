"""The server's pipelines, built once from its settings with the stage edits and options convert takes."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..pipeline import Pipeline
from ..stage import StageSpec
from ..stageflags import edit_stages
from .completion import EVENT_STAGES_END
from .observe import OBSERVE_STAGE
from .settings import Settings, SettingsError

__all__ = ["SERVER_OPTIONS", "ServerPipelines"]

#: Options the server sets itself, per request or for every request; --option may not set them.
SERVER_OPTIONS = frozenset({"include_usage", "usage", "on_error", "input_format", "observer"})


class ServerPipelines:
    """The streaming pipelines (with and without usage) and the one for non-streaming answers,
    all from the same stage list and options. A bad stage name or option raises
    `SettingsError` (the server then does not start)."""

    def __init__(self, settings: Settings) -> None:
        try:
            entries = _stage_entries(settings)
            options = _options(settings)
            plain = Pipeline(entries, block=settings.block, **options)
            self._stream = {
                False: plain,
                True: Pipeline(entries, block=settings.block, include_usage=True, **options),
            }
            # A non-streaming answer follows the same rules: the same stages up to the envelope,
            # with usage on the finish and faults raised (they become HTTP errors).
            self.events = Pipeline(
                _before_envelope(entries),
                block=settings.block,
                include_usage=True,
                usage="final",
                on_error="raise",
                **options,
            )
        except ConfigError as exc:
            raise SettingsError(f"the server's stages or options (--add, --option ...): {exc}") from None
        self.plain = plain

    def stream(self, include_usage: bool) -> Pipeline:
        return self._stream[include_usage]

    def describe(self) -> dict[str, Any]:
        """The effective stage list and options of a streamed answer (for /healthz and --print-config)."""
        pipeline = self.plain
        return {
            "stages": list(pipeline.stage_names),
            "options": {name: _plain(v) for name, v in pipeline.options.items() if name != "observer"},
        }


def _stage_entries(settings: Settings) -> list[str | StageSpec]:
    stages = edit_stages(
        add=settings.add, remove=settings.remove, replace=settings.replace, block=settings.block
    )
    entries: list[str | StageSpec] = list(stages)
    # The server's own observer sees the decoded events before any plugin changes them.
    if "decode" in entries:
        entries.insert(entries.index("decode") + 1, OBSERVE_STAGE)
    return entries


def _before_envelope(entries: list[str | StageSpec]) -> list[str | StageSpec]:
    return entries[: entries.index(EVENT_STAGES_END)] if EVENT_STAGES_END in entries else entries


def _options(settings: Settings) -> dict[str, Any]:
    reserved = sorted(SERVER_OPTIONS & set(settings.options))
    if reserved:
        raise ConfigError(f"option {reserved[0]!r} is set by the server for each request, not by --option")
    for name in ("thinking", "chunking"):
        if name in settings.options:
            raise ConfigError(f"option {name!r}: set it with --{name} (CHUNKLINE_{name.upper()})")
    options: dict[str, Any] = {"thinking": settings.thinking, **settings.options}
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
