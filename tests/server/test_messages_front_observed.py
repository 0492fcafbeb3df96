"""The Messages front is observed as the other is: request ids, access lines, metrics, faults, shutdown."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from fake_openai_chat import FakeOpenAIChat
from serverkit import ServerThread

from chunkline.server.accesslog import ACCESS_LOGGER
from chunkline.server.settings import Settings

CLIENT_KEY = "sk-client-observed-4444"
HEADERS = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def front(chat_upstream: FakeOpenAIChat) -> Iterator[ServerThread]:
    settings = Settings(
        upstream=f"{chat_upstream.url}/v1",
        upstream_format="openai-chat",
        model_map={"claude-*": "echo"},
    )
    server = ServerThread(settings).start()
    yield server
    server.stop()


def _access(caplog: pytest.LogCaptureFixture, request_id: str) -> dict[str, object]:
    # The line is written as the request ends, which may be just after the client has its answer.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [
            r.access  # type: ignore[attr-defined]
            for r in caplog.records
            if r.name == ACCESS_LOGGER and r.access["request_id"] == request_id  # type: ignore[attr-defined]
        ]
        if lines:
            assert len(lines) == 1
            fields: dict[str, object] = lines[0]
            return fields
        time.sleep(0.01)
    raise AssertionError(f"no access line for {request_id}")


def _body(model: str, text: str, *, stream: bool = True) -> dict[str, object]:
    return {
        "model": model,
        "max_tokens": 64,
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
    }


def test_a_stream_carries_its_id_upstream_and_into_its_access_line_and_metrics(
    front: ServerThread, chat_upstream: FakeOpenAIChat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    response = front.http.post(
        "/v1/messages?beta=true",
        json=_body("claude-sonnet-4-5", "observed marker-7"),
        headers={**HEADERS, "x-request-id": "cc-7"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "cc-7"
    assert b"event: message_stop" in response.content
    assert chat_upstream.find("marker-7").headers["x-request-id"] == "cc-7"
    fields = _access(caplog, "cc-7")
    assert (fields["route"], fields["method"], fields["status"]) == ("/v1/messages", "POST", 200)
    assert (fields["stream"], fields["model"], fields["fault"]) == (True, "claude-sonnet-4-5", None)
    assert fields["upstream_model"] == "gen-model"  # the name the upstream's chunks carry
    assert (fields["tokens_in"], fields["tokens_out"], fields["tokens_cached"]) == (12, 5, 2)
    assert fields["finish"] == "stop"
    assert fields["bytes_out"] == len(response.content)
    assert 0 <= fields["ttfb_ms"] <= fields["ttft_ms"] <= fields["duration_ms"]  # type: ignore[operator]

    metrics = front.http.get("/metrics").text
    assert 'http_route="/v1/messages"' in metrics
    assert "chunkline_streams_in_flight" in metrics


@pytest.mark.parametrize(
    ("model", "stream", "status", "fault"),
    [
        ("error-mid", True, 200, "api_error"),
        ("error-mid", False, 502, "upstream_error"),
        ("status:429", True, 429, "invalid_request_error"),  # the upstream's own error type
    ],
)
def test_faults_are_noted_in_the_access_line(
    front: ServerThread,
    caplog: pytest.LogCaptureFixture,
    model: str,
    stream: bool,
    status: int,
    fault: str,
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    request_id = f"fault-{model.replace(':', '-')}-{stream}"
    response = front.http.post(
        "/v1/messages", json=_body(model, "x", stream=stream), headers={**HEADERS, "x-request-id": request_id}
    )
    assert response.status_code == status
    fields = _access(caplog, request_id)
    assert (fields["status"], fields["fault"]) == (status, fault)


def test_a_stream_open_when_the_grace_period_ends_is_ended_in_band(chat_upstream: FakeOpenAIChat) -> None:
    settings = Settings(
        upstream=f"{chat_upstream.url}/v1", upstream_format="openai-chat", shutdown_timeout=0.5
    )
    front = ServerThread(settings).start()
    try:
        _cut_off(front)
    finally:
        front.stop()


def _cut_off(front: ServerThread) -> None:
    shutdown = front.app.state.chunkline.shutdown
    started = threading.Event()
    body = b""
    with httpx.stream(
        "POST", f"{front.url}/v1/messages", json=_body("stall", "x"), headers=HEADERS, timeout=10
    ) as response:
        for data in response.iter_raw():
            body += data
            if not started.is_set():
                started.set()
                shutdown._loop.call_soon_threadsafe(shutdown.begin)
    assert response.status_code == 200
    assert body.count(b"event: error") == 1 and b"message_stop" not in body
    assert b"grace period of 0.5 seconds (CHUNKLINE_SHUTDOWN_TIMEOUT)" in body
