"""Errors the server answers with: an HTTP status and a body in the OpenAI error shape."""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from ..errors import StreamError

__all__ = [
    "REDACTED",
    "APIError",
    "InvalidRequest",
    "error_body",
    "http_error_message",
    "json_or_400",
    "redact",
    "shown",
    "stream_error_status",
]

#: What a key is replaced with wherever one would otherwise leave the server.
REDACTED = "[redacted]"


# A client's value quoted in an error message: as repr() writes it when it is small, cut short when
# it is large or deep. repr() itself recurses once per level: a value nested 1,000 levels deep (JSON
# allows 1,024) raised RecursionError, a 500 instead of the 400 it should be.
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel = 3
_SHOWN.maxstring = 80
_SHOWN.maxother = 80
_SHOWN.maxlong = 40
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = 6


def shown(value: Any) -> str:
    """A client's value for an error message: its repr when small, shortened when large or deep."""
    return _SHOWN.repr(value)


def json_or_400(value: Any, message: str, param: str | None) -> bytes:
    """``orjson.dumps(value)`` of a client's value, or `InvalidRequest` with ``message`` and
    ``param``: a request parses up to 1,024 levels deep, and orjson writes only 254."""
    try:
        return orjson.dumps(value)
    except TypeError:
        raise InvalidRequest(message, param) from None


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``: what OpenAI's API sends with a
    non-2xx status, and what the openai SDK reads into its exceptions."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class APIError(Exception):
    """A request that ends in an HTTP error, before any of the response was sent."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


class InvalidRequest(APIError):
    """A 400: the request cannot be turned into an Anthropic request; ``param`` names the field."""

    def __init__(self, message: str, param: str | None) -> None:
        super().__init__(400, message, type="invalid_request_error", param=param)


# Anthropic's error types and the statuses its API sends them with; a stream fault that carries
# one of them (an `error` event) gets that status when it becomes an HTTP error.
_UPSTREAM_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

# chunkline's stream fault types -> status, for a fault found while assembling a non-streaming
# answer: the upstream broke the protocol or the stream (502), went quiet (504), or a stage failed.
_FAULT_STATUS = {
    "upstream_error": 502,
    "invalid_upstream_response": 502,
    "upstream_truncated": 502,
    "limit_exceeded": 502,
    "upstream_timeout": 504,
    "internal_error": 500,
}


def stream_error_status(error: StreamError) -> int:
    """The HTTP status for a stream fault reported before any of the answer was sent."""
    if error.type == "upstream_error" and error.code in _UPSTREAM_STATUS:
        return _UPSTREAM_STATUS[error.code]
    return _FAULT_STATUS.get(error.type, 502)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced, for anything that leaves the server
    or reaches a log (an upstream error message might quote the key it was sent)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def http_error_message(method: str, path: str, status: int, detail: str) -> str:
    """The message of a 404 or 405 the router raised, in the words OpenAI's API uses."""
    if status == 404:
        return f"Unknown request URL: {method} {path}."
    if status == 405:
        return f"Method {method} is not allowed for {path}."
    return detail
