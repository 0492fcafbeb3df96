"""Request ids and access lines: x-request-id kept or made, sent upstream; a line per request; no secrets."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest
from fake_anthropic import FakeAnthropic
from processkit import free_port, serve, stop, wait_healthy
from serverkit import CLIENT_KEY, ServerThread, user

from chunkline.server.accesslog import ACCESS_LOGGER

FIELDS = [
    "request_id",
    "method",
    "route",
    "status",
    "model",
    "upstream_model",
    "upstream_request_id",
    "stream",
    "ttfb_ms",
    "ttft_ms",
    "duration_ms",
    "tokens_in",
    "tokens_out",
    "tokens_cached",
    "finish",
    "fault",
    "bytes_out",
]


def _access(caplog: pytest.LogCaptureFixture, request_id: str) -> dict[str, object]:
    # The line is written as the request ends, which may be just after the client has its answer.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(
        r.name == ACCESS_LOGGER and r.access["request_id"] == request_id  # type: ignore[attr-defined]
        for r in caplog.records
    ):
        time.sleep(0.01)
    lines = [r for r in caplog.records if r.name == ACCESS_LOGGER and r.access["request_id"] == request_id]  # type: ignore[attr-defined]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    fields: dict[str, object] = lines[0].access  # type: ignore[attr-defined]
    assert list(fields) == FIELDS
    return fields


def test_a_sane_client_request_id_is_kept_and_sent_upstream(
    proxy: ServerThread, upstream: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    marker = "request id kept"
    payload = {"model": "echo", "messages": user(marker), "stream": True}
    headers = {"Authorization": f"Bearer {CLIENT_KEY}", "x-request-id": "client-42.a:b"}
    response = proxy.http.post("/v1/chat/completions", json=payload, headers=headers)
    assert response.headers["x-request-id"] == "client-42.a:b"
    assert upstream.find(marker).headers["x-request-id"] == "client-42.a:b"
    fields = _access(caplog, "client-42.a:b")
    assert fields["route"] == "/v1/chat/completions" and fields["method"] == "POST"
    assert (fields["status"], fields["stream"], fields["model"]) == (200, True, "echo")
    assert (fields["upstream_model"], fields["upstream_request_id"]) == ("claude-echo", "req_fake_1")
    assert (fields["tokens_in"], fields["tokens_out"], fields["tokens_cached"]) == (3, 3, None)
    assert (fields["finish"], fields["fault"]) == ("end_turn", None)
    assert fields["bytes_out"] == len(response.content)
    assert isinstance(fields["ttfb_ms"], float) and isinstance(fields["duration_ms"], float)
    assert 0 <= fields["ttfb_ms"] <= fields["ttft_ms"] <= fields["duration_ms"]  # type: ignore[operator]


def test_a_responses_stream_is_logged_as_a_chat_stream_is(
    proxy: ServerThread, upstream: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    marker = "responses id kept"
    payload = {"model": "echo", "input": marker, "stream": True}
    headers = {"Authorization": f"Bearer {CLIENT_KEY}", "x-request-id": "codex-7"}
    response = proxy.http.post("/v1/responses", json=payload, headers=headers)
    assert response.status_code == 200 and b"response.completed" in response.content
    assert upstream.find(marker).headers["x-request-id"] == "codex-7"
    fields = _access(caplog, "codex-7")
    assert (fields["route"], fields["status"], fields["stream"], fields["model"]) == (
        "/v1/responses",
        200,
        True,
        "echo",
    )
    assert (fields["upstream_model"], fields["finish"], fields["fault"]) == ("claude-echo", "end_turn", None)
    assert (fields["tokens_in"], fields["tokens_out"]) == (3, 3)


@pytest.mark.parametrize("given", ["has spaces", "x" * 129, "-starts-with-a-dash", "ünïcode", ""])
def test_an_insane_or_missing_request_id_is_replaced(proxy: ServerThread, given: str) -> None:
    headers = {"x-request-id": given.encode("utf-8")} if given else {}
    response = proxy.http.get("/healthz", headers=headers)
    made = response.headers["x-request-id"]
    assert made.startswith("req_") and len(made) == 36 and made != given


def test_every_response_carries_an_id(proxy: ServerThread, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    for response in (
        proxy.http.get("/nowhere"),
        proxy.http.post("/healthz"),
        proxy.post_chat({"model": "status:503", "messages": user("x")}),
        proxy.post_chat({"model": "echo", "messages": user("whole")}),
    ):
        fields = _access(caplog, response.headers["x-request-id"])
        assert fields["status"] == response.status_code
    assert fields["stream"] is False and fields["finish"] == "end_turn"
    errors = [r for r in caplog.records if r.name == ACCESS_LOGGER and r.access["status"] == 503]  # type: ignore[attr-defined]
    assert errors[-1].access["fault"] == "api_error"  # type: ignore[attr-defined]


def test_json_lines_and_no_secrets_in_any_log(upstream: FakeAnthropic) -> None:
    """A real process with CHUNKLINE_LOG_FORMAT=json and the server's own keys: every line it
    writes is a JSON object, and no key, prompt or answer text is in any of them, faults included."""
    server_key, upstream_key = "sk-team-LOGCHECK-0001", "sk-ant-LOGCHECK-upstream-0002"
    prompt = "zebra quokka narwhal"  # echoed back: the answer holds the same words
    port = free_port()
    process = serve(
        ["--port", str(port), "--upstream", upstream.url],
        {
            "CHUNKLINE_LOG_FORMAT": "json",
            "CHUNKLINE_API_KEYS": server_key,
            "ANTHROPIC_API_KEY": upstream_key,
        },
    )
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {server_key}"}
    try:
        wait_healthy(url, process)
        with httpx.Client(base_url=url, headers=auth, timeout=10) as http:
            for model, stream in [
                ("echo", True),
                ("echo", False),
                ("error-mid:llm_long_text:5:quote-key", True),
                ("status:500:quote-key", False),
                ("error-mid:llm_long_text:5:quote-key", False),
            ]:
                http.post(
                    "/v1/chat/completions", json={"model": model, "messages": user(prompt), "stream": stream}
                )
            http.post("/v1/chat/completions", headers={"Authorization": "Bearer sk-wrong-LOGCHECK"}, json={})
    finally:
        out, err = stop(process)
    everything = out + err
    for secret in (server_key, upstream_key, "sk-wrong-LOGCHECK", "zebra", "quokka", "narwhal"):
        assert secret not in everything, f"{secret!r} is in the logs"
    lines = [json.loads(line) for line in out.splitlines()]
    access = [line for line in lines if line["logger"] == ACCESS_LOGGER]
    assert [line["route"] for line in access].count("/v1/chat/completions") == 6
    assert all(set(FIELDS) <= set(line) for line in access)
    assert {line["fault"] for line in access} >= {
        None,
        "upstream_error",
        "api_error",
        "invalid_request_error",
    }
    logged = [json.loads(line) for line in err.splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in logged)
    faults = [line for line in logged if "fault" in line["message"]]
    assert faults and all("[request req_" in line["message"] for line in faults)


def test_a_client_that_leaves_is_logged_so(proxy: ServerThread, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    payload = {"model": "stall:2", "messages": user("leaving early"), "stream": True}
    headers = {"Authorization": f"Bearer {CLIENT_KEY}", "x-request-id": "leaves-early"}
    with (
        httpx.Client(base_url=proxy.url, timeout=10) as http,
        http.stream("POST", "/v1/chat/completions", json=payload, headers=headers) as response,
    ):
        next(response.iter_raw())
    fields = _access(caplog, "leaves-early")
    assert (fields["status"], fields["fault"], fields["finish"]) == (200, "client_disconnected", None)
