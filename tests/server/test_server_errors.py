"""Failures through the server: upstream errors before and during the stream, timeouts, bad requests."""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any

import openai
import pytest
from fake_anthropic import FakeAnthropic
from serverkit import CLIENT_KEY, ServerThread, accumulate, user

import harness
from chunkline.server.settings import Settings

STATUS_ERRORS = [
    (400, openai.BadRequestError, "invalid_request_error"),
    (401, openai.AuthenticationError, "authentication_error"),
    (403, openai.PermissionDeniedError, "permission_error"),
    (404, openai.NotFoundError, "not_found_error"),
    (413, openai.APIStatusError, "request_too_large"),
    (429, openai.RateLimitError, "rate_limit_error"),
    (500, openai.InternalServerError, "api_error"),
    (529, openai.InternalServerError, "overloaded_error"),
]


def _text_of_first_events(recording: str, count: int) -> str:
    events = harness.parse_anthropic_sse(
        harness.load_complete_sse(harness.ANTHROPIC_FIXTURES / f"{recording}.sse")
    )
    return "".join(
        e.data["delta"].get("text", "") for e in events[:count] if e.data["type"] == "content_block_delta"
    )


# -- before the stream: the upstream's status, OpenAI's error body (R42) ---------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize(
    ("status", "error_class", "kind"), STATUS_ERRORS, ids=[str(s[0]) for s in STATUS_ERRORS]
)
def test_an_upstream_error_status_keeps_its_status(
    proxy: ServerThread, status: int, error_class: type[openai.APIStatusError], kind: str, stream: bool
) -> None:
    with pytest.raises(error_class) as caught:
        proxy.client().chat.completions.create(model=f"status:{status}", messages=user("hi"), stream=stream)
    error = caught.value
    assert type(error) is error_class
    assert error.status_code == status
    assert error.body == {
        "message": f"fake upstream says {status}",
        "type": kind,
        "param": None,
        "code": kind,
    }
    assert error.message == f"Error code: {status} - fake upstream says {status}"
    assert error.response.headers["content-type"] == "application/json"
    assert error.response.headers["anthropic-request-id"] == "req_fake_1"
    if status in (429, 529):
        assert error.response.headers["retry-after"] == "7"


def test_a_non_json_upstream_error_keeps_its_status(proxy: ServerThread) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        proxy.client().chat.completions.create(model="status:502:html", messages=user("hi"), stream=True)
    assert caught.value.status_code == 502
    assert caught.value.body == {
        "message": "the upstream answered HTTP 502: <html><body><h1>502 Bad Gateway</h1></body></html>",
        "type": "upstream_error",
        "param": None,
        "code": "upstream_error",
    }


def test_an_unreachable_upstream_is_a_502() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ServerThread(Settings(upstream=f"http://127.0.0.1:{port}")).start()
    try:
        with pytest.raises(openai.InternalServerError) as caught:
            server.client().chat.completions.create(model="echo", messages=user("hi"), stream=True)
        assert caught.value.status_code == 502
        assert caught.value.body["type"] == "upstream_unavailable"
        assert caught.value.body["message"].startswith("the upstream could not be reached: ConnectError")
    finally:
        server.stop()


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_an_upstream_that_never_answers_is_a_504(
    quick_proxy: ServerThread, upstream: FakeAnthropic, stream: bool
) -> None:
    marker = f"no headers ever {stream}"
    with pytest.raises(openai.InternalServerError) as caught:
        quick_proxy.client().chat.completions.create(
            model="stall-headers", messages=user(marker), stream=stream
        )
    assert caught.value.status_code == 504
    assert caught.value.body == {
        "message": "the upstream did not answer POST /v1/messages within 0.5 seconds "
        "(CHUNKLINE_FIRST_BYTE_TIMEOUT)",
        "type": "upstream_timeout",
        "param": None,
        "code": None,
    }
    received = upstream.find(marker)
    assert received.wait_ended(1.0) and received.outcome == "cancelled"


# -- during the stream: in-band errors (R41, R43) ---------------------------------------------------


def _stream_error(
    server: ServerThread, model: str, marker: str = "hi"
) -> tuple[dict[str, Any], openai.APIError]:
    chunks: list[Any] = []
    client = server.client()
    with (
        pytest.raises(openai.APIError) as caught,
        client.chat.completions.create(model=model, messages=user(marker), stream=True) as stream,
    ):
        for chunk in stream:
            chunks.append(chunk)
    got = accumulate(chunks)
    assert got["finish"] == [], "a finish for a failed stream"
    assert type(caught.value) is openai.APIError
    return got, caught.value


def test_an_error_event_mid_stream(proxy: ServerThread, caplog: pytest.LogCaptureFixture) -> None:
    got, error = _stream_error(proxy, "error-mid:llm_long_text:5")
    logged = [r.getMessage() for r in caplog.records if r.name == "chunkline.server"]
    faults = [m for m in logged if m.startswith("stream ended by a fault [request req_")]
    assert any(']: {"error":{"message":"Overloaded"' in m for m in faults), logged
    assert error.message == "Overloaded"
    assert error.body == {
        "message": "Overloaded",
        "type": "upstream_error",
        "param": None,
        "code": "overloaded_error",
    }
    assert got["content"] == _text_of_first_events("llm_long_text", 5)
    assert got["content"]


def test_a_stream_cut_short(proxy: ServerThread) -> None:
    got, error = _stream_error(proxy, "cut:llm_long_text:1500")
    assert error.message == "the upstream stream ended before 'message_stop': the response is incomplete"
    assert error.body["type"] == "upstream_truncated"
    whole = _text_of_first_events("llm_long_text", 1000)
    assert got["content"] and whole.startswith(got["content"])


def test_a_connection_dropped_mid_stream(proxy: ServerThread) -> None:
    got, error = _stream_error(proxy, "drop:llm_long_text:1500")
    assert error.message == (
        "reading the upstream failed: RemoteProtocolError: peer closed connection without sending "
        "complete message body (incomplete chunked read)"
    )
    assert error.body["type"] == "upstream_error"
    assert _text_of_first_events("llm_long_text", 1000).startswith(got["content"])


def test_a_silent_upstream_mid_stream(quick_proxy: ServerThread, upstream: FakeAnthropic) -> None:
    marker = "one two three four five"
    got, error = _stream_error(quick_proxy, "stall:4", marker)
    assert error.message == "the upstream sent nothing for 0.5 seconds; the stream was cut off"
    assert error.body["type"] == "upstream_timeout"
    assert got["content"] == "one two "  # the two deltas among the first four events
    received = upstream.find(marker)
    assert received.wait_ended(1.0) and received.outcome == "cancelled"


def test_a_silent_upstream_without_streaming_is_a_504(quick_proxy: ServerThread) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        quick_proxy.client().chat.completions.create(model="stall:4", messages=user("a b c"))
    assert caught.value.status_code == 504
    assert caught.value.body["type"] == "upstream_timeout"


def test_an_endless_stream_is_cut_at_the_stream_timeout(
    quick_proxy: ServerThread, upstream: FakeAnthropic
) -> None:
    marker = "pings forever"
    _, error = _stream_error(quick_proxy, "pings", marker)
    assert error.message == (
        "the response ran past this server's limit of 1 seconds per stream "
        "(CHUNKLINE_STREAM_TIMEOUT) and was cut off"
    )
    assert error.type == "upstream_timeout"
    received = upstream.find(marker)
    assert received.wait_ended(1.0) and received.outcome == "cancelled"


# -- requests the server refuses -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "param", "message"),
    [
        ({"n": 2}, "n", "'n' is not supported: Claude returns one choice per request"),
        ({"extra_body": {"top_k": 5}}, "top_k", "Unrecognized request argument supplied: top_k"),
        ({"temperature": 1.5}, "temperature", None),
        ({"messages": [{"role": "user", "content": ""}]}, "messages[0]", None),
    ],
)
def test_a_request_that_cannot_be_mapped_is_a_400(
    proxy: ServerThread, upstream: FakeAnthropic, kwargs: dict[str, Any], param: str, message: str | None
) -> None:
    before = len(upstream.requests)
    request: dict[str, Any] = {"model": "echo", "messages": user("hi"), **kwargs}
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client().chat.completions.create(**request)
    assert caught.value.body["param"] == param
    assert caught.value.body["type"] == "invalid_request_error"
    if message is not None:
        assert caught.value.body["message"] == message
    assert len(upstream.requests) == before, "a refused request reached the upstream"


def test_a_body_that_is_not_json(proxy: ServerThread) -> None:
    response = proxy.http.post(
        "/v1/chat/completions", content=b"{not json", headers={"Authorization": f"Bearer {CLIENT_KEY}"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["message"].startswith("the request body is not valid JSON: ")
    assert body["error"]["type"] == "invalid_request_error"


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"type": "object"}
    for _ in range(depth):
        value = {"type": "object", "properties": {"inner": value}}
    return value


@pytest.mark.parametrize(
    ("fields", "param", "message"),
    [
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": _nested(150)}}]},
            None,
            "the request nests JSON more than 254 levels deep, deeper than this server sends upstream",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": _nested(150)},
                }
            },
            "response_format.json_schema.schema",
            "response_format.json_schema.schema nests more than 254 levels deep",
        ),
    ],
    ids=["tool-parameters", "response-format"],
)
def test_json_nested_deeper_than_can_be_sent_upstream_is_a_400(
    proxy: ServerThread, upstream: FakeAnthropic, fields: dict[str, Any], param: str | None, message: str
) -> None:
    """orjson reads 1024 levels but writes 254: such a request parses, and is refused, not a 500."""
    before = len(upstream.requests)
    for stream in (True, False):
        with pytest.raises(openai.BadRequestError) as caught:
            proxy.client().chat.completions.create(
                model="echo", messages=user("deep"), stream=stream, **fields
            )
        assert caught.value.body == {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": None,
        }
    assert len(upstream.requests) == before


def test_a_body_too_large_is_a_413(quick_proxy: ServerThread) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        quick_proxy.client().chat.completions.create(model="echo", messages=user("x" * 5000))
    assert caught.value.status_code == 413
    assert caught.value.body["code"] == "request_too_large"
    # The same without a content-length (chunked upload): counted as it arrives.
    response = quick_proxy.http.post(
        "/v1/chat/completions",
        content=iter([b'{"model": "echo", "messages": [{"role": "user", "content": "', b"x" * 5000, b'"}]}']),
        headers={"Authorization": f"Bearer {CLIENT_KEY}"},
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v1/nothing-here", 404), ("GET", "/v1/chat/completions", 405), ("POST", "/healthz", 405)],
)
def test_unknown_paths_and_methods_answer_in_the_openai_shape(
    proxy: ServerThread, method: str, path: str, status: int
) -> None:
    response = proxy.http.request(method, path)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert path in error["message"]


def test_healthz(proxy: ServerThread) -> None:
    response = proxy.http.get("/healthz")
    assert response.status_code == 200
    health = response.json()
    assert (health["status"], health["version"]) == ("ok", __import__("chunkline").__version__)
    assert health["stages"][:3] == ["parse", "decode", "observe"] and health["stages"][-1] == "serialize"
    assert health["options"]["thinking"] == "reasoning_content"
    assert response.headers["x-request-id"].startswith("req_")


def test_the_root_says_what_the_server_is(proxy: ServerThread, caplog: pytest.LogCaptureFixture) -> None:
    """A browser, or a client checking its base URL (Claude Code sends ``HEAD /``), gets an
    answer, not a 404 counted as a fault."""
    caplog.set_level(logging.INFO, logger="chunkline.access")
    about = proxy.http.get("/")
    assert about.status_code == 200
    assert about.json()["name"] == "chunkline"
    assert {"POST /v1/chat/completions", "POST /v1/responses", "GET /healthz"} <= set(about.json()["routes"])
    head = proxy.http.head("/")
    assert (head.status_code, head.content) == (200, b"")
    assert "fault=-" in caplog.text and "status=404" not in caplog.text


def test_models_from_the_upstream(proxy: ServerThread) -> None:
    client = proxy.client()
    models = client.models.list()
    assert [(m.id, m.owned_by) for m in models.data] == [
        ("claude-sonnet-4-5", "anthropic"),
        ("claude-haiku-4-5", "anthropic"),
    ]
    assert models.data[0].created == 1759104000
    assert client.models.retrieve("claude-haiku-4-5").id == "claude-haiku-4-5"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-5")
    assert caught.value.body["code"] == "model_not_found"


def test_the_error_body_is_json_for_the_sdk_to_read(proxy: ServerThread) -> None:
    response = proxy.post_chat({"model": "status:529", "messages": user("hi"), "stream": True})
    assert response.status_code == 529
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.content) == {
        "error": {
            "message": "fake upstream says 529",
            "type": "overloaded_error",
            "param": None,
            "code": "overloaded_error",
        }
    }


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_an_upstream_that_answers_json_instead_of_a_stream(proxy: ServerThread, stream: bool) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        proxy.client().chat.completions.create(model="json-200", messages=user("hi"), stream=stream)
    assert caught.value.status_code == 502
    assert caught.value.body["type"] == "invalid_upstream_response"
    assert caught.value.body["message"].startswith(
        "the upstream answered 200 with JSON, not an event stream (text/event-stream): {"
    )


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_the_answer_ends_at_message_stop_however_long_the_upstream_lingers(
    proxy: ServerThread, upstream: FakeAnthropic, stream: bool
) -> None:
    """R5: the body ends right after [DONE]; the upstream's body that never ends is closed."""
    marker = f"lingering upstream {stream}"
    started = time.monotonic()
    client = proxy.client()
    if stream:
        with client.chat.completions.create(
            model="linger:llm_long_text", messages=user(marker), stream=True
        ) as chunks:
            got = accumulate(chunks)
        assert got["finish"] == ["stop"]
    else:
        completion = client.chat.completions.create(model="linger:llm_long_text", messages=user(marker))
        assert completion.choices[0].finish_reason == "stop"
    assert time.monotonic() - started < 1.0
    received = upstream.find(marker)
    assert received.wait_ended(1.0) and received.outcome == "cancelled"
