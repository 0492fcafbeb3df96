"""A request's JSON body, read and parsed within bounds: its size, its number of values, off the loop."""

from __future__ import annotations

import anyio.to_thread
import orjson
from starlette.requests import ClientDisconnect, Request

from ..builtins.parse import count_values
from .errors import APIError, InvalidRequest
from .settings import Settings

__all__ = ["read_json"]

# Bodies up to this size parse in well under a millisecond: a thread would cost more than it saves.
_THREAD_ABOVE = 256 * 1024


async def read_json(request: Request, settings: Settings) -> object:
    """The request body as JSON. A 413 for a body over ``max_request_bytes`` (before reading it all
    when the client declares its length) or over ``max_request_values`` (before parsing it); a 400
    for a body that is not JSON. Large bodies are parsed in a worker thread, so the event loop
    serves other requests meanwhile."""
    limit = settings.max_request_bytes
    declared = request.headers.get("content-length", "")
    too_large = APIError(
        413,
        f"the request body is larger than this server accepts ({limit} bytes, CHUNKLINE_MAX_REQUEST_BYTES)",
        type="invalid_request_error",
        code="request_too_large",
    )
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    data = bytearray()
    try:
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise too_large
    except ClientDisconnect:
        # Nobody is left to answer; 499 is what proxies log for a request its client abandoned.
        raise APIError(499, "the client closed the connection before sending the whole request") from None
    # Counting and parsing a large body take milliseconds each: in a worker thread, the event loop
    # gets its turns between them (and the count bounds how long the parse can take).
    if len(data) > _THREAD_ABOVE:
        return await anyio.to_thread.run_sync(_parse, data, settings.max_request_values)
    return _parse(data, settings.max_request_values)


def _parse(data: bytearray, max_values: int) -> object:
    # A body of tiny values ("[[],[],...]") costs tens of bytes of memory per byte once parsed:
    # the count bounds that before anything is built.
    if len(data) > max_values and count_values(data) > max_values:
        raise APIError(
            413,
            "the request body holds more JSON values than this server parses "
            f"({max_values}, CHUNKLINE_MAX_REQUEST_VALUES)",
            type="invalid_request_error",
            code="request_too_large",
        )
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}", None) from None
