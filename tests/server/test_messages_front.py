"""``chunkline serve --upstream-format openai-chat``: the anthropic SDK against the server, in front of a
fake OpenAI-compatible upstream (answers, translation, auth, faults, disconnects, keys kept out of logs)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from fake_openai_chat import FakeOpenAIChat
from serverkit import ServerThread

from chat_route import load_chat_sse, message_reading, openai_reading, single_choice_paths
from chunkline.server.settings import Secret, Settings

SERVER_KEY = "sk-chunkline-front-key-0123"
OPENAI_KEY = "sk-openai-upstream-key-98765"
CLIENT_KEY = "sk-client-passthrough-5555"
HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def front(chat_upstream: FakeOpenAIChat) -> Iterator[ServerThread]:
    settings = Settings(
        upstream=f"{chat_upstream.url}/v1",
        upstream_format="openai-chat",
        model_map={"claude-*": "echo", "claude-haiku*": "echo"},
        idle_timeout=1.0,
    )
    server = ServerThread(settings).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keyed_front(chat_upstream: FakeOpenAIChat) -> Iterator[ServerThread]:
    settings = Settings(
        upstream=f"{chat_upstream.url}/v1",
        upstream_format="openai-chat",
        api_keys=(Secret(SERVER_KEY),),
        openai_api_key=Secret(OPENAI_KEY),
    )
    server = ServerThread(settings).start()
    yield server
    server.stop()


def client(server: ServerThread, key: str = CLIENT_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key=key, base_url=server.url, max_retries=0, _strict_response_validation=True
    )


def post(
    server: ServerThread, body: dict[str, Any], key: str = CLIENT_KEY, path: str = "/v1/messages"
) -> httpx.Response:
    return server.http.post(path, json=body, headers={"x-api-key": key, "anthropic-version": "2023-06-01"})


RECORDINGS = single_choice_paths()


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.stem)
def test_recordings_through_the_server_read_as_the_input(front: ServerThread, path: Any) -> None:
    """Streaming (messages.stream + get_final_message) and not (messages.create): both equal the
    openai SDK's reading of what the upstream sent."""
    expected = openai_reading(load_chat_sse(path))
    sdk = client(front)
    with sdk.messages.stream(model=f"{path.stem}@97", max_tokens=100, messages=HELLO) as stream:
        message = stream.get_final_message()
    whole = sdk.messages.create(model=path.stem, max_tokens=100, messages=HELLO)
    assert whole.model == path.stem  # the name the client asked for, not the upstream's
    assert json.loads(json.dumps(whole.model_dump()))["type"] == "message"
    streamed = message_reading(message)
    assert streamed == expected
    assert message_reading(whole) == expected


def test_the_upstream_request(front: ServerThread, chat_upstream: FakeOpenAIChat) -> None:
    marker = "translate this marker"
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 321,
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": marker}],
        "metadata": {"user_id": "user-7"},
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "stop_sequences": ["END"],
        "context_management": {"edits": []},
        "stream": True,
    }
    response = front.http.post(
        "/v1/messages?beta=true",
        json=body,
        headers={"x-api-key": CLIENT_KEY, "anthropic-beta": "context-management-2025-06-27"},
    )
    assert response.status_code == 200
    assert b"event: message_stop" in response.content
    sent = chat_upstream.find(marker)
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {CLIENT_KEY}"
    assert sent.body["model"] == "echo"
    assert sent.body["stream"] is True and sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": marker},
    ]
    assert sent.body["max_completion_tokens"] == 321
    assert sent.body["reasoning_effort"] == "medium"
    assert sent.body["stop"] == ["END"]
    assert sent.body["user"] == "user-7"


def test_echo_answer_has_anthropic_usage(front: ServerThread) -> None:
    message = client(front).messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HELLO)
    assert message.content[0].text == "hello there"
    assert message.stop_reason == "end_turn"
    assert (
        message.usage.input_tokens,
        message.usage.cache_read_input_tokens,
        message.usage.output_tokens,
    ) == (
        10,
        2,
        5,
    )


def test_count_tokens_is_an_estimate(front: ServerThread) -> None:
    response = post(front, {"model": "claude-x", "messages": HELLO}, path="/v1/messages/count_tokens")
    assert response.status_code == 200
    assert response.json()["input_tokens"] >= 1
    counted = client(front).messages.count_tokens(model="claude-x", messages=HELLO)
    assert counted.input_tokens == response.json()["input_tokens"]


def test_count_tokens_of_a_body_nested_past_orjson_s_writing_depth_is_a_400(front: ServerThread) -> None:
    # Found by fuzz/fuzz_translators.py: orjson reads 1,024 levels but writes 254, and the count's
    # orjson.dumps raised (a 500).
    deep: Any = "x"
    for _ in range(260):
        deep = {"a": deep}
    body = {"model": "claude-x", "messages": [{"role": "user", "content": [{"type": "text", "text": deep}]}]}
    response = post(front, body, path="/v1/messages/count_tokens")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "more than 254 levels deep" in error["message"]


def test_keys_of_the_server(keyed_front: ServerThread, chat_upstream: FakeOpenAIChat) -> None:
    marker = "keyed front marker"
    message = client(keyed_front, SERVER_KEY).messages.create(
        model="echo", max_tokens=10, messages=[{"role": "user", "content": marker}]
    )
    assert message.content[0].text == marker
    assert chat_upstream.find(marker).headers["authorization"] == f"Bearer {OPENAI_KEY}"
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client(keyed_front, "sk-wrong").messages.create(model="echo", max_tokens=10, messages=HELLO)
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


@pytest.mark.parametrize(
    ("model", "error"),
    [
        ("status:429", anthropic.RateLimitError),
        ("status:400", anthropic.BadRequestError),
        ("status:500", anthropic.InternalServerError),
    ],
)
def test_upstream_statuses(front: ServerThread, model: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        client(front).messages.create(model=model, max_tokens=10, messages=HELLO)


def test_a_bad_request_names_the_field(front: ServerThread) -> None:
    response = post(front, {"model": "echo", "messages": HELLO})
    assert response.status_code == 400
    assert response.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": response.json()["error"]["message"]},
    }
    assert "max_tokens" in response.json()["error"]["message"]


@pytest.mark.parametrize("model", ["error-mid", "cut:200", "stall"])
def test_faults_end_in_an_error_event_never_message_stop(front: ServerThread, model: str) -> None:
    response = post(front, {"model": model, "max_tokens": 10, "messages": HELLO, "stream": True})
    assert response.status_code == 200
    assert b"event: error\n" in response.content
    assert b"message_stop" not in response.content
    with (
        pytest.raises(anthropic.APIStatusError),
        client(front).messages.stream(model=model, max_tokens=10, messages=HELLO) as stream,
    ):
        stream.get_final_message()
    # Not streaming: an HTTP error instead.
    whole = post(front, {"model": model, "max_tokens": 10, "messages": HELLO})
    assert whole.status_code >= 500 and whole.json()["type"] == "error"


def test_a_client_that_leaves_cancels_the_upstream(
    front: ServerThread, chat_upstream: FakeOpenAIChat
) -> None:
    marker = "leaving client marker"
    with client(front).messages.stream(
        model="stall", max_tokens=10, messages=[{"role": "user", "content": marker}]
    ) as stream:
        next(iter(stream))
    left_at = time.monotonic()
    received = chat_upstream.find(marker)
    assert received.wait_ended(2.0)
    assert received.outcome == "cancelled"
    assert received.ended_at is not None and received.ended_at - left_at < 1.0


def test_keys_never_reach_logs_or_bodies(
    front: ServerThread, keyed_front: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies = [
        post(front, {"model": "status:401:quote-key", "max_tokens": 5, "messages": HELLO}).text,
        post(
            front, {"model": "error-mid:quote-key", "max_tokens": 5, "messages": HELLO, "stream": True}
        ).text,
        post(front, {"model": "error-mid:quote-key", "max_tokens": 5, "messages": HELLO}).text,
        post(
            keyed_front, {"model": "status:500:quote-key", "max_tokens": 5, "messages": HELLO}, SERVER_KEY
        ).text,
    ]
    text = caplog.text + "".join(bodies)
    assert "[redacted]" in "".join(bodies)
    for key in (CLIENT_KEY, SERVER_KEY, OPENAI_KEY):
        assert key not in text


def test_pings_during_upstream_silence(chat_upstream: FakeOpenAIChat) -> None:
    settings = Settings(
        upstream=f"{chat_upstream.url}/v1", upstream_format="openai-chat", ping_interval=0.1, idle_timeout=0.6
    )
    server = ServerThread(settings).start()
    try:
        body = post(server, {"model": "stall", "max_tokens": 5, "messages": HELLO, "stream": True}).content
    finally:
        server.stop()
    start = body.index(b"event: message_start")
    assert body.count(b'event: ping\ndata: {"type":"ping"}', start) >= 3
    assert body.rstrip().endswith(b"}") and b"event: error" in body  # then the idle timeout, in-band


def test_pings_before_the_stream_begins_are_comments(chat_upstream: FakeOpenAIChat) -> None:
    """An upstream silent before its first chunk: SSE comments keep the connection open (an
    Anthropic ``ping`` event may only follow ``message_start``), then the idle timeout."""
    settings = Settings(
        upstream=f"{chat_upstream.url}/v1",
        upstream_format="openai-chat",
        ping_interval=0.1,
        idle_timeout=0.45,
    )
    server = ServerThread(settings).start()
    try:
        response = post(server, {"model": "stall:0", "max_tokens": 5, "messages": HELLO, "stream": True})
    finally:
        server.stop()
    body = response.content
    assert response.status_code == 200
    comments, _, rest = body.partition(b"event: ")
    assert comments.count(b": ping\n\n") >= 2 and comments == b": ping\n\n" * comments.count(b": ping\n\n")
    assert rest.startswith(b"error\n") and b"the upstream sent nothing" in rest and b"event: ping" not in body


def test_the_root_lists_the_messages_routes(front: ServerThread) -> None:
    about = front.http.get("/").json()
    assert about["serving"] == "the Anthropic Messages API (an openai-chat upstream)"
    assert {"POST /v1/messages", "POST /v1/messages/count_tokens"} <= set(about["routes"])
    assert front.http.head("/").status_code == 200


def test_a_whole_answer_past_the_response_cap_is_an_error(chat_upstream: FakeOpenAIChat) -> None:
    """The answer a non-streaming request assembles is bounded as on the other routes; the same
    answer streamed is not."""
    settings = Settings(
        upstream=f"{chat_upstream.url}/v1", upstream_format="openai-chat", max_response_bytes=16 * 1024
    )
    server = ServerThread(settings).start()
    try:
        body = {"model": "vercel_openai_text_include_usage", "max_tokens": 5, "messages": HELLO}
        whole = post(server, body)
        streamed = post(server, {**body, "stream": True})
    finally:
        server.stop()
    assert whole.status_code == 502
    assert (
        whole.json()["type"] == "error" and "CHUNKLINE_MAX_RESPONSE_BYTES" in whole.json()["error"]["message"]
    )
    assert streamed.status_code == 200 and streamed.content.rstrip().endswith(b'{"type":"message_stop"}')


def test_the_request_size_limit_holds(chat_upstream: FakeOpenAIChat) -> None:
    settings = Settings(
        upstream=f"{chat_upstream.url}/v1", upstream_format="openai-chat", max_request_bytes=4096
    )
    server = ServerThread(settings).start()
    try:
        big = [{"role": "user", "content": "x" * 5000}]
        response = post(server, {"model": "echo", "max_tokens": 5, "messages": big})
    finally:
        server.stop()
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"
