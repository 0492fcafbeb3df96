"""Non-streaming answers: a chat.completion built by the same rules a streaming client follows."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from fake_anthropic import FakeAnthropic
from openai.lib.streaming.chat import ChatCompletionStreamState
from serverkit import ServerThread, user

import harness

RECORDINGS = harness.well_formed_paths()


def _streamed(server: ServerThread, model: str) -> Any:
    """The completion a streaming client accumulates (ChatCompletionStreamState), as the reference."""
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    client = server.client(_strict_response_validation=True)
    with client.chat.completions.create(
        model=model, messages=user("hi"), stream=True, stream_options={"include_usage": True}
    ) as stream:
        for chunk in stream:
            state.handle_chunk(chunk)
    return state.current_completion_snapshot


@pytest.mark.parametrize("recording", RECORDINGS, ids=lambda p: p.stem)
def test_the_completion_agrees_with_the_stream(proxy: ServerThread, recording: Any) -> None:
    client = proxy.client(_strict_response_validation=True)
    completion = client.chat.completions.create(model=recording.stem, messages=user("hi"))
    streamed = _streamed(proxy, recording.stem)
    assert completion.object == "chat.completion"
    assert completion.id == streamed.id
    assert completion.model == streamed.model
    assert isinstance(completion.created, int)
    [choice] = completion.choices
    [reference] = streamed.choices
    assert choice.index == 0
    assert choice.finish_reason == reference.finish_reason
    message, expected = choice.message, reference.message
    assert message.role == "assistant"
    calls = [(c.id, c.type, c.function.name, c.function.arguments) for c in message.tool_calls or []]
    assert calls == [(c.id, c.type, c.function.name, c.function.arguments) for c in expected.tool_calls or []]
    assert message.content == (expected.content or (None if calls else ""))
    reasoning = (message.model_extra or {}).get("reasoning_content")
    assert reasoning == (expected.model_extra or {}).get("reasoning_content")
    assert completion.usage == streamed.usage


def test_the_completion_body(proxy: ServerThread) -> None:
    """The exact JSON, for a recording with thinking and a tool call."""
    response = proxy.post_chat({"model": "llm_thinking_then_tool_use", "messages": user("hi")})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")  # chunkline's id of the request
    assert response.headers["anthropic-request-id"] == "req_fake_1"
    body = response.json()
    truth = harness.anthropic_truth(
        harness.load_complete_sse(harness.ANTHROPIC_FIXTURES / "llm_thinking_then_tool_use.sse")
    )
    [call] = truth.tool_calls
    assert body == {
        "id": f"chatcmpl-{truth.message.id}",
        "object": "chat.completion",
        "created": body["created"],
        "model": truth.message.model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["name"], "arguments": json.dumps(call["input"])},
                        }
                    ],
                    "reasoning_content": truth.thinking,
                    # The thinking block whole, to send back (docs/responses-rules.md, RS14).
                    "reasoning_details": [
                        {
                            "type": "reasoning.text",
                            "text": truth.thinking,
                            "signature": truth.signatures[0],
                            "format": "anthropic-claude-v1",
                            "index": 0,
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": truth.message.usage.input_tokens,
            "completion_tokens": truth.message.usage.output_tokens,
            "total_tokens": truth.message.usage.input_tokens + truth.message.usage.output_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 53},
        },
    }


def test_text_answer_and_the_upstream_still_streams(proxy: ServerThread, upstream: FakeAnthropic) -> None:
    marker = "a plain answer for the non streaming test"
    completion = proxy.client().chat.completions.create(model="echo", messages=user(marker))
    assert completion.choices[0].message.content == marker
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == len(marker.split(" "))
    received = upstream.find(marker)
    assert received.body["stream"] is True
    assert received.outcome == "complete"


@pytest.mark.asyncio
async def test_the_async_client(proxy: ServerThread) -> None:
    async with proxy.async_client() as client:
        completion = await client.chat.completions.create(model="echo", messages=user("async and whole"))
    assert completion.choices[0].message.content == "async and whole"


def test_a_length_finish_is_not_disguised(proxy: ServerThread) -> None:
    completion = proxy.client().chat.completions.create(
        model="sdkpy_incomplete_partial_json_max_tokens", messages=user("hi")
    )
    assert completion.choices[0].finish_reason == "length"
    with pytest.raises(openai.LengthFinishReasonError):
        proxy.client().chat.completions.parse(
            model="sdkpy_incomplete_partial_json_max_tokens", messages=user("hi")
        )


@pytest.mark.parametrize(
    ("model", "status", "error_class", "type_", "code", "message"),
    [
        (
            "error-mid:llm_long_text:5",
            529,
            openai.InternalServerError,
            "upstream_error",
            "overloaded_error",
            "Overloaded",
        ),
        (
            "cut:llm_long_text:1500",
            502,
            openai.InternalServerError,
            "upstream_truncated",
            "upstream_truncated",
            "the upstream stream ended before 'message_stop': the response is incomplete",
        ),
        (
            "vercel_spliced_message_start_thinking_tool",
            502,
            openai.InternalServerError,
            "invalid_upstream_response",
            "invalid_upstream_response",
            "invalid upstream stream: a second 'message_start' arrived before 'message_stop'",
        ),
    ],
)
def test_a_stream_fault_becomes_an_http_error(
    proxy: ServerThread,
    model: str,
    status: int,
    error_class: type[Exception],
    type_: str,
    code: str,
    message: str,
) -> None:
    with pytest.raises(error_class) as caught:
        proxy.client().chat.completions.create(model=model, messages=user("hi"))
    error = caught.value
    assert isinstance(error, openai.APIStatusError)
    assert error.status_code == status
    assert error.body == {"message": message, "type": type_, "param": None, "code": code}


def test_a_dropped_connection_becomes_a_502(proxy: ServerThread) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        proxy.client().chat.completions.create(model="drop:llm_long_text:1500", messages=user("hi"))
    assert caught.value.status_code == 502
    assert caught.value.body["type"] == "upstream_error"
    assert caught.value.body["message"].startswith("reading the upstream failed: RemoteProtocolError")
