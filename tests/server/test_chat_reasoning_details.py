"""The chat route's thinking round trip: OpenRouter's ``reasoning_details`` on assistant messages."""

from __future__ import annotations

from translatekit import SETTINGS, WEATHER, refused, translate, user

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
