"""The exceptions chunkline raises: configuration and plugin errors, and stream faults."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "ChunklineError",
    "ConfigError",
    "InternalStageError",
    "InvalidUpstreamResponse",
    "LimitExceeded",
    "OptionError",
    "PluginError",
    "RouteError",
    "StageNameError",
    "StreamError",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamTruncated",
    "describe",
    "idle_fault",
    "source_fault",
    "stream_error_for",
]


class ChunklineError(Exception):
    """Base class of every exception chunkline raises on purpose."""


class ConfigError(ChunklineError, ValueError):
    """A pipeline was asked for something that cannot be built."""


class OptionError(ConfigError):
    """An unknown option, or a bad value for a known one."""


class StageNameError(ConfigError):
    """A stage list names an unknown stage, or names one twice."""


class RouteError(ConfigError):
    """An unknown format, or a route from one format to another that no installed plugin provides."""


class PluginError(ChunklineError):
    """A plugin failed to load, or registered something it may not."""


class StreamError(ChunklineError):
    """A fault in the stream being converted, raised instead of reported in-band when
    ``on_error="raise"``. ``type``, ``code`` and ``message`` match the in-band error event;
    ``output`` holds what the conversion produced before the fault."""

    type = "stream_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.output: list[Any] = []


class UpstreamError(StreamError):
    """The upstream sent an ``error`` event; ``code`` is its own error type."""

    type = "upstream_error"


class InvalidUpstreamResponse(StreamError):
    """The upstream sent something that is not a valid stream: bad framing, JSON or UTF-8,
    or events that break the protocol."""

    type = "invalid_upstream_response"


class UpstreamTruncated(StreamError):
    """The input ended before the upstream said the response was complete."""

    type = "upstream_truncated"


class UpstreamTimeout(StreamError):
    """The upstream went quiet for longer than the idle timeout."""

    type = "upstream_timeout"


class LimitExceeded(StreamError):
    """The input went past one of the conversion's size limits."""

    type = "limit_exceeded"


class InternalStageError(StreamError):
    """A stage failed in a way it did not anticipate (a bug in chunkline or in a plugin)."""

    type = "internal_error"


_BY_TYPE: dict[str, type[StreamError]] = {
    cls.type: cls
    for cls in (
        UpstreamError,
        InvalidUpstreamResponse,
        UpstreamTruncated,
        UpstreamTimeout,
        LimitExceeded,
        InternalStageError,
    )
}


def stream_error_for(type_: str, message: str, code: str | None = None) -> StreamError:
    """The exception that stands for an in-band error of the given type."""
    cls = _BY_TYPE.get(type_, StreamError)
    return cls(message, code)


def source_fault(exc: Exception) -> tuple[str, str, str | None]:
    """The in-band fault (type, message, code) for a stream whose source raised ``exc``: the
    fault a `StreamError` names itself (say, `UpstreamTimeout` for a time limit), else
    ``upstream_error``. The async edges (`chunkline.aio.transform`, the server's relay) report a
    failed read in these words alike."""
    if isinstance(exc, StreamError):
        return exc.type, exc.message, exc.code
    return "upstream_error", f"reading the upstream failed: {type(exc).__name__}: {exc}", None


def idle_fault(seconds: float) -> tuple[str, str]:
    """The in-band fault (type, message) for a source that sent nothing for ``seconds``."""
    return "upstream_timeout", f"the upstream sent nothing for {seconds} seconds; the stream was cut off"


def describe(value: Any, limit: int = 80) -> str:
    """An upstream value for an error message: strings quoted, objects and arrays as compact JSON,
    other values as text; cut to ``limit`` characters, and safe for values nested too deep to
    repr."""
    if isinstance(value, dict | list):
        try:
            text = orjson.dumps(value).decode()
        except TypeError:  # deeper than orjson writes (254 levels), or numbers it cannot
            return f"a deeply nested JSON {'object' if isinstance(value, dict) else 'array'}"
    elif isinstance(value, str):
        text = repr(value[: limit + 1])
    else:
        text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."
