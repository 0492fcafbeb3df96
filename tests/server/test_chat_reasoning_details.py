"""The chat route's thinking round trip: OpenRouter's ``reasoning_details`` on assistant messages."""

from __future__ import annotations

from typing import Any

from fake_anthropic import FakeAnthropic
from fake_bodies import AGENT_THINKING
from serverkit import ServerThread
from translatekit import SETTINGS, WEATHER, refused, translate, user

import harness

SIGNED = {
    "type": "reasoning.text",
    "text": "Let me check.",
    "signature": "EqQBsig==",
    "format": "anthropic-claude-v1",
}
REDACTED = {"type": "reasoning.encrypted", "data": "EmwKAhgBredacted", "format": "anthropic-claude-v1"}
CALL = {
    "id": "toolu_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
}


def test_signed_thinking_goes_back_first_and_keeps_thinking_on() -> None:
    body = translate(
        messages=[
            user("weather?"),
            {
                "role": "assistant",
                "content": None,
                "reasoning_details": [REDACTED, SIGNED, {"type": "reasoning.summary", "summary": "x"}],
                "tool_calls": [CALL],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "-3C"},
        ],
        tools=[WEATHER],
        reasoning_effort="low",
    )
    assistant = body["messages"][1]["content"]
    assert assistant[0] == {"type": "redacted_thinking", "data": "EmwKAhgBredacted"}
    assert assistant[1] == {"type": "thinking", "thinking": "Let me check.", "signature": "EqQBsig=="}
    assert assistant[2]["type"] == "tool_use"
    assert body["thinking"] == {"type": "enabled", "budget_tokens": SETTINGS.reasoning_budgets["low"]}


def test_without_signed_thinking_the_tool_turn_runs_without_thinking() -> None:
    unsigned = {"type": "reasoning.text", "text": "hmm"}
    body = translate(
        messages=[
            user("weather?"),
            {"role": "assistant", "content": None, "reasoning_details": [unsigned], "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "-3C"},
        ],
        tools=[WEATHER],
        reasoning_effort="low",
    )
    assert body["messages"][1]["content"][0]["type"] == "tool_use"
    assert "thinking" not in body


def test_reasoning_details_must_be_an_array() -> None:
    refused(
        "messages[1].reasoning_details",
        messages=[user("q"), {"role": "assistant", "content": "a", "reasoning_details": "x"}, user("q2")],
    )


# -- the whole round trip through chunkline serve (RS14) --------------------------------------------


def _stream(proxy: ServerThread, **request: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    """The reasoning_details entries of a streamed answer, and its chunks."""
    chunks = list(
        proxy.client(_strict_response_validation=True).chat.completions.create(stream=True, **request)
    )
    details = [
        entry
        for chunk in chunks
        for choice in chunk.choices
        for entry in (choice.delta.model_extra or {}).get("reasoning_details") or ()
    ]
    return details, chunks


def test_a_tool_turn_sent_back_keeps_the_signed_thinking(
    proxy: ServerThread, upstream: FakeAnthropic
) -> None:
    """RS14: streamed whole in reasoning_details, sent back, given to Claude first."""
    model = "agent:get_weather:x"
    first = [user("weather?")]
    details, chunks = _stream(proxy, model=model, messages=first, tools=[WEATHER])
    assert details == [
        {
            "type": "reasoning.text",
            "text": AGENT_THINKING["thinking"],
            "signature": AGENT_THINKING["signature"],
            "format": "anthropic-claude-v1",
            "index": 0,
        }
    ]
    calls = [c for chunk in chunks for choice in chunk.choices for c in choice.delta.tool_calls or ()]
    call_id, name = calls[0].id, calls[0].function.name
    arguments = "".join(c.function.arguments or "" for c in calls)
    second = [
        *first,
        {
            "role": "assistant",
            "content": None,
            "reasoning_details": details,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "-3C"},
    ]
    answer = proxy.client().chat.completions.create(
        model=model, messages=second, tools=[WEATHER], reasoning_effort="low"
    )
    assert answer.choices[0].message.content == "The tool said: -3C"
    sent = upstream.requests[-1].body
    assert sent["messages"][1]["content"][0] == AGENT_THINKING
    assert sent["thinking"]["type"] == "enabled"


def test_redacted_thinking_streams_as_an_encrypted_detail(proxy: ServerThread) -> None:
    details, _ = _stream(proxy, model="pydai_redacted_thinking", messages=[user("hi")])
    path = next(p for p in harness.fixture_paths() if p.stem == "pydai_redacted_thinking")
    truth = harness.anthropic_truth(harness.load_complete_sse(path))
    assert [d["data"] for d in details if d["type"] == "reasoning.encrypted"] == truth.redacted
    assert [d["signature"] for d in details if d["type"] == "reasoning.text"] == truth.signatures
    assert [d["index"] for d in details] == list(range(len(details)))


def test_the_library_sends_no_signatures_unless_asked() -> None:
    """R30's default: the extension field only with reasoning_details=True."""
    path = next(p for p in harness.fixture_paths() if p.stem == "llm_thinking_then_tool_use")
    data = harness.load_complete_sse(path)
    assert b"reasoning_details" not in harness.convert(data)
    assert b'"reasoning_details":[{"type":"reasoning.text"' in harness.convert(data, reasoning_details=True)
