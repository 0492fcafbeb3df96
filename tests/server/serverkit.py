"""Server-test helpers: chunkline's app under a real uvicorn on a free loopback port, and its clients."""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
import time
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from fake_anthropic import Received

import harness
from chunkline.server.app import create_app
from chunkline.server.protocol import ConnectionGuards, GuardedH11Protocol, guard
from chunkline.server.settings import Settings

#: The key clients of the keyed server must send, and the upstream key it uses.
SERVER_KEY = "sk-chunkline-test-0123456789"
UPSTREAM_KEY = "sk-ant-test-upstream-9876543210"
#: A client key the pass-through server forwards (the fake upstream accepts any but "bad-key").
CLIENT_KEY = "sk-ant-client-key-5555"


def _protocols() -> list[Any]:
    try:
        from chunkline.server.protocol_httptools import GuardedHttpToolsProtocol
    except ImportError:
        skip = pytest.mark.skip(reason="httptools is not installed")
        httptools = pytest.param(None, id="httptools", marks=skip)
    else:
        httptools = pytest.param(GuardedHttpToolsProtocol, id="httptools")
    return [httptools, pytest.param(GuardedH11Protocol, id="h11")]


#: Both guarded protocols, as a pytest parameter list (``@pytest.mark.parametrize("cls", PROTOCOLS)``).
PROTOCOLS = _protocols()

#: The event loops the server runs on: asyncio's, and uvloop (the server extra's, but not on Windows).
LOOPS = [
    pytest.param("asyncio", id="asyncio"),
    pytest.param(
        "uvloop",
        id="uvloop",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("uvloop") is None,
            reason="uvloop is not installed (the server extra installs it, except on Windows)",
        ),
    ),
]


class ServerThread:
    """chunkline's app served by uvicorn in a background thread, on 127.0.0.1 and a free port."""

    def __init__(
        self, settings: Settings, protocol: type[ConnectionGuards] | None = None, *, loop: str = "auto"
    ) -> None:
        self.settings = settings
        self.app = create_app(settings)
        # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say TCP.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        # log_config=None: uvicorn leaves logging alone, so its records reach pytest's caplog.
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=True,
            lifespan="on",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=5,
            loop=loop,  # auto: uvloop where it is installed, as `chunkline serve` chooses
        )
        # The server's own protocol (``protocol``: that one instead) and connection limits, as
        # `chunkline serve` runs it.
        self.server = uvicorn.Server(guard(config, settings, protocol))
        self._clients: dict[tuple[str, bool], openai.OpenAI] = {}
        #: A plain HTTP client for this server, for raw requests.
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, name="chunkline-serve", daemon=True
        )

    @property
    def loop_module(self) -> str:
        """The module of the event loop the server runs on (``uvloop``, or ``asyncio.*``)."""
        return type(self.server.servers[0].get_loop()).__module__

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("chunkline's server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        for client in self._clients.values():
            client.close()
        self.http.close()
        self.server.should_exit = True
        self._thread.join(10)
        self._socket.close()

    def client(
        self, api_key: str = CLIENT_KEY, *, _strict_response_validation: bool = False
    ) -> openai.OpenAI:
        """A sync openai client for this server (one per key and strictness: making a client
        builds an SSL context, which costs more than a request here)."""
        key = (api_key, _strict_response_validation)
        if key not in self._clients:
            self._clients[key] = openai.OpenAI(
                api_key=api_key,
                base_url=self.base_url,
                max_retries=0,
                _strict_response_validation=_strict_response_validation,
            )
        return self._clients[key]

    def async_client(self, api_key: str = CLIENT_KEY, **kwargs: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(api_key=api_key, base_url=self.base_url, max_retries=0, **kwargs)

    def post_chat(self, payload: dict[str, Any], key: str = CLIENT_KEY) -> httpx.Response:
        """A raw ``POST /v1/chat/completions`` with ``key`` as the bearer token (the whole body read)."""
        return self.http.post(
            "/v1/chat/completions", json=payload, headers={"Authorization": f"Bearer {key}"}
        )


#: Seconds from a client leaving to its upstream request's connection closing.
CANCELLED_WITHIN = 1.0


def assert_cancelled_soon(received: Received, left_at: float) -> None:
    """The upstream request ``received`` was cancelled within `CANCELLED_WITHIN` of ``left_at``
    (when the client left)."""
    assert received.wait_ended(CANCELLED_WITHIN + 1), "the upstream request was never cancelled"
    assert received.outcome == "cancelled"
    assert received.ended_at is not None
    assert received.ended_at - left_at < CANCELLED_WITHIN, (
        f"cancelled after {received.ended_at - left_at:.3f} s"
    )


def leave_a_stream(server: ServerThread, marker: str) -> float:
    """Open a chat stream whose upstream stalls (``marker`` in the request), read its first chunk
    and leave; when the client left (``time.monotonic``)."""
    with server.client().chat.completions.create(model="stall:4", messages=user(marker), stream=True) as s:
        next(iter(s))
    return time.monotonic()


def user(text: str) -> list[dict[str, Any]]:
    """A one-message conversation."""
    return [{"role": "user", "content": text}]


def sse_events(body: bytes) -> list[Any]:
    """The SSE events of a streamed body: ``data:`` JSON parsed, without ``created`` (the time of
    the stream); anything else (``[DONE]``, a keep-alive) as its text."""
    events: list[Any] = []
    for event in harness.split_events(body):
        if event.startswith(b"data: {"):
            payload = json.loads(event[6:])
            payload.pop("created", None)
            events.append(payload)
        else:
            events.append(event.decode())
    return events


def accumulate(chunks: Any) -> dict[str, Any]:
    """What a hand-written client makes of ``create(stream=True)``'s chunks: content, reasoning,
    tool calls by index, the finish reasons seen and the usage."""
    out: dict[str, Any] = {
        "content": "",
        "reasoning_content": "",
        "tool_calls": {},
        "finish": [],
        "usage": None,
    }
    for chunk in chunks:
        if chunk.usage is not None:
            out["usage"] = chunk.usage.model_dump(exclude_none=True)
        for choice in chunk.choices:
            delta = choice.delta
            out["content"] += delta.content or ""
            out["reasoning_content"] += (delta.model_extra or {}).get("reasoning_content") or ""
            for call in delta.tool_calls or []:
                entry = out["tool_calls"].setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += call.id or ""
                if call.function is not None:
                    entry["name"] += call.function.name or ""
                    entry["arguments"] += call.function.arguments or ""
            if choice.finish_reason is not None:
                out["finish"].append(choice.finish_reason)
    return out
