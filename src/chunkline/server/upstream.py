"""The Anthropic side: pooled upstream connections, the Messages request, and its failures as HTTP errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import httpx
import orjson

from .._version import __version__
from ..errors import LimitExceeded, UpstreamTimeout, describe
from . import http1
from .errors import APIError, InvalidRequest, json_or_400, redact
from .http1_proxy import Proxy
from .scrub import passed_headers, redact_value
from .settings import Settings

__all__ = [
    "ANTHROPIC_VERSION",
    "COMMON_HEADERS",
    "ResponseTooLarge",
    "StreamTimeLimit",
    "Upstream",
    "capped",
    "counted",
    "too_long",
]

ANTHROPIC_VERSION = "2023-06-01"
# How much of an upstream error body is read: enough for any error JSON, bounded for a bad upstream.
_ERROR_BODY_LIMIT = 64 * 1024
# After a response's last event the upstream ends its body at once (usually in the same packet);
# reading that end, rather than dropping the connection, lets the connection be reused and spares
# the next request a TLS handshake. An upstream still sending after that (the stream was cut off
# for a fault or a time limit) gets this long before its connection is closed.
_DRAIN_SECONDS = 0.1
_DRAIN_BYTES = 64 * 1024
# Request bodies shorter than this are copied to their exact size (see Upstream.encode).
_SMALL_BODY = 2048

logger = logging.getLogger("chunkline.server")


class StreamTimeLimit(UpstreamTimeout):
    """A response ran past the server's wall-clock limit per stream (in-band: ``upstream_timeout``)."""


class ResponseTooLarge(LimitExceeded):
    """A non-streaming answer ran past the bytes the server assembles one from."""


#: The headers every request upstream carries, whatever the API.
COMMON_HEADERS = (
    ("content-type", "application/json"),
    ("accept", "text/event-stream"),
    # Compression would hold events back until a compressed block fills.
    ("accept-encoding", "identity"),
    ("user-agent", f"chunkline/{__version__}"),
)


class Upstream:
    """Sends Messages requests to the upstream over pooled keep-alive connections
    (`chunkline.server.http1`)."""

    #: Where `open_stream` posts, relative to the upstream base URL (a subclass for another API
    #: format changes it and `_headers`).
    stream_path = "/v1/messages"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # httpx and httpcore cost more per request than the whole conversion of a short answer,
        # and more per held stream than everything else the server keeps for it (`make
        # bench-server`, docs/benchmarks.md#the-upstream-client): the pool speaks HTTP/1.1 itself,
        # with httpx's trust store, the proxy the environment names, and httpx's words for
        # failures. No cookie is ever kept: the connections are shared by every client's requests.
        self._pool = http1.Pool(
            settings.upstream,
            max_connections=settings.upstream_max_connections,
            connect_timeout=settings.connect_timeout,
            ssl_context=httpx.create_ssl_context(),
            proxy=Proxy.for_url(settings.upstream),
            headers=self._fixed_headers(),
        )

    async def aclose(self) -> None:
        await self._pool.aclose()

    def pool_use(self) -> tuple[int, int]:
        """Connections open now: (carrying a request, idle)."""
        return self._pool.use()

    def _fixed_headers(self) -> list[tuple[str, str]]:
        """The headers every request carries (the pool renders them once)."""
        return [("anthropic-version", ANTHROPIC_VERSION), *COMMON_HEADERS]

    def _headers(
        self, api_key: str, beta: str | None, request_id: str | None = None
    ) -> list[tuple[str, str]]:
        """One request's own headers."""
        headers = [("x-api-key", api_key)]
        if beta:
            headers.append(("anthropic-beta", beta))
        if request_id:
            headers.append(("x-request-id", request_id))
        return headers

    @staticmethod
    def encode(body: dict[str, Any]) -> bytes:
        """A request body as `open_stream` sends it; `APIError` (400) for one nested too deeply."""
        content = json_or_400(
            body,
            "the request nests JSON more than 254 levels deep, deeper than this server sends upstream",
            None,
        )
        if len(content) < _SMALL_BODY:
            # orjson's bytes keep the 4 KiB it allocated to write into, and the request (so its
            # body) lives as long as the stream: a copy of the exact size holds less.
            content = bytes(memoryview(content))
        return content

    async def open_stream(
        self, content: bytes, api_key: str, beta: str | None, *, request_id: str | None = None
    ) -> http1.Response:
        """POST ``content`` (see `encode`) to ``/v1/messages`` and wait for a 2xx response's
        headers; its body is left to read. A failure before then raises `APIError`: the upstream's
        own status and message for a non-2xx answer, 502 for a connection that failed, 504 for
        one that timed out."""
        response = await self._send(
            "POST", self.stream_path, self._headers(api_key, beta, request_id), content, api_key
        )
        try:
            if not response.is_success:
                raise await _status_error(response, api_key)
            if response.headers.get("content-type", "").startswith("application/json"):
                raise await _not_a_stream(response, api_key)
            encoding = unrequested_encoding(response)
            if encoding:
                raise APIError(
                    502,
                    f"the upstream sent its stream compressed ({describe(encoding)}) though this "
                    "server asked for it uncompressed (accept-encoding: identity)",
                    type="invalid_upstream_response",
                    code="invalid_upstream_response",
                    headers=passed_headers(response.headers, [api_key]),
                )
        except APIError:
            await response.aclose()
            raise
        return response

    async def get_json(self, path: str, api_key: str) -> Any:
        """GET a JSON document from the upstream (the model list)."""
        response = await self._send("GET", path, self._headers(api_key, None), b"", api_key)
        try:
            if not response.is_success:
                raise await _status_error(response, api_key)
            data = await _read_limited(response, 16 * 1024 * 1024)
        finally:
            await response.aclose()
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            raise APIError(
                502, f"the upstream's answer to GET {path} is not JSON", type="upstream_error"
            ) from None

    async def _send(
        self, method: str, path: str, headers: list[tuple[str, str]], content: bytes, api_key: str
    ) -> http1.Response:
        seconds = self._settings.first_byte_timeout
        try:
            async with asyncio.timeout(seconds):
                return await self._pool.request(method, path, headers, content)
        except TimeoutError:
            raise APIError(
                504,
                f"the upstream did not answer {self._target(method, path)} within {seconds:g} seconds "
                "(CHUNKLINE_FIRST_BYTE_TIMEOUT)",
                type="upstream_timeout",
            ) from None
        except http1.PoolTimeout:
            raise APIError(
                503,
                "too many requests to the upstream are open at once (CHUNKLINE_UPSTREAM_MAX_CONNECTIONS); "
                "try again shortly",
                type="server_overloaded",
            ) from None
        except http1.ConnectTimeout as exc:
            raise APIError(
                504,
                f"connecting to the upstream timed out: {_describe(exc, api_key)}",
                type="upstream_timeout",
            ) from None
        except ValueError as exc:  # a header value with a line break in it
            raise InvalidRequest(f"this request cannot be sent upstream: {exc}", None) from None
        except http1.HTTPError as exc:
            logger.warning(
                "upstream request %s failed: %s", self._target(method, path), _describe(exc, api_key)
            )
            raise APIError(
                502,
                f"the upstream could not be reached: {_describe(exc, api_key)}",
                type="upstream_unavailable",
            ) from None

    def _target(self, method: str, path: str) -> str:
        """A request as error messages name it (worked out only for one)."""
        return f"{method} {self._pool.base_path}{path.partition('?')[0]}"

    @staticmethod
    async def finish(response: http1.Response, raw: AsyncIterator[bytes], *, drain: bool) -> None:
        """Let go of a streaming response: after the client got its whole answer, read the end of
        the body (briefly) so the connection goes back to the pool; otherwise (the client left)
        close it now, which also tells the upstream to stop generating."""
        with anyio.CancelScope(shield=True):
            if drain:
                with anyio.move_on_after(_DRAIN_SECONDS):
                    left = 0
                    try:
                        async for data in raw:
                            left += len(data)
                            if left > _DRAIN_BYTES:
                                break
                    except http1.HTTPError:
                        pass
            await response.aclose()  # which closes ``raw``, its body


async def capped(raw: AsyncIterator[bytes], seconds: float) -> AsyncIterator[bytes]:
    """``raw``, cut off with `StreamTimeLimit` at the first read after ``seconds`` have
    passed since the start. The pipeline reports that in-band, as it does any failed read.

    The clock is read per chunk rather than kept in a cancel scope per read (a scope costs more
    than converting the event): an upstream that keeps sending is cut at its next chunk, and one
    that goes silent is the idle timeout's to cut. Does not close ``raw``.
    """
    clock = anyio.current_time
    deadline = clock() + seconds
    async for data in raw:
        if clock() > deadline:
            raise StreamTimeLimit(too_long(seconds))
        yield data


def too_long(seconds: float) -> str:
    """What a response cut off by the server's time limit per stream is told, on every path."""
    return (
        f"the response ran past this server's limit of {seconds:g} seconds per stream "
        "(CHUNKLINE_STREAM_TIMEOUT) and was cut off"
    )


async def counted(raw: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """``raw``, cut off with `ResponseTooLarge` once more than ``limit`` bytes came through (a
    non-streaming answer is held whole before it is sent, so its size is bounded). Does not close
    ``raw``."""
    total = 0
    async for data in raw:
        total += len(data)
        if total > limit:
            raise ResponseTooLarge(
                f"the upstream's answer is larger than this server assembles a non-streaming answer "
                f"from ({limit} bytes, CHUNKLINE_MAX_RESPONSE_BYTES); ask for it with stream=true"
            )
        yield data


def unrequested_encoding(response: http1.Response) -> str | None:
    """The content-encoding of a body that is compressed though the server asked for ``identity``
    (it would have to be decompressed whole per read, unbounded: a gzip bomb), else None."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    return encoding if encoding not in ("", "identity") else None


async def _read_limited(response: http1.Response, limit: int) -> bytes:
    if unrequested_encoding(response):
        return b""  # not decoded, so not read: nothing of it would be worth the risk
    return await response.aread(limit)


async def _read_error_body(response: http1.Response) -> bytes:
    """The start of a body an error is made from (nothing if it cannot be read)."""
    try:
        return await _read_limited(response, _ERROR_BODY_LIMIT)
    except http1.HTTPError:
        return b""


def _quote(data: bytes, api_key: str) -> str:
    """The start of an upstream body for an error message, with the key replaced before the text
    is cut short (so no piece of it is left at the cut)."""
    return redact(data.decode("utf-8", errors="replace"), [api_key])[:300].strip()


async def _status_error(response: http1.Response, api_key: str) -> APIError:
    """The upstream's non-2xx answer as the same status with an OpenAI error body (R42)."""
    status = response.status_code
    data = await _read_error_body(response)
    message, kind = None, None
    try:
        error = orjson.loads(data).get("error")
        if isinstance(error, Mapping):
            message, kind = error.get("message"), error.get("type")
    except (orjson.JSONDecodeError, AttributeError):
        pass
    if not isinstance(message, str) or not message:
        text = _quote(data, api_key)
        message = f"the upstream answered HTTP {status}" + (f": {text}" if text else " with no body")
    if not isinstance(kind, str) or not kind or len(kind) > 100:
        kind = "upstream_error"
    # Redirects and other non-error statuses mean the upstream URL is wrong: a gateway error.
    if status < 400:
        message = f"{message} (CHUNKLINE_UPSTREAM may be wrong)"
        status = 502
    # Every field that came from the upstream is redacted, not only the message: an upstream may
    # quote the key it was sent anywhere.
    message, kind = redact_value((message, kind), [api_key])
    return APIError(
        status, message, type=kind, code=kind, headers=passed_headers(response.headers, [api_key])
    )


async def _not_a_stream(response: http1.Response, api_key: str) -> APIError:
    """A 2xx answer in JSON where an event stream was asked for (an upstream, or a gateway in
    front of it, that ignores ``stream``): nothing the pipeline can read."""
    text = _quote(await _read_error_body(response), api_key)
    return APIError(
        502,
        f"the upstream answered {response.status_code} with JSON, not an event stream "
        f"(text/event-stream): {text}",
        type="invalid_upstream_response",
        code="invalid_upstream_response",
        headers=passed_headers(response.headers, [api_key]),
    )


def _describe(exc: BaseException, api_key: str) -> str:
    text = str(exc) or type(exc).__name__
    return redact(f"{type(exc).__name__}: {text}", [api_key])
