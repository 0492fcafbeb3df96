"""The fields of an OpenAI-compatible chat chunk, read and checked: usage, error objects, strings."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from ..errors import describe
from ..events import ErrorEvent, UsageUpdate

__all__ = [
    "CHAT_FINISH_REASONS",
    "Malformed",
    "choice_index",
    "string",
    "text_of",
    "upstream_error",
    "usage_update",
]

CHAT_FINISH_REASONS = MappingProxyType(
    {
        "stop": "stop",
        "eos": "stop",
        "length": "length",
        "max_tokens": "length",
        "tool_calls": "tool_calls",
        "function_call": "tool_calls",
        "content_filter": "content_filter",
        "error": "error",
    }
)
"""Chat finish reasons (OpenAI's, and the few other words compatible servers use) -> neutral
reasons. Others finish as ``stop``; the upstream's word stays in ``Finish.raw_reason``."""

_MAX_COUNT = 2**53


class Malformed(Exception):
    """A chunk that breaks the protocol; the message says how."""


def upstream_error(chunk: dict[str, Any]) -> ErrorEvent:
    """The fault an error object in the stream reports (OpenAI's ``{"error": {...}}``, or vLLM's
    ``{"object": "error", ...}``)."""
    error = chunk.get("error", chunk)
    message = code = None
    if isinstance(error, dict):
        message = error.get("message")
        for key in ("code", "type"):
            value = error.get(key)
            if isinstance(value, str) and value:
                code = value
                break
    elif isinstance(error, str):
        message = error
    if not isinstance(message, str) or not message:
        message = f"the upstream reported an error it did not describe: {describe(chunk, 300)}"
    return ErrorEvent("upstream_error", message, code or "upstream_error")


def choice_index(choice: Any) -> Any:
    """A choice's ``index`` (0 where a server leaves it out)."""
    return choice.get("index", 0) if type(choice) is dict else 0


def text_of(value: Any) -> str:
    """``value`` if it is a string, else the empty string (ids and model names some servers omit)."""
    return value if isinstance(value, str) else ""


def string(value: Any, what: str) -> str:
    """``value``, which must be a string (``what`` names it in the error)."""
    if type(value) is not str:
        raise Malformed(f"{what!r} must be a string, not {describe(value)}")
    return value


def _count(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= _MAX_COUNT:
        raise Malformed(f"usage {what!r} must be a whole number from 0 to 2**53, not {describe(value)}")
    return value


def usage_update(usage: Any) -> UsageUpdate | None:
    """Chat usage in neutral terms: the uncached part of the prompt, cache reads (OpenAI's
    ``cached_tokens``, DeepSeek's ``prompt_cache_hit_tokens``), completion and reasoning."""
    if type(usage) is not dict:
        raise Malformed(f"'usage' must be an object, not {describe(usage)}")
    prompt = _count(usage.get("prompt_tokens"), "prompt_tokens")
    completion = _count(usage.get("completion_tokens"), "completion_tokens")
    cached = None
    details = usage.get("prompt_tokens_details")
    if type(details) is dict:
        cached = _count(details.get("cached_tokens"), "cached_tokens")
    if cached is None:
        cached = _count(usage.get("prompt_cache_hit_tokens"), "prompt_cache_hit_tokens")
    reasoning = None
    details = usage.get("completion_tokens_details")
    if type(details) is dict:
        reasoning = _count(details.get("reasoning_tokens"), "reasoning_tokens")
    if prompt is None and completion is None:
        return None
    uncached = None if prompt is None else max(prompt - (cached or 0), 0)
    return UsageUpdate(
        input_tokens=uncached,
        output_tokens=completion,
        cache_read_tokens=cached,
        reasoning_tokens=reasoning,
    )
