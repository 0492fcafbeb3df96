"""Request translation, field by field: OpenAI chat request in, Anthropic Messages request out (or a 400)."""

from __future__ import annotations

import base64
import itertools
import json
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chunkline.server.errors import InvalidRequest
from chunkline.server.settings import Settings
from chunkline.server.translate import Translated, translate_request

SETTINGS = Settings()
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image bytes").decode()
PDF = base64.b64encode(b"%PDF-1.4 fake").decode()
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def translate(settings: Settings = SETTINGS, **request: Any) -> dict[str, Any]:
    request.setdefault("model", "claude-test")
    request.setdefault("messages", [{"role": "user", "content": "hi"}])
    return translate_request(request, settings).body


def refused(param: str | None, settings: Settings = SETTINGS, **request: Any) -> str:
    """Translating must fail with a 400 naming ``param``; returns the message."""
    with pytest.raises(InvalidRequest) as caught:
        translate(settings, **request)
    assert caught.value.status == 400
    assert caught.value.param == param, caught.value.message
    assert caught.value.body()["error"]["type"] == "invalid_request_error"
    return caught.value.message


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def user(*content: Any) -> dict[str, Any]:
    return {
        "role": "user",
        "content": list(content) if len(content) != 1 or isinstance(content[0], dict) else content[0],
    }


# -- the basics ------------------------------------------------------------------------------------


def test_a_minimal_request() -> None:
    translated = translate_request(
        {"model": "claude-test", "messages": [{"role": "user", "content": "hi"}]}, SETTINGS
    )
    assert translated == Translated(
        body={
            "model": "claude-test",
            "messages": [{"role": "user", "content": [text("hi")]}],
            "max_tokens": 4096,
            "stream": True,
        },
        stream=False,
        include_usage=False,
    )


def test_the_upstream_is_always_asked_to_stream() -> None:
    for stream in (True, False, None):
        assert translate(stream=stream)["stream"] is True
    assert translate_request({"model": "m", "messages": [user("x")], "stream": True}, SETTINGS).stream is True
    refused("stream", stream="yes")


def test_stream_options_include_usage() -> None:
    request = {
        "model": "m",
        "messages": [user("x")],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert translate_request(request, SETTINGS).include_usage is True
    request["stream_options"] = {"include_usage": False, "include_obfuscation": False}
    assert translate_request(request, SETTINGS).include_usage is False
    refused("stream_options.include_usage", stream_options={"include_usage": "yes"})
    refused("stream_options", stream_options=[True])


def test_the_model_passes_through_or_through_an_alias() -> None:
    assert translate(model="claude-opus-4-1")["model"] == "claude-opus-4-1"
    aliased = Settings(model_aliases=MappingProxyType({"gpt-4o": "claude-sonnet-4-5"}))
    assert translate(aliased, model="gpt-4o")["model"] == "claude-sonnet-4-5"
    assert translate(aliased, model="claude-haiku-4-5")["model"] == "claude-haiku-4-5"
    refused("model", model="")
    refused("model", model=None)


def test_the_body_must_be_an_object() -> None:
    for body in ([], "hi", 5, None):
        with pytest.raises(InvalidRequest) as caught:
            translate_request(body, SETTINGS)
        assert caught.value.param is None


# -- system and developer messages -----------------------------------------------------------------


def test_system_and_developer_messages_become_the_system_blocks_in_order() -> None:
    body = translate(
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [text("Use metric units."), text("")]},
            user("hi"),
            {"role": "assistant", "content": "hello"},
            {"role": "system", "content": "Now answer in French."},
            {"role": "system", "content": ""},
            user("weather?"),
        ]
    )
    assert body["system"] == [
        text("You are terse."),
        text("Use metric units."),
        text("Now answer in French."),
    ]
    assert [turn["role"] for turn in body["messages"]] == ["user", "assistant", "user"]


def test_no_system_key_without_system_text() -> None:
    assert "system" not in translate(messages=[{"role": "system", "content": ""}, user("hi")])


def test_bad_system_content() -> None:
    refused("messages[0].content", messages=[{"role": "system", "content": 5}, user("x")])
    refused(
        "messages[0].content[0].type",
        messages=[{"role": "system", "content": [{"type": "image_url"}]}, user("x")],
    )


# -- user content ----------------------------------------------------------------------------------


def test_user_text_parts_without_empty_ones() -> None:
    body = translate(messages=[user(text("a"), text(""), text("b"))])
    assert body["messages"] == [{"role": "user", "content": [text("a"), text("b")]}]


def test_an_empty_user_message_is_refused() -> None:
    refused("messages[0]", messages=[user("")])
    refused("messages[0]", messages=[user(text(""))])
    refused("messages[1]", messages=[user("x"), {"role": "user", "content": []}])


def test_images_from_data_urls_and_web_urls() -> None:
    body = translate(
        messages=[
            user(
                text("what is this?"),
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {"type": "image_url", "image_url": "http://example.com/dog.webp"},
            )
        ]
    )
    assert body["messages"][0]["content"] == [
        text("what is this?"),
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "image", "source": {"type": "url", "url": "http://example.com/dog.webp"}},
    ]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x.png",
        "file:///etc/passwd",
        "",
        f"data:image/bmp;base64,{PNG}",
        "data:image/png,not-base64-flagged",
        "data:image/png;base64,***",
        "data:;base64,AAAA",
    ],
)
def test_images_that_cannot_be_sent(url: str) -> None:
    message = refused(
        "messages[0].content[0].image_url.url",
        messages=[user({"type": "image_url", "image_url": {"url": url}})],
    )
    assert "messages[0].content[0].image_url.url" in message


def test_files_become_documents() -> None:
    plain = base64.b64encode("Grüße".encode()).decode()
    body = translate(
        messages=[
            user(
                {
                    "type": "file",
                    "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "a.pdf"},
                },
                {"type": "file", "file": {"file_data": f"data:text/plain;base64,{plain}"}},
            )
        ]
    )
    assert body["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
            "title": "a.pdf",
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Grüße"}},
    ]


def test_files_that_cannot_be_sent() -> None:
    where = "messages[0].content[0].file.file_data"
    assert "file_id" in refused(where, messages=[user({"type": "file", "file": {"file_id": "file-abc"}})])
    refused(
        where, messages=[user({"type": "file", "file": {"file_data": f"data:application/zip;base64,{PDF}"}})]
    )
    bad_utf8 = base64.b64encode(b"\xff\xfe").decode()
    refused(
        where, messages=[user({"type": "file", "file": {"file_data": f"data:text/plain;base64,{bad_utf8}"}})]
    )
    refused("messages[0].content[0].file", messages=[user({"type": "file", "file": "x"})])


def test_audio_input_and_unknown_parts_are_refused() -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    assert "audio" in refused("messages[0].content[0].type", messages=[user(audio)])
    refused("messages[0].content[1].type", messages=[user(text("x"), {"type": "video"})])
    refused("messages[0].content[0].type", messages=[user("not a part but a list", "of strings")])
    refused("messages[0].content", messages=[{"role": "user", "content": 5}])


def test_prompt_cache_breakpoints_become_cache_control() -> None:
    body = translate(
        messages=[
            {
                "role": "system",
                "content": [{**text("long rules"), "prompt_cache_breakpoint": {"mode": "explicit"}}],
            },
            user({**text("doc"), "prompt_cache_breakpoint": {"mode": "explicit", "ttl": "12h"}}),
        ]
    )
    assert body["system"] == [{**text("long rules"), "cache_control": {"type": "ephemeral"}}]
    assert body["messages"][0]["content"] == [
        {**text("doc"), "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    refused(
        "messages[0].content[0].prompt_cache_breakpoint",
        messages=[user({**text("doc"), "prompt_cache_breakpoint": {"mode": "implicit"}})],
    )


# -- assistant messages, tool calls and results ----------------------------------------------------


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_assistant_text_and_tool_calls_become_text_and_tool_use() -> None:
    body = translate(
        messages=[
            user("weather in Paris and Rome?"),
            {
                "role": "assistant",
                "content": "Checking both.",
                "tool_calls": [
                    call("call_1", "get_weather", '{"city": "Paris"}'),
                    call("call_2", "get_weather", '{"city":"Rome","units":["C"]}'),
                    call("call_3", "now", ""),
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [text("21"), text("C")]},
            {"role": "tool", "tool_call_id": "call_3", "content": ""},
            user("and tomorrow?"),
        ],
        tools=[WEATHER],
    )
    assert body["messages"] == [
        {"role": "user", "content": [text("weather in Paris and Rome?")]},
        {
            "role": "assistant",
            "content": [
                text("Checking both."),
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                {
                    "type": "tool_use",
                    "id": "call_2",
                    "name": "get_weather",
                    "input": {"city": "Rome", "units": ["C"]},
                },
                {"type": "tool_use", "id": "call_3", "name": "now", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": [text("21"), text("C")]},
                {"type": "tool_result", "tool_use_id": "call_3"},
                text("and tomorrow?"),
            ],
        },
    ]


def test_tool_results_go_first_in_their_turn() -> None:
    body = translate(
        messages=[
            user("q"),
            {"role": "assistant", "tool_calls": [call("c1", "f", "{}")]},
            user("by the way"),
            {"role": "tool", "tool_call_id": "c1", "content": "done"},
        ]
    )
    assert [b["type"] for b in body["messages"][2]["content"]] == ["tool_result", "text"]


def test_an_assistant_message_with_only_tool_calls() -> None:
    body = translate(
        messages=[user("q"), {"role": "assistant", "content": None, "tool_calls": [call("c", "f", "{}")]}]
    )
    assert body["messages"][1]["content"] == [{"type": "tool_use", "id": "c", "name": "f", "input": {}}]


@pytest.mark.parametrize(
    ("tool_call", "param"),
    [
        (call("c", "f", "{not json"), "messages[1].tool_calls[0].function.arguments"),
        (call("c", "f", "[1, 2]"), "messages[1].tool_calls[0].function.arguments"),
        (call("c", "f", '"text"'), "messages[1].tool_calls[0].function.arguments"),
        (
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}},
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            {"id": "c", "type": "custom", "custom": {"name": "f", "input": "x"}},
            "messages[1].tool_calls[0].type",
        ),
        ({"type": "function", "function": {"name": "f", "arguments": "{}"}}, "messages[1].tool_calls[0].id"),
        (
            {"id": "c", "type": "function", "function": {"arguments": "{}"}},
            "messages[1].tool_calls[0].function.name",
        ),
        ({"id": "c", "type": "function"}, "messages[1].tool_calls[0].function"),
    ],
)
def test_tool_calls_that_cannot_be_sent(tool_call: Any, param: str) -> None:
    refused(param, messages=[user("q"), {"role": "assistant", "tool_calls": [tool_call]}])


def test_invalid_arguments_say_why() -> None:
    message = refused(
        "messages[1].tool_calls[0].function.arguments",
        messages=[user("q"), {"role": "assistant", "tool_calls": [call("c", "f", '{"a": ')]}],
    )
    assert message.startswith("messages[1].tool_calls[0].function.arguments is not valid JSON: ")


def test_tool_messages_need_a_call_id() -> None:
    refused("messages[1].tool_call_id", messages=[user("q"), {"role": "tool", "content": "x"}])


def test_assistant_refusals_and_text_parts() -> None:
    body = translate(
        messages=[
            user("q"),
            {"role": "assistant", "content": [text("part one "), {"type": "refusal", "refusal": "I can't."}]},
            user("ok"),
            {"role": "assistant", "content": None, "refusal": "No."},
            user("fine"),
        ]
    )
    assert body["messages"][1]["content"] == [text("part one "), text("I can't.")]
    assert body["messages"][3]["content"] == [text("No.")]


def test_assistant_audio_is_refused() -> None:
    refused("messages[1].audio", messages=[user("q"), {"role": "assistant", "audio": {"id": "audio_1"}}])


def test_empty_assistant_messages_are_left_out_and_turns_merge() -> None:
    body = translate(
        messages=[
            user("one"),
            {"role": "assistant", "content": ""},
            user("two"),
            {"role": "assistant", "content": "a"},
            {"role": "assistant", "content": [text("b")]},
            user("three"),
        ]
    )
    assert body["messages"] == [
        {"role": "user", "content": [text("one"), text("two")]},
        {"role": "assistant", "content": [text("a"), text("b")]},
        {"role": "user", "content": [text("three")]},
    ]


def test_a_final_assistant_message_loses_trailing_whitespace() -> None:
    body = translate(messages=[user("q"), {"role": "assistant", "content": "The answer is \n"}])
    assert body["messages"][-1] == {"role": "assistant", "content": [text("The answer is")]}
    body = translate(messages=[user("q"), {"role": "assistant", "content": "  \n"}])
    assert body["messages"] == [{"role": "user", "content": [text("q")]}]
    body = translate(messages=[user("q"), {"role": "assistant", "content": "kept "}, user("next")])
    assert body["messages"][1]["content"] == [text("kept ")]


def test_blank_text_is_dropped_as_empty_text_is() -> None:
    """Claude refuses a text block of only whitespace ("text content blocks must contain
    non-whitespace text"): an assistant's "\\n\\n" before its tool calls, sent back, would fail."""
    body = translate(
        messages=[
            {"role": "system", "content": " \n"},
            {"role": "developer", "content": [text("\t")]},
            user(text("look"), text(" \n ")),
            {"role": "assistant", "content": "\n\n", "tool_calls": [call("c1", "f", "{}")]},
            {"role": "tool", "tool_call_id": "c1", "content": "  "},
            {
                "role": "assistant",
                "content": [text(" "), {"type": "refusal", "refusal": "\n"}],
                "refusal": " ",
            },
            user("next"),
        ]
    )
    assert "system" not in body
    assert body["messages"] == [
        {"role": "user", "content": [text("look")]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1"}, text("next")]},
    ]
    refused("messages[0]", messages=[user(" \n")])
    refused("messages[0]", messages=[user(text("\t"))])


def test_messages_and_roles_that_cannot_be_sent() -> None:
    refused("messages", messages=[])
    refused("messages", messages="hi")
    refused("messages", messages=[{"role": "system", "content": "only a system prompt"}])
    refused("messages[0]", messages=["hi"])
    refused("messages[1].role", messages=[user("q"), {"role": "critic", "content": "x"}])


def test_the_message_name_field_is_accepted_and_unused() -> None:
    body = translate(messages=[{"role": "user", "content": "hi", "name": "alice"}])
    assert body["messages"] == [{"role": "user", "content": [text("hi")]}]


# -- legacy functions ------------------------------------------------------------------------------


def test_legacy_functions_function_call_and_function_messages() -> None:
    function = WEATHER["function"]
    body = translate(
        messages=[
            user("weather?"),
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
            },
            {"role": "function", "name": "get_weather", "content": "-3C"},
        ],
        functions=[function],
        function_call="auto",
    )
    assert body["tools"] == [
        {"name": "get_weather", "description": "Weather for a city", "input_schema": function["parameters"]}
    ]
    assert body["tool_choice"] == {"type": "auto"}
    [tool_use] = body["messages"][1]["content"]
    assert tool_use == {
        "type": "tool_use",
        "id": "call_legacy_0",
        "name": "get_weather",
        "input": {"city": "Oslo"},
    }
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_legacy_0", "content": "-3C"}
    ]


def test_legacy_function_choice_and_errors() -> None:
    function = WEATHER["function"]
    named = translate(functions=[function], function_call={"name": "get_weather"})
    assert named["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert translate(functions=[function], function_call="none")["tool_choice"] == {"type": "none"}
    refused("function_call.name", functions=[function], function_call={"name": "other"})
    refused("functions", functions=[function], tools=[WEATHER])
    refused("function_call", tools=[WEATHER], tool_choice="auto", function_call="auto")
    refused(
        "messages[1].name", messages=[user("q"), {"role": "function", "name": "get_weather", "content": "x"}]
    )


# -- tools and tool_choice -------------------------------------------------------------------------


def test_tools() -> None:
    body = translate(tools=[WEATHER, {"type": "function", "function": {"name": "now"}}])
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": WEATHER["function"]["parameters"],
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body
    assert "tools" not in translate(tools=[])


@pytest.mark.parametrize(
    ("tools", "param"),
    [
        ([{"type": "custom", "custom": {"name": "x"}}], "tools[0].type"),
        ([WEATHER, {"type": "web_search"}], "tools[1].type"),
        ([{"type": "function", "function": {"description": "no name"}}], "tools[0].function.name"),
        (
            [{"type": "function", "function": {"name": "f", "parameters": "{}"}}],
            "tools[0].function.parameters",
        ),
        (
            [{"type": "function", "function": {"name": "f", "description": 5}}],
            "tools[0].function.description",
        ),
        ({"type": "function"}, "tools"),
    ],
)
def test_tools_that_cannot_be_sent(tools: Any, param: str) -> None:
    refused(param, tools=tools)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    assert translate(tools=[WEATHER], tool_choice=choice)["tool_choice"] == expected


def test_tool_choice_errors() -> None:
    refused(
        "tool_choice.function.name",
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "x"}},
    )
    refused("tool_choice", tool_choice="required")
    refused(
        "tool_choice",
        tools=[WEATHER],
        tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "auto"}},
    )
    refused("tool_choice", tools=[WEATHER], tool_choice="sometimes")
    for harmless in ("auto", "none"):
        assert "tool_choice" not in translate(tool_choice=harmless)


def test_parallel_tool_calls_false() -> None:
    assert translate(tools=[WEATHER], parallel_tool_calls=False)["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }
    assert translate(tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)["tool_choice"] == {
        "type": "any",
        "disable_parallel_tool_use": True,
    }
    assert translate(tools=[WEATHER], tool_choice="none", parallel_tool_calls=False)["tool_choice"] == {
        "type": "none"
    }
    assert "tool_choice" not in translate(parallel_tool_calls=False)
    assert "tool_choice" not in translate(tools=[WEATHER], parallel_tool_calls=True)
    refused("parallel_tool_calls", tools=[WEATHER], parallel_tool_calls="no")


# -- sampling, limits, stop, user ------------------------------------------------------------------


def test_stop_sequences() -> None:
    assert translate(stop="END")["stop_sequences"] == ["END"]
    assert translate(stop=["a", "", "b"])["stop_sequences"] == ["a", "b"]
    assert "stop_sequences" not in translate(stop=None)
    assert "stop_sequences" not in translate(stop="")
    refused("stop", stop=["a", 5])
    refused("stop", stop=5)


def test_max_tokens() -> None:
    assert translate()["max_tokens"] == 4096
    assert translate(Settings(default_max_tokens=1000))["max_tokens"] == 1000
    assert translate(max_tokens=300)["max_tokens"] == 300
    assert translate(max_completion_tokens=200, max_tokens=300)["max_tokens"] == 200
    for bad in (0, -1, "5", True, 1.5):
        refused("max_tokens", max_tokens=bad)
        refused("max_completion_tokens", max_completion_tokens=bad)


def test_temperature_and_top_p() -> None:
    body = translate(temperature=0.7, top_p=0.9)
    assert (body["temperature"], body["top_p"]) == (0.7, 0.9)
    assert translate(temperature=0)["temperature"] == 0
    assert "temperature" not in translate(temperature=None)
    assert "above" not in refused("temperature", temperature=1.5) and "0 to 1" in refused(
        "temperature", temperature=1.5
    )
    assert translate(Settings(temperature_above_1="clamp"), temperature=1.5)["temperature"] == 1.0
    for bad in (2.5, -0.1, "0.5", True):
        refused("temperature", Settings(temperature_above_1="clamp"), temperature=bad)
    for bad in (1.1, -0.5, "1"):
        refused("top_p", top_p=bad)


def test_user_becomes_metadata_user_id() -> None:
    assert translate(user="user-42")["metadata"] == {"user_id": "user-42"}
    assert translate(safety_identifier="hash-1")["metadata"] == {"user_id": "hash-1"}
    assert translate(user="u", safety_identifier="s")["metadata"] == {"user_id": "u"}
    assert "metadata" not in translate(user="")
    refused("user", user=42)


# -- reasoning_effort and its traps ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("effort", "budget"),
    [("minimal", 1024), ("low", 2048), ("medium", 4096), ("high", 8192), ("xhigh", 16384), ("max", 32768)],
)
def test_reasoning_effort_becomes_a_thinking_budget(effort: str, budget: int) -> None:
    body = translate(reasoning_effort=effort)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert budget >= 1024
    assert body["max_tokens"] > budget
    assert body["max_tokens"] == (4096 + budget if budget >= 4096 else 4096)


def test_max_tokens_is_raised_above_the_budget_only_when_needed() -> None:
    assert translate(reasoning_effort="high", max_tokens=20000)["max_tokens"] == 20000
    assert translate(reasoning_effort="high", max_tokens=500)["max_tokens"] == 8692
    assert translate(reasoning_effort="minimal", max_completion_tokens=1024)["max_tokens"] == 2048


def test_reasoning_effort_none_and_bad_values() -> None:
    assert "thinking" not in translate(reasoning_effort="none")
    assert "thinking" not in translate(reasoning_effort=None)
    for bad in ("extreme", 3, ""):
        assert "must be one of none, minimal" in refused("reasoning_effort", reasoning_effort=bad)


def test_reasoning_budgets_from_the_settings() -> None:
    custom = Settings.from_env({"CHUNKLINE_REASONING_BUDGETS": "high=12000"})
    assert translate(custom, reasoning_effort="high")["thinking"]["budget_tokens"] == 12000
    assert translate(custom, reasoning_effort="low")["thinking"]["budget_tokens"] == 2048


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_trap_no_forced_tool_choice_with_thinking(choice: Any) -> None:
    message = refused("tool_choice", tools=[WEATHER], tool_choice=choice, reasoning_effort="low")
    assert "reasoning_effort" in message and "auto" in message
    refused(
        "function_call",
        functions=[WEATHER["function"]],
        function_call={"name": "get_weather"},
        reasoning_effort="low",
    )
    body = translate(tools=[WEATHER], tool_choice="auto", reasoning_effort="low", parallel_tool_calls=False)
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert body["thinking"]["type"] == "enabled"


def test_trap_sampling_with_thinking() -> None:
    refused("temperature", temperature=0.5, reasoning_effort="low")
    refused("top_p", top_p=0.9, reasoning_effort="low")
    body = translate(temperature=1, top_p=0.95, reasoning_effort="low")
    assert (body["temperature"], body["top_p"]) == (1, 0.95)
    assert translate(temperature=0.2, reasoning_effort="none")["temperature"] == 0.2


def test_trap_no_thinking_when_continuing_after_a_tool_call() -> None:
    loop = [
        user("weather?"),
        {"role": "assistant", "tool_calls": [call("c1", "get_weather", '{"city": "Oslo"}')]},
        {"role": "tool", "tool_call_id": "c1", "content": "-3C"},
    ]
    assert "thinking" not in translate(messages=loop, tools=[WEATHER], reasoning_effort="high")
    after = [*loop, {"role": "assistant", "content": "It is -3C."}, user("and Rome?")]
    assert (
        translate(messages=after, tools=[WEATHER], reasoning_effort="high")["thinking"]["budget_tokens"]
        == 8192
    )


# -- response_format -------------------------------------------------------------------------------


def test_response_format() -> None:
    assert "system" not in translate(response_format={"type": "text"})
    [instruction] = translate(response_format={"type": "json_object"})["system"]
    assert "single JSON object" in instruction["text"]
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    body = translate(
        messages=[{"role": "system", "content": "Be exact."}, user("6*7?")],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "result", "schema": schema, "strict": True},
        },
    )
    first, second = body["system"]
    assert first == text("Be exact.")
    assert "'result'" in second["text"]
    assert json.loads(second["text"].rsplit("\n", 1)[1]) == schema
    assert "tool_choice" not in body and "tools" not in body


def test_response_format_with_thinking_and_tools_is_fine() -> None:
    body = translate(
        response_format={"type": "json_object"}, reasoning_effort="low", tools=[WEATHER], tool_choice="auto"
    )
    assert body["thinking"]["type"] == "enabled" and body["tool_choice"] == {"type": "auto"}


def test_response_formats_that_cannot_be_sent() -> None:
    refused(
        "response_format.json_schema", response_format={"type": "json_schema", "json_schema": {"name": "x"}}
    )
    refused("response_format.type", response_format={"type": "xml"})
    refused("response_format.type", response_format="json")


# -- fields Claude cannot honour, fields ignored, unknown fields -----------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", 2),
        ("logprobs", True),
        ("top_logprobs", 3),
        ("logit_bias", {"50256": -100}),
        ("frequency_penalty", 0.5),
        ("presence_penalty", -1),
        ("audio", {"voice": "alloy", "format": "wav"}),
        ("modalities", ["text", "audio"]),
        ("web_search_options", {}),
        ("moderation", {"model": "omni-moderation-latest"}),
        ("verbosity", "low"),
    ],
)
def test_fields_claude_cannot_honour_are_refused(field: str, value: Any) -> None:
    message = refused(field, **{field: value})
    assert message.startswith(f"'{field}' is not supported: ")


def test_those_fields_at_their_defaults_are_fine() -> None:
    translate(
        n=1,
        logprobs=False,
        top_logprobs=None,
        logit_bias={},
        frequency_penalty=0,
        presence_penalty=0.0,
        modalities=["text"],
        verbosity="medium",
        audio=None,
    )
    refused("n", n=True)


def test_fields_without_effect_are_accepted() -> None:
    body = translate(
        metadata={"team": "a"},
        store=True,
        seed=7,
        service_tier="auto",
        prediction={"type": "content", "content": "x"},
        prompt_cache_key="k",
        prompt_cache_retention="24h",
    )
    assert set(body) == {"model", "messages", "max_tokens", "stream"}


def test_unknown_fields_are_refused_as_openai_does() -> None:
    assert refused("top_k", top_k=5) == "Unrecognized request argument supplied: top_k"
    refused("thinking", thinking={"type": "enabled"})


# -- whatever arrives: a translation or a 400, and never an empty text block -------------------------

_TEXT = st.sampled_from(["", " ", "x", "hello world"])
_PART = st.one_of(
    st.builds(text, _TEXT),
    st.just({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}),
    st.just({"type": "refusal", "refusal": "no"}),
    st.just({"type": "unknown"}),
    st.integers(),
)
_CONTENT = st.one_of(_TEXT, st.lists(_PART, max_size=3), st.none(), st.integers())
_MESSAGE = st.one_of(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "developer"]), "content": _CONTENT}
    ),
    st.fixed_dictionaries(
        {"role": st.just("tool"), "tool_call_id": st.sampled_from(["c1", "", None]), "content": _CONTENT}
    ),
    st.fixed_dictionaries(
        {
            "role": st.just("assistant"),
            "content": _CONTENT,
            "tool_calls": st.lists(
                st.builds(
                    call,
                    st.sampled_from(["c1", "c2"]),
                    st.just("f"),
                    st.sampled_from(["{}", '{"a":1}', "", "{"]),
                ),
                max_size=2,
            ),
        }
    ),
    st.integers(),
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
_FIELDS = [
    "temperature",
    "top_p",
    "stop",
    "tools",
    "tool_choice",
    "reasoning_effort",
    "response_format",
    "user",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=st.lists(_MESSAGE, min_size=1, max_size=6),
    extra=st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=3),
)
def test_any_request_translates_cleanly_or_is_a_400(messages: list[Any], extra: dict[str, Any]) -> None:
    try:
        body = translate_request({"model": "m", "messages": messages, **extra}, SETTINGS).body
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.message
        return
    turns = body["messages"]
    assert turns, "no turns"
    assert all(a["role"] != b["role"] for a, b in itertools.pairwise(turns)), "roles do not alternate"
    for turn in turns:
        assert turn["content"], "an empty turn"
        kinds = [block["type"] for block in turn["content"]]
        assert kinds == sorted(kinds, key=lambda kind: kind != "tool_result"), "tool results not first"
        for block in turn["content"]:
            assert block["type"] != "text" or block["text"].strip(), "an empty or blank text block"
            content = block.get("content")
            assert block["type"] != "tool_result" or content is None or content, "an empty tool result"
    for block in body.get("system", []):
        assert block["text"].strip(), "an empty or blank system block"
    if turns[-1]["role"] == "assistant" and turns[-1]["content"][-1]["type"] == "text":
        assert turns[-1]["content"][-1]["text"] == turns[-1]["content"][-1]["text"].rstrip()
    forced = body.get("tool_choice", {}).get("type") in ("any", "tool")
    assert not (forced and "thinking" in body), "a forced tool choice with thinking"
    assert json.loads(json.dumps(body)) == body
