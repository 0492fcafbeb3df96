"""Request translation of tools: function tools and legacy functions, tool_choice, parallel_tool_calls."""

from __future__ import annotations

from typing import Any

import pytest
from translatekit import WEATHER, refused, translate, user

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
