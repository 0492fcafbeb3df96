"""Request translation for POST /v1/responses: the shapes Codex CLI really sends, and every mapped field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chunkline.builtins.responses_items import decode_reasoning, encode_reasoning
from chunkline.server.errors import InvalidRequest
from chunkline.server.responses import ResponsesRequest, translate_responses_request
from chunkline.server.settings import Settings

SETTINGS = Settings()
CODEX = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "codex" / "codex_exec_requests.json").read_text()
)
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
THINKING = {"type": "thinking", "thinking": "I should look.", "signature": "EqQBCkYIBx..sig=="}
REDACTED = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDF..."}


def translate(settings: Settings = SETTINGS, **request: Any) -> ResponsesRequest:
    request.setdefault("model", "claude-test")
    request.setdefault("input", "hi")
    return translate_responses_request(request, settings)


def refused(param: str | None, settings: Settings = SETTINGS, **request: Any) -> str:
    with pytest.raises(InvalidRequest) as caught:
        translate(settings, **request)
    assert caught.value.status == 400
    assert caught.value.param == param, caught.value.message
    return caught.value.message


# -- what Codex sends ------------------------------------------------------------------------------


def test_codex_first_request_translates() -> None:
    request = CODEX["requests"][0]["body"]
    out = translate_responses_request(request, SETTINGS)
    body = out.body
    assert out.stream is True
    assert out.encrypted is True  # Codex asks for include: ["reasoning.encrypted_content"]
    # Codex's developer messages become system text, in order; its user messages one user turn.
    developer = [i for i in request["input"] if i["role"] == "developer"]
    assert [b["text"] for b in body["system"]] == [p["text"] for i in developer for p in i["content"]]
    assert [t["role"] for t in body["messages"]] == ["user"]
    assert body["messages"][0]["content"][-1] == {"type": "text", "text": "say hi"}
    # Function tools by name, the namespace's tools flattened, the hosted web_search left out.
    names = [t["name"] for t in body["tools"]]
    assert "exec_command" in names
    assert "multi_agent_v1__spawn_agent" in names
    assert out.namespaces["multi_agent_v1__spawn_agent"] == ("multi_agent_v1", "spawn_agent")
    assert out.dropped == ("web_search",)
    assert body["tool_choice"] == {"type": "auto"}
    assert "thinking" not in body  # reasoning: {"summary": "auto"} asks for no effort
    assert body["stream"] is True


def test_codex_second_request_restores_thinking_in_place() -> None:
    request = CODEX["requests"][1]["body"]
    # The fake answered the first turn with a reasoning item; put a real chunkline blob in it,
    # as chunkline's answer would have carried.
    items = json.loads(json.dumps(request["input"]))
    for item in items:
        if item.get("type") == "reasoning":
            item["encrypted_content"] = encode_reasoning(THINKING)
    out = translate(**{**request, "input": items, "reasoning": {"effort": "low", "summary": "auto"}})
    turns = out.body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assistant = turns[1]["content"]
    assert assistant[0] == THINKING
    assert assistant[1]["type"] == "tool_use"
    assert assistant[1] == {
        "type": "tool_use",
        "id": "toolu_01",
        "name": "exec_command",
        "input": {"cmd": "echo hello-from-tool"},
    }
    result = turns[2]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_01"
    assert "hello-from-tool" in result["content"]
    # The signed thinking leads the tool call, so thinking stays on.
    assert out.body["thinking"] == {"type": "enabled", "budget_tokens": SETTINGS.reasoning_budgets["low"]}


def test_reasoning_without_chunkline_blob_is_left_out_and_thinking_turned_off() -> None:
    items = [
        {"role": "user", "content": "weather?"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA-openai-blob"},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
    ]
    out = translate(input=items, tools=[WEATHER], reasoning={"effort": "high"})
    assert out.body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "c1", "name": "get_weather", "input": {}}
    ]
    assert "thinking" not in out.body


def test_redacted_thinking_round_trip() -> None:
    items = [
        {"role": "user", "content": "q"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": encode_reasoning(REDACTED)},
        {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": encode_reasoning(THINKING)},
        {"role": "assistant", "content": [{"type": "output_text", "text": "answer", "annotations": []}]},
        {"role": "user", "content": [{"type": "input_text", "text": "more"}]},
    ]
    turns = translate(input=items).body["messages"]
    assert turns[1]["content"] == [REDACTED, THINKING, {"type": "text", "text": "answer"}]


def test_encoding_of_reasoning_blobs() -> None:
    assert decode_reasoning(encode_reasoning(THINKING)) == THINKING
    assert decode_reasoning(encode_reasoning(REDACTED)) == REDACTED
    assert decode_reasoning("chunkline.v1.!!!") is None
    assert decode_reasoning(encode_reasoning({"type": "thinking", "thinking": 1})) is None


# -- input -----------------------------------------------------------------------------------------


def test_input_string_and_instructions() -> None:
    body = translate(input="hello", instructions="Be brief.").body
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]
    assert body["system"] == [{"type": "text", "text": "Be brief."}]


def test_roles_images_and_merging() -> None:
    items = [
        {"role": "system", "content": "sys"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"},
        ]},
        {"role": "user", "content": "and this"},
        {"role": "assistant", "content": "ok  "},
    ]  # fmt: skip
    body = translate(input=items).body
    assert body["system"] == [{"type": "text", "text": "sys"}]
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "text", "text": "and this"},
    ]
    assert body["messages"][1] == {"role": "assistant", "content": [{"type": "text", "text": "ok"}]}


def test_namespaced_function_call_input_is_flattened() -> None:
    tools = [{"type": "namespace", "name": "ns", "description": "d", "tools": [WEATHER]}]
    items = [
        {"role": "user", "content": "q"},
        {
            "type": "function_call",
            "call_id": "c",
            "namespace": "ns",
            "name": "get_weather",
            "arguments": "{}",
        },
        {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text", "text": "5C"}]},
    ]
    out = translate(
        input=items, tools=tools, tool_choice={"type": "function", "namespace": "ns", "name": "get_weather"}
    )
    assert out.body["messages"][1]["content"][0]["name"] == "ns__get_weather"
    assert out.body["messages"][2]["content"][0]["content"] == [{"type": "text", "text": "5C"}]
    assert out.body["tool_choice"] == {"type": "tool", "name": "ns__get_weather"}


# -- fields ----------------------------------------------------------------------------------------


def test_fields_mapped() -> None:
    body = translate(
        max_output_tokens=300,
        temperature=0.5,
        top_p=0.9,
        user="u-1",
        tools=[WEATHER],
        tool_choice="required",
        parallel_tool_calls=False,
        metadata={"a": "b"},
        store=True,
        include=["message.output_text.logprobs"],
        prompt_cache_key="k",
        client_metadata={"x": "y"},
        service_tier="auto",
        text={"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}}},
    ).body
    assert body["max_tokens"] == 300
    assert body["temperature"] == 0.5 and body["top_p"] == 0.9
    assert body["metadata"] == {"user_id": "u-1"}
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert "JSON Schema named 'out'" in body["system"][-1]["text"]


def test_reasoning_effort_maps_to_thinking() -> None:
    body = translate(reasoning={"effort": "medium"}, max_output_tokens=100).body
    budget = SETTINGS.reasoning_budgets["medium"]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == 100 + budget
    assert "thinking" not in translate(reasoning={"effort": "none"}).body


def test_previous_response_id_is_refused_as_stateless() -> None:
    assert "stateless" in refused("previous_response_id", previous_response_id="resp_1")


def test_unknown_field_named() -> None:
    assert refused("frobnicate", frobnicate=1) == "Unrecognized request argument supplied: frobnicate"


def test_hosted_tools_refused_with_setting() -> None:
    settings = Settings(hosted_tools="reject")
    message = refused("tools[0].type", settings, tools=[{"type": "file_search", "vector_store_ids": []}])
    assert "file_search" in message
    assert translate(tools=[{"type": "code_interpreter"}]).dropped == ("code_interpreter",)


@pytest.mark.parametrize(
    ("param", "request_fields"),
    [
        ("input", {"input": []}),
        ("input[0].type", {"input": [{"type": "item_reference", "id": "x"}]}),
        ("input[0].role", {"input": [{"role": "tool", "content": "x"}]}),
        ("tools[0].type", {"tools": [{"type": "custom", "name": "x"}]}),
        ("tool_choice.name", {"tools": [WEATHER], "tool_choice": {"type": "function", "name": "nope"}}),
        ("temperature", {"temperature": 1.5}),
        ("max_output_tokens", {"max_output_tokens": 0}),
        ("reasoning.effort", {"reasoning": {"effort": "huge"}}),
        ("background", {"background": True}),
        ("conversation", {"conversation": "conv_1"}),
        ("include", {"include": "reasoning.encrypted_content"}),
        ("tool_choice", {"tools": [WEATHER], "tool_choice": "required", "reasoning": {"effort": "low"}}),
    ],
)
def test_refusals_name_the_field(param: str, request_fields: dict[str, Any]) -> None:
    refused(param, **request_fields)


def _nested(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


# Found by fuzz/fuzz_translators.py: the message quoted these with repr(), which fails on a value
# nested about 1,000 levels deep (JSON allows 1,024): a RecursionError, a 500 for the client.
DEEP = _nested(1_000)


@pytest.mark.parametrize(
    ("param", "request_fields"),
    [
        ("input[0].role", {"input": [{"role": DEEP, "content": "x"}]}),
        ("input[0].type", {"input": [{"type": DEEP}]}),
        ("input[0].content[0].type", {"input": [{"role": "user", "content": [{"type": DEEP}]}]}),
        ("tools[0].type", {"tools": [{"type": DEEP}]}),
        ("tool_choice", {"tools": [WEATHER], "tool_choice": DEEP}),
        ("tool_choice.name", {"tools": [WEATHER], "tool_choice": {"type": "function", "name": DEEP}}),
        (
            "tool_choice.namespace",
            {
                "tools": [WEATHER],
                "tool_choice": {"type": "function", "name": "get_weather", "namespace": DEEP},
            },
        ),
    ],
)
def test_values_nested_1000_levels_are_refused_naming_the_field(
    param: str, request_fields: dict[str, Any]
) -> None:
    assert len(refused(param, **request_fields)) < 400


def test_a_tool_choice_namespace_must_be_a_string() -> None:
    # Found by fuzz/fuzz_translators.py: a non-string namespace was formatted into the tool's name.
    choice = {"type": "function", "name": "get_weather", "namespace": 7}
    assert "tool_choice.namespace must be a string, not 7" in refused(
        "tool_choice.namespace", tools=[WEATHER], tool_choice=choice
    )
