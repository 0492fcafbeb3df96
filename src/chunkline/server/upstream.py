"""The Anthropic side: pooled httpx clients, the Messages request, and its failures as HTTP errors."""

from __future__ import annotations

import http.cookiejar
import itertools
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import httpx
import orjson

from .._version import __version__
from ..errors import LimitExceeded, UpstreamTimeout, describe
from .errors import APIError, InvalidRequest, redact
from .scrub import passed_headers, redact_value
from .settings import Settings

__all__ = [
    "ANTHROPIC_VERSION",
    "POOL_SHARDS",
    "ResponseTooLarge",
    "StreamTimeLimit",
    "Upstream",
    "capped",
    "counted",
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
# Request bodies shorter than this are copied to their exact size (see Upstream.open_stream).
_SMALL_BODY = 2048
#: How many httpx pools the upstream requests are dealt over (see Upstream.__init__).
POOL_SHARDS = 16

logger = logging.getLogger("chunkline.server")


class StreamTimeLimit(UpstreamTimeout):
    """A response ran past the server's wall-clock limit per stream (in-band: ``upstream_timeout``)."""


class ResponseTooLarge(LimitExceeded):
    """A non-streaming answer ran past the bytes the server assembles one from."""


class Upstream:
    """Sends Messages requests to the upstream over pooled ``httpx.AsyncClient`` connections."""

    #: Where `open_stream` posts, relative to the upstream base URL (a subclass for another API
    #: format changes it and `_headers`).
    stream_path = "/v1/messages"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # httpcore's pool walks all its connections (and, for each idle one, all of them again)
        # whenever a request starts or ends: with a hundred streams open that bookkeeping took
        # 30% of the server's time (`make bench-server`). Requests are dealt round-robin over a
        # few smaller pools instead; the connection limit is shared out among them.
        shards = min(POOL_SHARDS, settings.upstream_max_connections)
        each, more = divmod(settings.upstream_max_connections, shards)
        verify = httpx.create_ssl_context()  # httpx's default verification, built once for all
        self._clients = [
            httpx.AsyncClient(
                base_url=settings.upstream,
                # No read timeout: a stream may be quiet between events for as long as idle_timeout
                # allows, and the wait for the response headers has its own limit (_send).
                timeout=httpx.Timeout(
                    connect=settings.connect_timeout,
                    read=None,
                    write=settings.connect_timeout,
                    pool=settings.connect_timeout,
                ),
                # Every connection may stay for reuse: with fewer kept than streams run at once,
                # each answer's end would close a connection the next request then opens again.
                limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
                verify=verify,
                follow_redirects=False,
                # The clients are shared by every request: a cookie one upstream answer set would
                # otherwise go out with other clients' requests, so no cookie is ever kept.
                cookies=_no_cookies(),
            )
            for limit in [each + 1] * more + [each] * (shards - more)
        ]
        self._turn = itertools.cycle(self._clients)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    def pool_use(self) -> tuple[int, int]:
        """Connections open now: (carrying a request, idle). Read from httpcore's pools at scrape
        time; 0 for a pool whose internals are not the ones known here."""
        active = idle = 0
        for client in self._clients:
            pool = getattr(getattr(client, "_transport", None), "_pool", None)
            for connection in getattr(pool, "connections", ()):
                if connection.is_idle():
                    idle += 1
                elif not connection.is_closed():
                    active += 1
        return active, idle

    def _headers(self, api_key: str, beta: str | None, request_id: str | None = None) -> dict[str, str]:
        headers = {
            "x-api-key": api_key,
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
            "accept": "text/event-stream",
            # Compression would hold events back until a compressed block fills.
            "accept-encoding": "identity",
            "user-agent": f"chunkline/{__version__}",
        }
        if beta:
            headers["anthropic-beta"] = beta
        if request_id:
            headers["x-request-id"] = request_id
        return headers

    async def open_stream(
        self, body: dict[str, Any], api_key: str, beta: str | None, *, request_id: str | None = None
    ) -> httpx.Response:
        """POST ``/v1/messages`` and wait for a 2xx response's headers; its body is left to read.
        A failure before then raises `APIError`: a 400 for a body too deeply nested to send, the
        upstream's own status and message for a non-2xx answer, 502 for a connection that failed,
        504 for one that timed out."""
        try:
            content = orjson.dumps(body)
        except TypeError:  # the request parsed (orjson reads 1024 levels) but orjson writes only 254
            raise InvalidRequest(
                "the request nests JSON more than 254 levels deep, deeper than this server sends upstream",
                None,
            ) from None
        if len(content) < _SMALL_BODY:
            # orjson's bytes keep the 4 KiB it allocated to write into, and the request (so its
            # body) lives as long as the stream: a copy of the exact size holds less.
            content = bytes(memoryview(content))
        client = next(self._turn)
        request = client.build_request(
            "POST", self.stream_path, content=content, headers=self._headers(api_key, beta, request_id)
        )
        response = await self._send(client, request, api_key)
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
        client = next(self._turn)
        request = client.build_request("GET", path, headers=self._headers(api_key, None))
        response = await self._send(client, request, api_key)
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

    async def _send(self, client: httpx.AsyncClient, request: httpx.Request, api_key: str) -> httpx.Response:
        seconds = self._settings.first_byte_timeout
        target = f"{request.method} {request.url.path}"
        try:
            with anyio.fail_after(seconds):
                return await client.send(request, stream=True)
        except TimeoutError:
            raise APIError(
                504,
                f"the upstream did not answer {target} within {seconds:g} seconds "
                "(CHUNKLINE_FIRST_BYTE_TIMEOUT)",
                type="upstream_timeout",
            ) from None
        except httpx.PoolTimeout:
            raise APIError(
                503,
                "too many requests to the upstream are open at once (CHUNKLINE_UPSTREAM_MAX_CONNECTIONS); "
                "try again shortly",
                type="server_overloaded",
            ) from None
        except httpx.TimeoutException as exc:
            raise APIError(
                504,
                f"connecting to the upstream timed out: {_describe(exc, api_key)}",
                type="upstream_timeout",
            ) from None
        except httpx.HTTPError as exc:
            logger.warning("upstream request %s failed: %s", target, _describe(exc, api_key))
            raise APIError(
                502,
                f"the upstream could not be reached: {_describe(exc, api_key)}",
                type="upstream_unavailable",
            ) from None

    @staticmethod
    async def finish(response: httpx.Response, raw: AsyncIterator[bytes], *, drain: bool) -> None:
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
                    except httpx.HTTPError:
                        pass
            await response.aclose()
            aclose = getattr(raw, "aclose", None)
            if aclose is not None:
                await aclose()


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
            raise StreamTimeLimit(
                f"the response ran past this server's limit of {seconds:g} seconds per stream "
                "(CHUNKLINE_STREAM_TIMEOUT) and was cut off"
            )
        yield data


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


def unrequested_encoding(response: httpx.Response) -> str | None:
    """The content-encoding of a body that is compressed though the server asked for ``identity``
    (httpx would decompress it whole per read, unbounded: a gzip bomb), else None."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    return encoding if encoding not in ("", "identity") else None


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    if unrequested_encoding(response):
        return b""  # not decoded, so not read: nothing of it would be worth the risk
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= limit:
            break
    return bytes(data[:limit])


async def _read_error_body(response: httpx.Response) -> bytes:
    """The start of a body an error is made from (nothing if it cannot be read)."""
    try:
        return await _read_limited(response, _ERROR_BODY_LIMIT)
    except httpx.HTTPError:
        return b""


def _quote(data: bytes, api_key: str) -> str:
    """The start of an upstream body for an error message, with the key replaced before the text
    is cut short (so no piece of it is left at the cut)."""
    return redact(data.decode("utf-8", errors="replace"), [api_key])[:300].strip()


async def _status_error(response: httpx.Response, api_key: str) -> APIError:
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


async def _not_a_stream(response: httpx.Response, api_key: str) -> APIError:
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


def _no_cookies() -> http.cookiejar.CookieJar:
    """A cookie jar that refuses every cookie (an empty domain allow-list)."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
