"""Request translation as a whole: basics, sampling, reasoning, response_format, refused fields, any input."""

from __future__ import annotations

import itertools
import json
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from translatekit import SETTINGS, WEATHER, call, refused, text, translate, user

from chunkline.server.errors import InvalidRequest
from chunkline.server.settings import Settings
from chunkline.server.translate import Translated, translate_request

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
