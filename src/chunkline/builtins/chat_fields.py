"""The fields of an OpenAI-compatible chat chunk, read and checked: usage, error objects, strings."""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

from ..errors import describe
from ..events import ErrorEvent, UsageUpdate
from ..registry import Registry
from .fields import Malformed, count

#: The two kinds of streamed text part a chat delta opens (the decoder keeps one open at a time).
TEXT_KIND, REASONING_KIND = 0, 1

__all__ = [
    "CHAT_FINISH_REASONS",
    "REASONING_KIND",
    "TEXT_KIND",
    "Malformed",
    "choice_index",
    "content_parts",
    "stop_sequences_option",
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


def content_parts(parts: list[Any]) -> Iterator[tuple[int, str]]:
    """Mistral's ``content`` as a list of parts, as (``TEXT_KIND`` or ``REASONING_KIND``, text): ``thinking``
    parts (their ``thinking`` a list of text parts) are reasoning, ``text`` parts are text."""
    for part in parts:
        if type(part) is not dict:
            raise Malformed(f"a content part must be an object, not {describe(part)}")
        kind = part.get("type")
        if kind == "text" and part.get("text"):
            yield TEXT_KIND, string(part["text"], "text")
        elif kind == "thinking":
            inner = part.get("thinking")
            pieces = inner if type(inner) is list else [{"text": inner}]
            for piece in pieces:
                text = piece.get("text") if type(piece) is dict else None
                if text:
                    yield REASONING_KIND, string(text, "thinking")


def text_of(value: Any) -> str:
    """``value`` if it is a string, else the empty string (ids and model names some servers omit)."""
    return value if isinstance(value, str) else ""


def string(value: Any, what: str) -> str:
    """``value``, which must be a string (``what`` names it in the error)."""
    if type(value) is not str:
        raise Malformed(f"{what!r} must be a string, not {describe(value)}")
    return value


def usage_update(usage: Any) -> UsageUpdate | None:
    """Chat usage in neutral terms: the uncached part of the prompt, cache reads (OpenAI's
    ``cached_tokens``, DeepSeek's ``prompt_cache_hit_tokens``), completion and reasoning."""
    if type(usage) is not dict:
        raise Malformed(f"'usage' must be an object, not {describe(usage)}")
    prompt = count(usage.get("prompt_tokens"), "prompt_tokens")
    completion = count(usage.get("completion_tokens"), "completion_tokens")
    cached = None
    details = usage.get("prompt_tokens_details")
    if type(details) is dict:
        cached = count(details.get("cached_tokens"), "cached_tokens")
    if cached is None:
        cached = count(usage.get("prompt_cache_hit_tokens"), "prompt_cache_hit_tokens")
    reasoning = None
    details = usage.get("completion_tokens_details")
    if type(details) is dict:
        reasoning = count(details.get("reasoning_tokens"), "reasoning_tokens")
    if prompt is None and completion is None:
        return None
    uncached = None if prompt is None else max(prompt - (cached or 0), 0)
    return UsageUpdate(
        input_tokens=uncached,
        output_tokens=completion,
        cache_read_tokens=cached,
        reasoning_tokens=reasoning,
    )


def stop_sequences_option(value: Any, registry: Registry) -> Any:
    """The ``stop_sequences`` option's check: a list of non-empty strings (one string is a list
    of one), or None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(s, str) and s for s in value):
        raise ValueError(f"must be a list of non-empty strings or None, not {value!r}")
    return tuple(value)
