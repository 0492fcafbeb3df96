"""The openai-responses encoder's options, and what it shares with the server (usage, errors, blobs)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from ..events import UsageUpdate
from ..registry import Registry
from ..stage import Option

__all__ = [
    "ENCRYPTED_PREFIX",
    "OPTIONS",
    "decode_reasoning",
    "encode_reasoning",
    "error_code",
    "usage_object",
]

#: Marks an ``encrypted_content`` that chunkline wrote: the Anthropic thinking block, whole.
ENCRYPTED_PREFIX = "chunkline.v1."

# The `code` of a Responses error is a closed list in the SDK's types; these are the nearest words
# for Anthropic's error types and for the codes OpenAI-compatible upstreams send.
_CODES = {
    "rate_limit_error": "rate_limit_exceeded",
    "invalid_request_error": "invalid_prompt",
    "request_too_large": "invalid_prompt",
    "rate_limit_exceeded": "rate_limit_exceeded",
    "insufficient_quota": "rate_limit_exceeded",
    "context_length_exceeded": "invalid_prompt",
    "invalid_prompt": "invalid_prompt",
}


def usage_object(usage: UsageUpdate) -> dict[str, Any]:
    """The Responses ``usage``: the whole prompt (uncached input, cache reads and cache writes)
    as ``input_tokens``, with the cached and cache-written parts in its details."""
    prompt = usage.prompt_tokens
    output = usage.output_tokens or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens or 0,
            "cache_write_tokens": usage.cache_write_tokens or 0,
        },
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
        "total_tokens": prompt + output,
    }


def error_code(fault_code: str | None) -> str:
    """The Responses error ``code`` for an upstream error type (``server_error`` for the rest)."""
    return _CODES.get(fault_code or "", "server_error")


def encode_reasoning(block: dict[str, Any]) -> str:
    """An Anthropic ``thinking`` or ``redacted_thinking`` block as an ``encrypted_content``
    string. It is not encrypted (the signature inside is Anthropic's proof), only packed, so that
    the server can give Claude back the very block it sent."""
    return ENCRYPTED_PREFIX + base64.urlsafe_b64encode(orjson.dumps(block)).decode()


def decode_reasoning(value: str) -> dict[str, Any] | None:
    """The Anthropic block an `encode_reasoning` string holds; ``None`` for anything else (an
    OpenAI blob, say, or a damaged one)."""
    if not value.startswith(ENCRYPTED_PREFIX):
        return None
    try:
        block = orjson.loads(base64.urlsafe_b64decode(value[len(ENCRYPTED_PREFIX) :]))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(block, dict):
        return None
    kind = block.get("type")
    if (
        kind == "thinking"
        and isinstance(block.get("thinking"), str)
        and isinstance(block.get("signature"), str)
    ):
        return {"type": "thinking", "thinking": block["thinking"], "signature": block["signature"]}
    if kind == "redacted_thinking" and isinstance(block.get("data"), str):
        return {"type": "redacted_thinking", "data": block["data"]}
    return None


def _created(value: Any, registry: Registry) -> Any:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"must be a Unix time in whole seconds (an int) or None, not {value!r}")
    return value


def _boolean(value: Any, registry: Registry) -> Any:
    if not isinstance(value, bool):
        raise ValueError(f"must be True or False, not {value!r}")
    return value


def _namespaces(value: Any, registry: Registry) -> Any:
    if value is None:
        return None
    ok = isinstance(value, dict) and all(
        isinstance(k, str)
        and isinstance(v, tuple | list)
        and len(v) == 2
        and all(isinstance(s, str) and s for s in v)
        for k, v in value.items()
    )
    if not ok:
        raise ValueError(
            "must map each flattened tool name to a (namespace, name) pair of strings, or be None"
        )
    return {k: (v[0], v[1]) for k, v in value.items()}


OPTIONS = (
    Option.optional_string(
        "model", "The model name clients see; by default the upstream's model.", per_conversion=True
    ),
    Option.optional_string(
        "response_id",
        "The response id clients see; by default 'resp_' + the upstream message id.",
        per_conversion=True,
    ),
    Option(
        "created",
        None,
        "The response's 'created_at' time (Unix seconds); by default the time the stream started.",
        _created,
        allowed="an int or None",
        per_conversion=True,
    ),
    Option(
        "reasoning_encrypted_content",
        False,
        "Put each thinking block's signature (and redacted thinking's data) in its reasoning item's "
        "'encrypted_content', as a request's include: ['reasoning.encrypted_content'] asks.",
        _boolean,
        allowed="True or False",
        per_conversion=True,
    ),
    Option(
        "tool_namespaces",
        None,
        "Flattened tool names to map back to (namespace, name) on function_call items.",
        _namespaces,
        allowed="a dict of name -> (namespace, name), or None",
        per_conversion=True,
    ),
)
