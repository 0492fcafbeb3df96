"""Per-request observation: the ``x-request-id``, one access line when a request ends, and its metrics."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .observe import SCOPE_KEY, RequestRecord

__all__ = [
    "ACCESS_LOGGER",
    "JsonFormatter",
    "RequestObserver",
    "access_fields",
    "access_text",
    "request_id_for",
]

#: The logger of the access lines (one per request, at INFO).
ACCESS_LOGGER = "chunkline.access"
_REQUEST_ID_HEADER = b"x-request-id"
# A client's own id is kept when it is this tame: it goes into logs and upstream headers as is.
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}")

access_logger = logging.getLogger(ACCESS_LOGGER)


def request_id_for(scope: Scope) -> str:
    """The client's ``x-request-id`` when it is sane (1-128 letters, digits, ``._:+=/-``), else a new one."""
    for name, value in scope.get("headers", ()):
        if name == _REQUEST_ID_HEADER:
            if _SANE_REQUEST_ID.fullmatch(value):
                return str(value.decode("ascii"))
            break
    return f"req_{os.urandom(16).hex()}"


def access_fields(record: RequestRecord) -> dict[str, Any]:
    """The access line's fields, in order. Only names, counts and times: never a key, a prompt or
    an answer."""
    cached = record.cache_read_tokens
    tokens_in = None
    if record.input_tokens is not None:
        tokens_in = record.input_tokens + (cached or 0) + (record.cache_write_tokens or 0)
    return {
        "request_id": record.id,
        "method": record.method,
        "route": record.route,
        "status": record.status,
        "model": record.client_model,
        "upstream_model": record.upstream_model,
        "upstream_request_id": record.upstream_request_id,
        "stream": record.stream,
        "ttfb_ms": _ms(record.first_byte),
        "ttft_ms": _ms(record.first_token),
        "duration_ms": _ms(record.duration),
        "tokens_in": tokens_in,
        "tokens_out": record.output_tokens,
        "tokens_cached": cached,
        "finish": record.finish,
        "fault": record.fault,
        "bytes_out": record.bytes_out,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def access_text(fields: dict[str, Any]) -> str:
    def show(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return " ".join(f"{name}={show(value)}" for name, value in fields.items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the access fields of an access line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "access", None)
        if isinstance(fields, dict):
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
            request_id = getattr(record, "request_id", None)
            if request_id is not None:
                entry["request_id"] = request_id
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class RequestObserver:
    """ASGI middleware around the whole app: gives each request a record (and its id, sent back
    as ``x-request-id``), notes the status, first byte and bytes out, and when the request ends
    writes the access line (``log``) and records the metrics (``metrics``)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        log: bool,
        finished: Callable[[RequestRecord], None] | None,
    ) -> None:
        self.app = app
        self._routes = routes
        # The routes without parameters, by path: most requests are named by one dict lookup.
        self._fixed: dict[str, frozenset[str]] = {}
        for route in routes:
            path, methods = getattr(route, "path", None), getattr(route, "methods", None)
            if isinstance(path, str) and "{" not in path and methods:
                self._fixed[path] = frozenset(methods)
        self._log = log
        self._finished = finished

    def _route(self, scope: Scope) -> str:
        path: str = scope["path"]
        methods = self._fixed.get(path)
        if methods is not None and scope["method"] in methods and not scope.get("root_path"):
            return path
        for route in self._routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "path", "other"))
        return "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = RequestRecord(id=request_id_for(scope), started=time.perf_counter())
        record.method = scope.get("method", "")
        record.route = self._route(scope)
        scope[SCOPE_KEY] = record
        try:
            await self.app(scope, receive, _Observed(record, send).send)
        except BaseException:
            if not record.status:
                record.status = 500
                record.fault = record.fault or "server_error"
            raise
        finally:
            record.duration = record.elapsed()
            if not record.status:
                record.status = 499  # the client left before any answer was sent
            self._end(record)

    def _end(self, record: RequestRecord) -> None:
        if self._finished is not None:
            self._finished(record)
        if self._log:
            fields = access_fields(record)
            access_logger.info(access_text(fields), extra={"access": fields})


class _Observed:
    """A request's ``send`` as `RequestObserver` hands it on: it notes the status, the first
    byte's time and the bytes out, and adds the ``x-request-id``. A slotted object and a bound
    method, where a closure took a function and three cells for as long as a stream runs."""

    __slots__ = ("_record", "_send")

    def __init__(self, record: RequestRecord, send: Send) -> None:
        self._record = record
        self._send = send

    async def send(self, message: Message) -> None:
        record = self._record
        if message["type"] == "http.response.body":
            record.bytes_out += len(message.get("body", b""))
        elif message["type"] == "http.response.start":
            record.status = message["status"]
            record.first_byte = record.elapsed()
            headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _REQUEST_ID_HEADER]
            headers.append((_REQUEST_ID_HEADER, record.id.encode()))
            message = {**message, "headers": headers}
        await self._send(message)
