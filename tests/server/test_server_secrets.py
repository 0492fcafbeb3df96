"""Keys never leave the server: whatever field an upstream quotes one in, whatever the key looks like."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_anthropic import FakeAnthropic
from fake_bodies import echo_events, sse_event
from serverkit import CLIENT_KEY, SERVER_KEY, UPSTREAM_KEY, ServerThread, sse_events, user

from chunkline.events import Finish, ResponseStart, ToolCallStart, UsageUpdate
from chunkline.server.scrub import SECRETS_OPTION, RedactStage, passed_headers, redact_value
from chunkline.server.settings import Settings, SettingsError

CHUNKLINE = Path(sys.executable).parent / "chunkline"


@pytest.fixture(scope="module", autouse=True)
def scripts(upstream: FakeAnthropic) -> None:
    """Upstreams that quote the key they were sent, each in a different place."""

    async def status_quoting_key(request: Any, out: Any) -> None:
        key = request.headers["x-api-key"]
        body = {"type": "error", "error": {"type": f"rate_{key}_error", "message": f"slow down, {key}"}}
        await out.start(429, "application/json", {"retry-after": key, "request-id": f"req_{key}"})
        await out.data(json.dumps(body).encode())
        await out.end()

    async def in_band_quoting_key(request: Any, out: Any) -> None:
        key = request.headers["x-api-key"]
        error = {"type": "error", "error": {"type": f"overloaded_{key}", "message": f"busy; key {key}"}}
        await out.start(200, "text/event-stream", {"request-id": f"req_{key}"})
        for event in [*echo_events("one two")[:3], sse_event(error)]:
            await out.data(event)
        await out.end()

    async def start_quoting_key(request: Any, out: Any) -> None:
        key = request.headers["x-api-key"]
        await out.start(200, "text/event-stream")
        for event in echo_events("fine", message_id=f"msg_{key}", model=f"claude-{key}"):
            await out.data(event)
        await out.end()

    async def utf8_request_id(request: Any, out: Any) -> None:
        status = int(request.body["messages"][-1]["content"][0]["text"])
        extra: dict[str, str | bytes] = {"request-id": "req_✓".encode()}
        if status != 200:
            extra["retry-after"] = "3"
            await out.start(status, "application/json", extra)
            await out.data(json.dumps({"type": "error", "error": {"type": "x", "message": "no"}}).encode())
        else:
            await out.start(200, "text/event-stream", extra)
            for event in echo_events("kept"):
                await out.data(event)
        await out.end()

    upstream.scripts.update(
        {
            "status-key": status_quoting_key,
            "in-band-key": in_band_quoting_key,
            "start-key": start_quoting_key,
            "utf8-request-id": utf8_request_id,
        }
    )


def _post(server: ServerThread, model: str, key: str, stream: bool, **extra: Any) -> httpx.Response:
    payload = {"model": model, "messages": user("hi"), "stream": stream, **extra}
    return server.http.post("/v1/chat/completions", json=payload, headers={"Authorization": f"Bearer {key}"})


def _leaks(secret: str, response: httpx.Response, caplog: pytest.LogCaptureFixture) -> list[str]:
    places = [f"{name}: {value}" for name, value in response.headers.items() if secret in value]
    places += ["body"] if secret in response.text else []
    # The server's logs (chunkline's and uvicorn's, which `chunkline serve` configures); httpcore's
    # debug trace of raw response headers is caught here only because the test captures everything.
    places += [
        f"log: {r.getMessage()}"
        for r in caplog.records
        if r.name.startswith(("chunkline", "uvicorn")) and secret in r.getMessage()
    ]
    return places


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("model", ["script:status-key", "script:in-band-key", "script:start-key"])
def test_the_server_key_leaves_by_no_field(
    keyed_proxy: ServerThread, caplog: pytest.LogCaptureFixture, model: str, stream: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    response = _post(keyed_proxy, model, SERVER_KEY, stream)
    assert _leaks(UPSTREAM_KEY, response, caplog) == []
    assert "[redacted]" in response.text
    if model == "script:status-key":
        assert response.status_code == 429
        error = response.json()["error"]
        assert error["type"] == error["code"] == "rate_[redacted]_error"
        assert "anthropic-request-id" not in response.headers and "retry-after" not in response.headers


def test_an_in_band_error_type_is_redacted_by_value(keyed_proxy: ServerThread) -> None:
    events = sse_events(_post(keyed_proxy, "script:in-band-key", SERVER_KEY, True).content)
    assert events[-2] == {
        "error": {
            "message": "busy; key [redacted]",
            "type": "upstream_error",
            "param": None,
            "code": "overloaded_[redacted]",
        }
    }
    whole = _post(keyed_proxy, "script:in-band-key", SERVER_KEY, False)
    assert whole.status_code == 502
    assert whole.json()["error"]["code"] == "overloaded_[redacted]"


@pytest.mark.parametrize("key", ["e", "{", "k", '"', "error", ":"])
def test_a_short_pass_through_key_changes_only_its_own_occurrences(proxy: ServerThread, key: str) -> None:
    events = sse_events(_post(proxy, "script:in-band-key", key, True).content)
    assert events[-1] == "data: [DONE]"
    error = events[-2]["error"]
    assert error["message"] == f"busy; key {key}".replace(key, "[redacted]")
    assert error["code"] == f"overloaded_{key}".replace(key, "[redacted]")
    assert error["type"] == "upstream_error"
    assert events[1]["choices"][0]["delta"] == {"content": "one "}
    whole = _post(proxy, "script:in-band-key", key, False)
    assert whole.json()["error"]["code"] == f"overloaded_{key}".replace(key, "[redacted]")
    assert whole.json()["error"]["type"] == "upstream_error"


@pytest.mark.parametrize("status", [200, 429])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_a_request_id_that_is_not_latin1_is_dropped_not_a_500(
    proxy: ServerThread, status: int, stream: bool
) -> None:
    payload = {"model": "script:utf8-request-id", "messages": user(str(status)), "stream": stream}
    response = proxy.http.post(
        "/v1/chat/completions", json=payload, headers={"Authorization": f"Bearer {CLIENT_KEY}"}
    )
    assert response.status_code == status
    assert "anthropic-request-id" not in response.headers
    if status == 429:
        assert response.headers["retry-after"] == "3"
    elif not stream:
        assert response.json()["choices"][0]["message"]["content"] == "kept"


def test_a_client_key_that_is_not_ascii_is_a_401_and_never_logged(
    proxy: ServerThread, keyed_proxy: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = "sk-ünïcode-secret"
    for server in (proxy, keyed_proxy):
        for header in ("authorization", "x-api-key"):
            value = f"Bearer {key}" if header == "authorization" else key
            response = server.http.post(
                "/v1/chat/completions",
                content=json.dumps({"model": "echo", "messages": user("hi")}).encode(),
                headers={header: value.encode()},  # type: ignore[dict-item]
            )
            assert response.status_code == 401, response.text
            assert "nïcode" not in response.text
    assert "nïcode" not in caplog.text and "secret" not in caplog.text


def test_an_anthropic_beta_header_that_is_not_ascii_is_a_400(proxy: ServerThread) -> None:
    response = proxy.http.post(
        "/v1/chat/completions",
        json={"model": "echo", "messages": user("hi")},
        headers={"authorization": f"Bearer {CLIENT_KEY}", "anthropic-beta": "fancy-β".encode()},  # type: ignore[dict-item]
    )
    assert response.status_code == 400
    assert "anthropic-beta" in response.json()["error"]["message"]


@pytest.mark.parametrize("variable", ["ANTHROPIC_API_KEY", "CHUNKLINE_API_KEYS"])
def test_a_server_key_that_is_not_ascii_is_refused_at_start_without_printing_it(variable: str) -> None:
    key = "sk-ant-ключ-0123456789"
    environ = {"CHUNKLINE_API_KEYS": "team-key", "ANTHROPIC_API_KEY": "sk-ant-fine", variable: key}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)
    assert variable in str(caught.value) and "ключ" not in str(caught.value)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHUNKLINE_")}
    result = subprocess.run(
        [str(CHUNKLINE), "serve", "--port", "0"],
        env={**env, **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert variable in result.stderr
    assert "ключ" not in result.stderr + result.stdout


def test_redact_value_touches_only_the_key() -> None:
    nested: Any = {"e": ["e", {"ee": ("a e",)}], "n": 1, "nil": None}
    assert redact_value(nested, ["e"]) == {
        "[redacted]": ["[redacted]", {"[redacted][redacted]": ("a [redacted]",)}],
        "n": 1,
        "nil": None,
    }
    deep: Any = []
    for _ in range(100_000):
        deep = [deep, "k"]
    redacted = redact_value(deep, ["k"])
    assert redacted[1] == "[redacted]"
    assert redact_value("text", []) == "text"


def test_the_redaction_stage_passes_events_without_the_key_as_they_are() -> None:
    stage = RedactStage({SECRETS_OPTION: ("", "sk-key")})
    emitted: list[Any] = []
    stage.emit = emitted.append  # type: ignore[method-assign]
    clean = [
        ResponseStart("msg_1", "claude"),
        ToolCallStart(0, "toolu_1", "run"),
        Finish("stop", "end_turn", None, UsageUpdate(input_tokens=3, output_tokens=4)),
    ]
    quoting = [
        ResponseStart("msg_sk-key", "claude"),
        ToolCallStart(0, "toolu_1", "run sk-key"),
        Finish("stop", "end_turn", "sk-key!", UsageUpdate(input_tokens=3)),
    ]
    for event in clean + quoting:
        stage.feed(event)
    assert all(out is event for out, event in zip(emitted, clean, strict=False))
    assert emitted[3:] == [
        ResponseStart("msg_[redacted]", "claude"),
        ToolCallStart(0, "toolu_1", "run [redacted]"),
        Finish("stop", "end_turn", "[redacted]!", UsageUpdate(input_tokens=3)),
    ]


def test_passed_headers_are_an_allow_list_checked_per_value() -> None:
    headers = {
        "request-id": "req_011CQ",
        "retry-after": "30",
        "set-cookie": "a=b",
        "anthropic-organization-id": "org",
    }
    assert passed_headers(headers, ["sk"]) == {"anthropic-request-id": "req_011CQ", "retry-after": "30"}
    assert passed_headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, []) == {
        "retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"
    }
    for bad in ("req 1", "req\x01", "req_é", "x" * 200, "req_sk-secret"):
        assert passed_headers({"request-id": bad}, ["sk-secret"]) == {}
    assert passed_headers({"retry-after": "soon"}, []) == {}
