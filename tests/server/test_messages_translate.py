"""Anthropic Messages requests -> OpenAI chat requests (the openai-chat upstream mode), including the
shapes Claude Code really sends (tests/fixtures/claude_code/requests.jsonl, captured from `claude -p`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chunkline.server.anthropic_request import map_model, translate_messages_request
from chunkline.server.errors import InvalidRequest

CAPTURE = Path(__file__).resolve().parent.parent / "fixtures" / "claude_code" / "requests.jsonl"


def captured() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CAPTURE.read_text().splitlines() if line.strip()]


def base(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], **fields}


def test_claude_code_first_turn_translates() -> None:
    request = captured()[0]["body"]
    chat = translate_messages_request(request, {"claude-*": "gpt-4.1"})
    body = chat.body
    assert chat.stream is True and chat.model == request["model"]
    assert body["model"] == "gpt-4.1"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_completion_tokens"] == request["max_tokens"]
    # The system blocks become one system message; the mid-conversation system message stays one.
    assert body["messages"][0]["role"] == "system"
    assert "You are a Claude agent" in body["messages"][0]["content"]
    roles = [m["role"] for m in body["messages"]]
    assert roles.count("system") == 2 and "user" in roles
    # Every tool keeps its name and its schema as parameters.
    names = [t["function"]["name"] for t in body["tools"]]
    assert names == [t["name"] for t in request["tools"]]
    bash = next(t["function"] for t in body["tools"] if t["function"]["name"] == "Bash")
    assert bash["parameters"]["properties"]["command"]["type"] == "string"
    # thinking: adaptive with output_config.effort high; metadata.user_id -> user.
    assert body["reasoning_effort"] == "high"
    assert body["user"] == request["metadata"]["user_id"]
    # Fields with no chat meaning are accepted and not sent.
    for unused in ("context_management", "output_config", "thinking", "metadata", "system"):
        assert unused not in body


def test_claude_code_tool_result_turn_translates() -> None:
    request = captured()[1]["body"]
    body = translate_messages_request(request, {}).body
    assistant = next(m for m in body["messages"] if m["role"] == "assistant")
    call = assistant["tool_calls"][0]
    assert call["id"] == "toolu_01A" and call["function"]["name"] == "Bash"
    assert json.loads(call["function"]["arguments"])["command"] == "echo chunk-$((40+2))"
    tool = body["messages"][body["messages"].index(assistant) + 1]
    assert tool == {"role": "tool", "tool_call_id": "toolu_01A", "content": "chunk-42"}


def test_content_blocks() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "calling"},
                {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                {"type": "tool_use", "id": "t2", "name": "g", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "one"}]},
                {"type": "tool_result", "tool_use_id": "t2", "content": "boom", "is_error": True},
                {"type": "text", "text": "go on"},
            ],
        },
    ]
    body = translate_messages_request(base(messages=messages, system="be brief"), {}).body
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": "calling",
            "reasoning_content": "hmm",
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
                {"id": "t2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "one"},
        {"role": "tool", "tool_call_id": "t2", "content": "Error: boom"},
        {"role": "user", "content": "go on"},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    tools = [{"name": "f", "description": "d", "input_schema": {"type": "object", "properties": {}}}]
    body = translate_messages_request(base(tools=tools, tool_choice=choice), {}).body
    assert body["tool_choice"] == expected
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "f", "parameters": tools[0]["input_schema"], "description": "d"},
        }
    ]


@pytest.mark.parametrize(
    ("thinking", "config", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, None, "low"),
        ({"type": "enabled", "budget_tokens": 5000}, None, "medium"),
        ({"type": "enabled", "budget_tokens": 32000}, None, "high"),
        ({"type": "adaptive"}, None, "medium"),
        ({"type": "adaptive"}, {"effort": "low"}, "low"),
        ({"type": "disabled"}, None, None),
    ],
)
def test_thinking_to_reasoning_effort(thinking: Any, config: Any, effort: str | None) -> None:
    request = base(thinking=thinking, **({"output_config": config} if config else {}))
    assert translate_messages_request(request, {}).body.get("reasoning_effort") == effort


def test_sampling_and_stops() -> None:
    chat = translate_messages_request(base(temperature=0.2, top_p=0.9, stop_sequences=["END", "###"]), {})
    assert chat.body["temperature"] == 0.2 and chat.body["top_p"] == 0.9
    assert chat.body["stop"] == ["END", "###"]
    assert chat.stop_sequences == ("END", "###")
    assert chat.stream is False


def test_model_map_most_specific_wins_and_unmapped_pass_through() -> None:
    mapping = {"claude-*": "gpt-4.1", "claude-3-5-haiku*": "gpt-4.1-mini", "exact": "x"}
    assert map_model("claude-sonnet-4-5", mapping) == "gpt-4.1"
    assert map_model("claude-3-5-haiku-20241022", mapping) == "gpt-4.1-mini"
    assert map_model("exact", mapping) == "x"
    assert map_model("llama3", mapping) == "llama3"


def _result(content: Any) -> dict[str, Any]:
    return {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": content}],
    }


def test_system_and_tool_results_join_their_text_blocks() -> None:
    """A system prompt or tool result of blocks becomes one text: text blocks joined with blank
    lines, an image in a tool result as ``[image]`` (chat tool messages hold text only), other
    blocks left out."""
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    blocks = [{"type": "text", "text": "one"}, image, {"type": "document"}, {"type": "text", "text": "two"}]
    chat = translate_messages_request(base(system=blocks, messages=[_result(blocks)]), {})
    assert chat.body["messages"][0] == {"role": "system", "content": "one\n\ntwo"}
    assert chat.body["messages"][1] == {
        "role": "tool",
        "tool_call_id": "toolu_1",
        "content": "one\n\n[image]\n\ntwo",
    }


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        ({"max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}, "model"),
        (base(max_tokens=0), "max_tokens"),
        (base(messages=[]), "messages"),
        (base(messages=[{"role": "tool", "content": "x"}]), "messages[0].role"),
        (base(tool_choice={"type": "sometimes"}), "tool_choice"),
        (base(stop_sequences="END"), "stop_sequences"),
        (base(system=5), "system"),
        (base(system=["plain"]), "system[0]"),
        (base(system=[{"type": "text", "text": 5}]), "system[0].text"),
        (
            base(messages=[{"role": "system", "content": [{"type": "text", "text": 5}]}]),
            "messages[0].content[0].text",
        ),
        (base(messages=[_result(["plain"])]), "messages[0].content[0].content[0]"),
        (
            base(messages=[_result([{"type": "text", "text": {"a": 1}}])]),
            "messages[0].content[0].content[0].text",
        ),
        (base(messages=[_result(7)]), "messages[0].content[0].content"),
    ],
)
def test_bad_requests_name_the_field(request_body: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        translate_messages_request(request_body, {})
    assert caught.value.param == param


def test_reasoning_effort_can_be_left_out() -> None:
    request = base(thinking={"type": "adaptive"})
    assert "reasoning_effort" in translate_messages_request(request, {}).body
    assert "reasoning_effort" not in translate_messages_request(request, {}, reasoning_effort=False).body
    history = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "t", "signature": ""},
                {"type": "text", "text": "a"},
            ],
        },
        {"role": "user", "content": "more"},
    ]
    kept = translate_messages_request(base(messages=history), {}).body["messages"][1]
    dropped = translate_messages_request(base(messages=history), {}, reasoning_effort=False).body["messages"][
        1
    ]
    assert kept == {"role": "assistant", "content": "a", "reasoning_content": "t"}
    assert dropped == {"role": "assistant", "content": "a"}


def _nested(levels: int, inner: Any = "x") -> Any:
    for _ in range(levels):
        inner = {"a": inner}
    return inner


DEEP = _nested(1_000)
CALL = {"type": "tool_use", "id": "t1", "name": "f", "input": {}}
RESULT = {"type": "tool_result", "tool_use_id": "t1", "content": "ok"}
BASE64 = {"type": "base64", "media_type": "image/png", "data": "AAA"}


def _turn(role: str, block: Any) -> dict[str, Any]:
    return base(messages=[{"role": role, "content": [block]}, {"role": "user", "content": "go on"}])


# Found by fuzz/fuzz_translators.py: repr() and str() of a value nested ~1,000 levels deep raised
# RecursionError, and orjson.dumps of a tool_use input nested past 254 levels raised its
# JSONEncodeError (500s). The others wrote a value of the wrong type out as its Python repr, or
# sent it upstream as it was.
@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        (base(messages=[{"role": DEEP, "content": "x"}]), "messages[0].role"),
        (_turn("user", {"type": "text", "text": DEEP}), "messages[0].content[0].text"),
        (_turn("user", {"type": "text", "text": 7}), "messages[0].content[0].text"),
        (_turn("assistant", {"type": "text", "text": ["a"]}), "messages[0].content[0].text"),
        (_turn("assistant", {"type": "thinking", "thinking": DEEP}), "messages[0].content[0].thinking"),
        (_turn("assistant", "text"), "messages[0].content[0]"),
        (_turn("assistant", {**CALL, "input": _nested(300)}), "messages[0].content[0].input"),
        (_turn("assistant", {**CALL, "input": [1]}), "messages[0].content[0].input"),
        (_turn("assistant", {**CALL, "name": DEEP}), "messages[0].content[0].name"),
        (_turn("assistant", {**CALL, "id": None}), "messages[0].content[0].id"),
        (_turn("user", {**RESULT, "tool_use_id": 3}), "messages[0].content[0].tool_use_id"),
        (
            _turn("user", {**RESULT, "content": [{"type": "text", "text": DEEP}]}),
            "messages[0].content[0].content[0].text",
        ),
        (
            _turn("user", {"type": "image", "source": {**BASE64, "data": DEEP}}),
            "messages[0].content[0].source.data",
        ),
        (
            _turn("user", {"type": "image", "source": {**BASE64, "media_type": DEEP}}),
            "messages[0].content[0].source.media_type",
        ),
        (
            _turn("user", {"type": "document", "source": {"type": "text", "data": DEEP}}),
            "messages[0].content[0].source.data",
        ),
        (base(tools=[{"name": "f", "input_schema": "object"}]), "tools[0].input_schema"),
    ],
)
def test_values_of_the_wrong_type_or_nested_too_deep_are_refused_naming_the_field(
    request_body: Any, param: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        translate_messages_request(request_body, {})
    assert caught.value.param == param, caught.value.message
    assert len(caught.value.message) < 400
