"""What a stream that parsed to nothing is instead: the diagnoses the SSE parser gives at close."""

from __future__ import annotations

from typing import Any

import orjson

from ..events import ErrorEvent

__all__ = ["complete_event_type", "not_sse"]


def complete_event_type(frame: bytes) -> Any:
    """The ``type`` of an event whose data lines hold whole JSON, else None."""
    data = [line[5:].lstrip(b" ") for line in frame.split(b"\n") if line.startswith(b"data:")]
    if not data:
        return None
    try:
        event = orjson.loads(b"\n".join(data))
    except orjson.JSONDecodeError:
        return None
    return event.get("type", "?") if type(event) is dict else None


def not_sse(data: bytes) -> ErrorEvent | None:
    """What input with no server-sent events in it is, when it is recognisably something else:
    the API's JSON error body (what curl prints for a bad key), a whole JSON message (a request
    sent without "stream": true), or JSON lines. None when it may be SSE after all (a stream cut
    inside its first event, say)."""
    text = data.strip()
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        body = None
    if type(body) is dict and body.get("type") == "error" and isinstance(body.get("error"), dict):
        kind, message = body["error"].get("type"), body["error"].get("message")
        name = kind if isinstance(kind, str) and kind else "error"
        return ErrorEvent(
            "upstream_error",
            f"{name}: {message} (the input is the API's JSON error response, not a stream)",
            code=name,
        )
    if type(body) is dict and body.get("type") == "message":
        return ErrorEvent(
            "invalid_upstream_response",
            'the input is a whole JSON message, not a stream: was the request sent without "stream": true?',
        )
    first = text.split(b"\n", 1)[0]
    try:
        line = orjson.loads(first)
    except orjson.JSONDecodeError:
        line = None
    if type(line) is dict:
        return ErrorEvent(
            "invalid_upstream_response",
            "no server-sent events in the input; is it JSON lines? try --input-format jsonl "
            "(the option input_format='jsonl')",
        )
    return None
