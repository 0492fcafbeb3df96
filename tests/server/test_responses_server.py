"""POST /v1/responses on chunkline serve, read by the openai SDK, in front of the fake Anthropic upstream."""

from __future__ import annotations

import logging
from typing import Any

import openai
import pytest
from fake_anthropic import FakeAnthropic
from fake_bodies import AGENT_THINKING
from serverkit import CLIENT_KEY, ServerThread

import harness
import responses_judge as judge
from chunkline.builtins.responses_items import decode_reasoning

RECORDING = "llm_thinking_then_tool_use"
NAMESPACE = {
    "type": "namespace",
    "name": "ns",
    "description": "Lookups.",
    "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}],
}


def post(proxy: ServerThread, body: dict[str, Any]) -> Any:
    return proxy.http.post("/v1/responses", json=body, headers={"Authorization": f"Bearer {CLIENT_KEY}"})


def test_streaming_reads_back_strictly(proxy: ServerThread) -> None:
    client = proxy.client(_strict_response_validation=True)
    events = list(client.responses.create(model=RECORDING, input="hi", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    with client.responses.stream(model=RECORDING, input="hi") as stream:
        final = stream.get_final_response()
    reading = judge.Reading(events, final, "response.completed")
    judge.assert_same(reading, harness.final_message_of(RECORDING))


def test_not_streaming_answers_the_response_object(proxy: ServerThread) -> None:
    response = proxy.client(_strict_response_validation=True).responses.create(model=RECORDING, input="hi")
    reading = judge.Reading([], response, "response.completed")
    judge.assert_same(reading, harness.final_message_of(RECORDING))
    assert response.object == "response" and response.status == "completed"


def test_incomplete_answer(proxy: ServerThread) -> None:
    response = proxy.client().responses.create(model="sdkpy_incomplete_partial_json_max_tokens", input="hi")
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


def test_thinking_round_trip_and_namespaces(proxy: ServerThread, upstream: FakeAnthropic) -> None:
    model = "agent:ns__lookup:ls"
    client = proxy.client()
    first = client.responses.create(
        model=model, input="look it up", tools=[NAMESPACE], include=["reasoning.encrypted_content"]
    )
    reasoning, call = first.output
    assert (
        reasoning.type == "reasoning"
        and decode_reasoning(reasoning.encrypted_content or "") == AGENT_THINKING
    )
    assert (call.type, call.name, call.namespace, call.call_id) == (
        "function_call",
        "lookup",
        "ns",
        "toolu_agent_1",
    )
    assert upstream.requests[-1].body["tools"][0]["name"] == "ns__lookup"
    # The client sends the items back, with the tool's output, and asks for thinking.
    items: list[Any] = [
        {"role": "user", "content": "look it up"},
        reasoning.model_dump(exclude_none=True),
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "found it"},
    ]
    second = client.responses.create(model=model, input=items, tools=[NAMESPACE], reasoning={"effort": "low"})
    assert second.output_text == "The tool said: found it"
    sent = upstream.requests[-1].body
    assert sent["messages"][1]["content"][0] == AGENT_THINKING
    assert sent["messages"][1]["content"][1]["name"] == "ns__lookup"
    assert sent["thinking"]["type"] == "enabled"


def test_hosted_tools_are_dropped_with_a_warning(proxy: ServerThread, upstream: FakeAnthropic) -> None:
    response = post(proxy, {"model": "echo", "input": "hi there", "tools": [{"type": "web_search"}]})
    assert response.status_code == 200
    assert "web_search" in response.headers["x-chunkline-warning"]
    assert response.json()["output"][0]["content"][0]["text"] == "hi there"
    assert "tools" not in upstream.requests[-1].body


def test_previous_response_id_is_a_400(proxy: ServerThread) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client().responses.create(model="echo", input="hi", previous_response_id="resp_1")
    assert "stateless" in caught.value.message
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]


def test_unknown_field_is_a_400(proxy: ServerThread) -> None:
    response = post(proxy, {"model": "echo", "input": "hi", "frobnicate": 1})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "frobnicate"


def test_stream_fault_fails_the_response(proxy: ServerThread) -> None:
    reading = judge.read_events(
        list(proxy.client(_strict_response_validation=True).responses.create(
            model=f"error-mid:{RECORDING}:5", input="hi", stream=True
        ))
    )  # fmt: skip
    assert reading.terminal == "response.failed"
    assert reading.final.error.message == "Overloaded"


def test_a_stream_fault_is_noted_and_logged_without_the_answer(
    proxy: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    """The access line names the fault, as on the other routes; the warning holds the error
    only, not the ``response.failed`` event that repeats the answer so far."""
    caplog.set_level(logging.INFO)
    events = list(proxy.client().responses.create(model="error-mid:llm_long_text:8", input="hi", stream=True))
    answer = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert events[-1].type == "response.failed" and len(answer) > 20
    warnings = [r.getMessage() for r in caplog.records if r.name == "chunkline.server"]
    faults = [m for m in warnings if m.startswith("stream ended by a fault [request req_")]
    assert len(faults) == 1 and '"message":"Overloaded"' in faults[0], warnings
    assert answer not in caplog.text and '"output"' not in faults[0]
    access = [r.getMessage() for r in caplog.records if r.name == "chunkline.access"]
    assert any("route=/v1/responses" in line and "fault=upstream_error" in line for line in access), access


def test_stream_fault_not_streaming_is_an_http_error(proxy: ServerThread) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        proxy.client().responses.create(model=f"error-mid:{RECORDING}:5", input="hi")
    assert caught.value.status_code == 529


def test_cut_stream_fails_the_response(proxy: ServerThread) -> None:
    events = list(proxy.client().responses.create(model=f"cut:{RECORDING}:600", input="hi", stream=True))
    assert events[-1].type == "response.failed"
    assert events[-1].response.error.type == "upstream_truncated"


def test_upstream_status_passes_through(proxy: ServerThread) -> None:
    with pytest.raises(openai.RateLimitError):
        proxy.client().responses.create(model="status:429", input="hi", stream=True)
