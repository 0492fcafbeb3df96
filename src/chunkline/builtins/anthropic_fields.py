"""Checked reads of Anthropic Messages event fields for the decoder: each wrong one is a ``Malformed``."""

from __future__ import annotations

import json
from typing import Any

import orjson

from ..errors import describe
from ..events import UsageUpdate
from .fields import MAX_COUNT, Malformed, count

__all__ = ["arguments_of", "integer", "object_of", "string_of", "usage_of"]

_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def integer(event: dict[str, Any], key: str) -> int:
    """``event[key]``, which must be an int."""
    value = event.get(key)
    if type(value) is not int:
        raise Malformed(f"{key!r} must be an integer, not {describe(value)}")
    return value


def string_of(event: dict[str, Any], key: str, *, empty: bool = True) -> str:
    """``event[key]``, which must be a string (and not empty unless ``empty``)."""
    value = event.get(key)
    if type(value) is not str or not (empty or value):  # a tool call with no name cannot be called
        raise Malformed(f"{key!r} must be a {'' if empty else 'non-empty '}string, not {describe(value)}")
    return value


def object_of(event: dict[str, Any], key: str) -> dict[str, Any]:
    """``event[key]``, which must be an object."""
    value = event.get(key)
    if type(value) is not dict:
        raise Malformed(f"{key!r} must be an object, not {describe(value)}")
    return value


def usage_of(usage: Any) -> UsageUpdate | None:
    """Usage counts; absent and null fields stay None so earlier values survive (R47)."""
    if usage is None:
        return None
    if type(usage) is not dict:
        raise Malformed(f"'usage' must be an object, not {describe(usage)}")
    input_tokens, output_tokens, cache_creation, cache_read = (count(usage.get(k), k) for k in _USAGE_FIELDS)
    thinking = None
    details = usage.get("output_tokens_details")
    if isinstance(details, dict):
        value = details.get("thinking_tokens")
        if type(value) is int and 0 <= value <= MAX_COUNT:
            thinking = value
    return UsageUpdate(input_tokens, output_tokens, cache_read, cache_creation, thinking)


def arguments_of(tool_input: Any) -> str | None:
    """A start block's input as JSON arguments. orjson stops at 254 levels of nesting, which the
    upstream's JSON may exceed; the standard library goes further."""
    try:
        return orjson.dumps(tool_input).decode()
    except TypeError:
        try:
            return json.dumps(tool_input, ensure_ascii=False, separators=(",", ":"))
        except RecursionError:
            return None
