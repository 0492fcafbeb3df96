"""Request translation of messages: system text, user content, assistant text and tool calls, tool results."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from translatekit import WEATHER, call, refused, text, translate, user

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image bytes").decode()
PDF = base64.b64encode(b"%PDF-1.4 fake").decode()

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
