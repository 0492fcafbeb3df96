"""Graceful shutdown of a real ``chunkline serve``: on SIGTERM mid-stream, what can finish in the grace
period finishes, the rest ends with an in-band error, and no new connection is taken."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from typing import Any

import httpx
from fake_anthropic import FakeAnthropic
from processkit import free_port, serve, stop, wait_healthy
from serverkit import user

GRACE = 2.0


class _Stream(threading.Thread):
    """One streaming request read to its end in a thread; ``started`` is set at its first bytes."""

    def __init__(self, url: str, model: str, path: str = "/v1/chat/completions") -> None:
        super().__init__(daemon=True)
        self.url, self.model, self.path = url, model, path
        self.started = threading.Event()
        self.body = b""
        self.ended_at = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        payload: dict[str, Any] = {"model": self.model, "stream": True}
        if self.path == "/v1/responses":
            payload["input"] = "graceful shutdown"
        else:
            payload["messages"] = user("graceful shutdown")
        try:
            with httpx.stream(
                "POST",
                f"{self.url}{self.path}",
                json=payload,
                headers={"Authorization": "Bearer k"},
                timeout=30,
            ) as response:
                for data in response.iter_raw():
                    self.body += data
                    self.started.set()
        except BaseException as exc:
            self.error = exc
        self.ended_at = time.monotonic()
        self.started.set()

    def events(self) -> list[Any]:
        return [
            json.loads(part[6:]) if part.startswith(b"data: {") else part.decode()
            for part in self.body.split(b"\n\n")
            if part
        ]


def test_sigterm_lets_streams_finish_then_ends_the_rest_in_band(upstream: FakeAnthropic) -> None:
    port = free_port()
    process = serve(["--port", str(port), "--upstream", upstream.url, "--shutdown-timeout", str(GRACE)])
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process)
    finishing = _Stream(url, "llm_long_text~8")  # about 105 events 8 ms apart: under a second
    endless = _Stream(url, "stall:3")  # three events, then nothing until the client leaves
    for stream in (finishing, endless):
        stream.start()
        assert stream.started.wait(10)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    # Stopped accepting: a new connection is refused (or, if the kernel took it, never answered).
    with socket.socket() as probe:
        probe.settimeout(1)
        try:
            probe.connect(("127.0.0.1", port))
            probe.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            assert probe.recv(100) == b"", "a connection made after SIGTERM was served"
        except (ConnectionRefusedError, ConnectionResetError, TimeoutError):
            pass
    finishing.join(15)
    endless.join(15)
    out, err = stop(process, signal.SIGTERM, timeout=15)

    # The stream that could finish in the grace period finished, whole.
    assert finishing.error is None, finishing.error
    events = finishing.events()
    assert events[-1] == "data: [DONE]"
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert not any(isinstance(e, dict) and "error" in e for e in events)
    assert finishing.ended_at - signalled < GRACE

    # The other was ended in-band when the grace period ran out, and the client read it to [DONE].
    assert endless.error is None, endless.error
    events = endless.events()
    assert events[-1] == "data: [DONE]"
    error = events[-2]["error"]
    assert error["type"] == error["code"] == "server_shutting_down"
    assert "grace period of 2 seconds (CHUNKLINE_SHUTDOWN_TIMEOUT)" in error["message"]
    assert GRACE - 0.2 < endless.ended_at - signalled < GRACE + 3
    assert "shutting down: 2 answer(s) open get up to 2 seconds to finish" in err
    assert "fault=server_shutting_down" in out
    assert process.returncode in (0, -signal.SIGTERM)


def test_sigterm_fails_an_open_responses_stream_in_band(upstream: FakeAnthropic) -> None:
    """A Responses stream cut off by the end of the grace period ends as the route's own failure:
    ``response.failed`` for the response the stream began (not a second one), read to its end.
    A Responses request not streamed, still being assembled then, gets a 503."""
    port = free_port()
    process = serve(["--port", str(port), "--upstream", upstream.url, "--shutdown-timeout", str(GRACE)])
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process)
    endless = _Stream(url, "stall:3", "/v1/responses")
    endless.start()
    whole: list[httpx.Response] = []
    waiting = threading.Thread(
        target=lambda: whole.append(
            httpx.post(
                f"{url}/v1/responses",
                json={"model": "stall:3", "input": "whole"},
                headers={"Authorization": "Bearer k"},
                timeout=30,
            )
        ),
        daemon=True,
    )
    waiting.start()
    assert endless.started.wait(10)
    time.sleep(0.3)  # the whole answer's request is upstream too by now
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    endless.join(15)
    waiting.join(15)
    out, err = stop(process, signal.SIGTERM, timeout=15)

    assert whole and whole[0].status_code == 503
    assert whole[0].json()["error"]["type"] == "server_shutting_down"

    assert endless.error is None, endless.error
    frames = [part.split(b"\n", 1) for part in endless.body.split(b"\n\n") if part]
    names = [name.removeprefix(b"event: ").decode() for name, _ in frames]
    assert names[0] == "response.created" and names.count("response.created") == 1
    assert names[-1] == "response.failed"
    created = json.loads(frames[0][1].removeprefix(b"data: "))["response"]
    failed = json.loads(frames[-1][1].removeprefix(b"data: "))["response"]
    assert failed["id"] == created["id"]
    assert failed["status"] == "failed"
    # The route's error shape: Responses' own code, and the fault's type beside it.
    assert failed["error"]["type"] == "server_shutting_down"
    assert failed["error"]["code"] == "server_error"
    assert "grace period of 2 seconds (CHUNKLINE_SHUTDOWN_TIMEOUT)" in failed["error"]["message"]
    assert GRACE - 0.2 < endless.ended_at - signalled < GRACE + 3
    assert "fault=server_shutting_down" in out
    assert "stream cut off by the shutdown" in err
