"""The stages after decode: thinking, tool calls, chunker, finish, usage, envelope, serialize; on_error."""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Any

import pytest

import chunkline
from chunkline.events import TextDelta
from strategies import (
    CREATED,
    FINISH_MAP,
    OpenAIStream,
    block_events,
    encode_sse,
    message_delta,
    message_start,
    read_openai_stream,
)

STOP = {"type": "message_stop"}


@cache
def _pipeline(items: tuple[tuple[str, Any], ...]) -> chunkline.Pipeline:
    return chunkline.Pipeline(**dict(items))


def pipeline(**options: Any) -> chunkline.Pipeline:
    """A pipeline (``created`` fixed unless given), built once per set of hashable options."""
    options.setdefault("created", CREATED)
    try:
        return _pipeline(tuple(sorted(options.items())))
    except TypeError:  # unhashable option values
        return chunkline.Pipeline(**options)


def wire(events: list[dict[str, Any]], **options: Any) -> list[bytes]:
    return pipeline(**options).convert(encode_sse(events))


def run(events: list[dict[str, Any]], **options: Any) -> OpenAIStream:
    return read_openai_stream(wire(events, **options))


def text_block(index: int, *texts: str) -> list[dict[str, Any]]:
    return block_events(
        index, {"type": "text", "text": ""}, [{"type": "text_delta", "text": t} for t in texts]
    )


def thinking_block(index: int, *texts: str, signature: str = "SIGNATURE_xyz") -> list[dict[str, Any]]:
    deltas = [{"type": "thinking_delta", "thinking": t} for t in texts]
    deltas.append({"type": "signature_delta", "signature": signature})
    return block_events(index, {"type": "thinking", "thinking": "", "signature": ""}, deltas)


def tool_block(
    index: int, tool_id: str, name: str, *fragments: str, tool_input: Any = None, kind: str = "tool_use"
) -> list[dict[str, Any]]:
    block = {"type": kind, "id": tool_id, "name": name, "input": {} if tool_input is None else tool_input}
    return block_events(index, block, [{"type": "input_json_delta", "partial_json": f} for f in fragments])


def stream(
    *blocks: list[dict[str, Any]], stop_reason: str | None = "end_turn", **start: Any
) -> list[dict[str, Any]]:
    events = [message_start(**start)]
    for block in blocks:
        events += block
    return [*events, message_delta(stop_reason), STOP]


def content_deltas(s: OpenAIStream) -> list[str]:
    return [
        c["choices"][0]["delta"]["content"]
        for c in s.chunks[1:]
        if c["choices"] and "content" in c["choices"][0]["delta"]
    ]


def kinds(s: OpenAIStream) -> list[str]:
    """Each payload in order, by what it carries (role, content, reasoning, tool, finish, usage, ...)."""
    out = []
    for payload in s.payloads:
        if payload == "[DONE]":
            out.append("done")
        elif "error" in payload:
            out.append("error")
        elif not payload["choices"]:
            out.append("usage")
        else:
            choice = payload["choices"][0]
            delta = choice["delta"]
            if choice["finish_reason"]:
                out.append("finish")
            elif "role" in delta:
                out.append("role")
            elif "tool_calls" in delta:
                out.append("tool")
            elif "content" in delta:
                out.append("content")
            else:
                out.append("reasoning")
    return out


# -- thinking --------------------------------------------------------------------------------------

THOUGHTFUL = stream(
    thinking_block(0, "Let me ", "think."),
    block_events(1, {"type": "redacted_thinking", "data": "REDACTED_abc"}),
    text_block(2, "The answer", " is 4."),
)


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_thinking_goes_to_a_reasoning_field(field: str) -> None:
    s = run(THOUGHTFUL, thinking=field)
    assert s.reasoning == {field: ["Let me ", "think."]}
    assert s.text == "The answer is 4."
    deltas = [c["choices"][0]["delta"] for c in s.chunks[1:3]]
    assert deltas == [{field: "Let me "}, {field: "think."}]


def test_the_default_thinking_field_is_reasoning_content() -> None:
    assert run(THOUGHTFUL).reasoning == {"reasoning_content": ["Let me ", "think."]}


def test_thinking_as_tags_in_content() -> None:
    s = run(THOUGHTFUL, thinking="tags")
    assert s.reasoning == {}
    assert s.text == "<think>Let me think.</think>The answer is 4."


def test_thinking_tags_per_block_and_none_for_empty_blocks() -> None:
    events = stream(
        thinking_block(0, "a"),
        text_block(1, "x"),
        thinking_block(2),
        thinking_block(3, "b", "c"),
        text_block(4, "y"),
    )
    assert run(events, thinking="tags").text == "<think>a</think>x<think>bc</think>y"


def test_thinking_tags_survive_chunking() -> None:
    s = run(THOUGHTFUL, thinking="tags", chunking="chars:4")
    assert s.text == "<think>Let me think.</think>The answer is 4."


def test_thinking_dropped() -> None:
    s = run(THOUGHTFUL, thinking="drop")
    assert s.reasoning == {} and s.text == "The answer is 4."
    assert kinds(s) == ["role", "content", "content", "finish", "done"]


@pytest.mark.parametrize("mode", ["reasoning_content", "reasoning", "tags", "drop"])
def test_signatures_and_redacted_thinking_never_reach_the_client(mode: str) -> None:
    out = b"".join(wire(THOUGHTFUL, thinking=mode))
    assert b"SIGNATURE_xyz" not in out and b"REDACTED_abc" not in out


def test_bad_thinking_mode() -> None:
    with pytest.raises(chunkline.OptionError):
        chunkline.Pipeline(thinking="content")


# -- tool calls ------------------------------------------------------------------------------------

FRAGMENTS = ('{"city', '": "Par', 'is", "unit": "\\u00b0C",', '  "n": 1.50e1 ', "}")
TOOLS = stream(
    text_block(0, "Checking."),
    tool_block(1, "srvtoolu_1", "web_search", '{"query": "weather"}', kind="server_tool_use"),
    block_events(2, {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}),
    tool_block(3, "toolu_A", "get_weather", *FRAGMENTS),
    text_block(4, "And "),
    tool_block(5, "toolu_B", "no_args"),
    tool_block(6, "toolu_C", "from_start", tool_input={"x": [1, "é"]}),
    tool_block(7, "toolu_D", "blank", "", ""),
    stop_reason="tool_use",
)


def test_tool_call_indices_are_contiguous_and_skip_server_tools() -> None:
    s = run(TOOLS)
    assert sorted(s.tool_calls) == [0, 1, 2, 3]
    assert [s.tool_calls[i]["id"] for i in range(4)] == ["toolu_A", "toolu_B", "toolu_C", "toolu_D"]
    assert [s.tool_calls[i]["name"] for i in range(4)] == ["get_weather", "no_args", "from_start", "blank"]
    assert s.finish_reason == "tool_calls"
    assert s.text == "Checking.And "


def test_the_first_tool_delta_carries_id_type_name_and_empty_arguments() -> None:
    s = run(TOOLS)
    tool_chunks = [
        c["choices"][0]["delta"]["tool_calls"] for c in s.chunks if "tool_calls" in c["choices"][0]["delta"]
    ]
    assert all(len(calls) == 1 for calls in tool_chunks)
    first = tool_chunks[0][0]
    assert first == {
        "index": 0,
        "id": "toolu_A",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert tool_chunks[1][0] == {"index": 0, "function": {"arguments": FRAGMENTS[0]}}


def test_tool_arguments_are_passed_byte_for_byte() -> None:
    s = run(TOOLS)
    assert s.tool_fragments[0] == ["", *FRAGMENTS]
    assert s.tool_calls[0]["arguments"] == "".join(FRAGMENTS)


def test_a_tool_call_without_arguments_gets_an_empty_object() -> None:
    s = run(TOOLS)
    assert s.tool_calls[1]["arguments"] == "{}"
    assert s.tool_calls[3]["arguments"] == "{}"  # only empty fragments


def test_the_start_blocks_input_is_used_when_no_deltas_came() -> None:
    s = run(TOOLS)
    assert json.loads(s.tool_calls[2]["arguments"]) == {"x": [1, "é"]}


def test_tool_calls_under_every_chunking_policy() -> None:
    baseline = run(TOOLS)
    for policy in ("words:1", "chars:2", "sentences"):
        s = run(TOOLS, chunking=policy)
        assert s.tool_calls == baseline.tool_calls and s.text == baseline.text


# -- chunker ---------------------------------------------------------------------------------------

CHUNKING_CASES = [
    ("words:2", ["one two three four five"], ["one two", " three four", " five"]),
    ("words:1", ["  Hello   world\n\n  foo  "], ["  Hello", "   world", "\n\n  foo", "  "]),
    ("words:3", ["a b", " c d", " e"], ["a b c", " d e"]),
    ("chars:3", ["abcdefgh"], ["abc", "def", "gh"]),
    ("chars:2", ["日本語😀e\u0301"], ["日本", "語😀", "e\u0301"]),
    ("sentences", ["Hi. How are you? Fine\nok"], ["Hi. ", "How are you? ", "Fine\n", "ok"]),
    ("sentences", ["Wait", "... what?", " Yes."], ["Wait... ", "what? ", "Yes."]),
    ("passthrough", ["a", " b ", "c"], ["a", " b ", "c"]),
]


@pytest.mark.parametrize(("policy", "deltas", "expected"), CHUNKING_CASES)
def test_chunking_policies(policy: str, deltas: list[str], expected: list[str]) -> None:
    s = run(stream(text_block(0, *deltas)), chunking=policy)
    assert content_deltas(s) == expected
    assert s.text == "".join(deltas)


def test_words_default_argument_is_three() -> None:
    s = run(stream(text_block(0, "a b c d e f g")), chunking="words")
    assert content_deltas(s) == ["a b c", " d e f", " g"]


@pytest.mark.parametrize("policy", ["words:5", "chars:100", "sentences"])
def test_chunker_flushes_at_block_boundaries(policy: str) -> None:
    s = run(stream(text_block(0, "a b c"), text_block(1, "d e")), chunking=policy)
    assert content_deltas(s) == ["a b c", "d e"]


def test_chunker_holds_its_text_across_a_keep_alive() -> None:
    """A ping says nothing about the text, so it must not force a cut (a Markdown policy would
    otherwise split a code span wherever the upstream happened to send a keep-alive)."""
    block = text_block(0, "a b", " c d")
    block.insert(2, {"type": "ping"})
    out = wire(stream(block), chunking="words:10")
    s = read_openai_stream(out)
    assert content_deltas(s) == ["a b c d"]
    assert b": ping\n\n" in out


def test_chunker_flushes_before_tool_calls() -> None:
    events = stream(text_block(0, "x y"), tool_block(1, "toolu_1", "f", '{"a":1}'), stop_reason="tool_use")
    s = run(events, chunking="words:10")
    assert kinds(s) == ["role", "content", "tool", "tool", "finish", "done"]
    assert content_deltas(s) == ["x y"]


def test_chunker_flushes_before_reasoning() -> None:
    s = run(stream(text_block(0, "x y"), thinking_block(1, "hmm")), chunking="words:10")
    assert kinds(s) == ["role", "content", "reasoning", "finish", "done"]


def test_chunker_flushes_before_an_error() -> None:
    events = [
        message_start(),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "held text"}},
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    ]
    s = run(events, chunking="words:10")
    assert kinds(s) == ["role", "content", "error", "done"]
    assert s.text == "held text"


def test_chunker_flushes_before_a_truncation_error() -> None:
    events = [
        message_start(),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "held text"}},
    ]
    s = run(events, chunking="chars:100")
    assert kinds(s) == ["role", "content", "error", "done"]
    assert s.error is not None and s.error["type"] == "upstream_truncated"


def test_chunker_flushes_before_a_parse_error() -> None:
    data = encode_sse(stream(text_block(0, "held text"))[:3]) + b"event: ping\ndata: {oops\n\n"
    s = read_openai_stream(pipeline(chunking="words:10").convert(data))
    assert kinds(s) == ["role", "content", "error", "done"]


class Lines:
    """A custom policy: one piece per line."""

    def __init__(self) -> None:
        self.held = ""

    def feed(self, text: str) -> list[str]:
        self.held += text
        cut = self.held.rfind("\n") + 1
        ready, self.held = self.held[:cut], self.held[cut:]
        return [ready] if ready else []

    def flush(self) -> list[str]:
        ready, self.held = self.held, ""
        return [ready] if ready else []


class Upper:
    """A (lossy on purpose, to be visible) custom policy with an argument: pieces of N, uppercased."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.held = ""

    def feed(self, text: str) -> list[str]:
        self.held += text
        cut = len(self.held) - len(self.held) % self.n
        ready, self.held = self.held[:cut], self.held[cut:]
        return [ready[i : i + self.n].upper() for i in range(0, cut, self.n)]

    def flush(self) -> list[str]:
        ready, self.held = self.held, ""
        return [ready.upper()] if ready else []


class PolicyPlugin:
    @chunkline.hookimpl
    def register_chunking_policies(self, register: Any) -> None:
        register(chunkline.ChunkPolicySpec("lines", lambda arg: Lines(), "one piece per line"))

        def upper(arg: str | None) -> Upper:
            if arg is None or not arg.isdigit():
                raise ValueError("upper needs a number")
            return Upper(int(arg))

        register(chunkline.ChunkPolicySpec("upper", upper))


def test_a_custom_policy_from_a_plugin() -> None:
    plugin = PolicyPlugin()
    p = chunkline.Pipeline(plugins=[plugin], chunking="lines", created=CREATED)
    s = read_openai_stream(p.convert(encode_sse(stream(text_block(0, "one\ntw", "o\nthree")))))
    assert content_deltas(s) == ["one\n", "two\n", "three"]


def test_a_custom_policy_with_an_argument() -> None:
    p = chunkline.Pipeline(plugins=[PolicyPlugin()], chunking="upper:2", created=CREATED)
    s = read_openai_stream(p.convert(encode_sse(stream(text_block(0, "abcde")))))
    assert content_deltas(s) == ["AB", "CD", "E"]
    with pytest.raises(chunkline.OptionError):
        chunkline.Pipeline(plugins=[PolicyPlugin()], chunking="upper")


def test_each_conversion_gets_a_fresh_policy() -> None:
    p = chunkline.Pipeline(plugins=[PolicyPlugin()], chunking="lines", created=CREATED)
    first = p.open()
    first.feed(encode_sse(stream(text_block(0, "unfinished"))[:3]))  # text held in the policy
    s = read_openai_stream(p.convert(encode_sse(stream(text_block(0, "a\nb")))))
    assert s.text == "a\nb"


@pytest.mark.parametrize(
    "value",
    ["words:0", "words:x", "words:-1", "chars:", "chars:1.5", "sentences:2", "passthrough:1", "nope", "", 3],
)
def test_bad_chunking_values(value: Any) -> None:
    if value == "chars:":
        chunkline.Pipeline(chunking=value)  # an empty argument means the default
        return
    with pytest.raises(chunkline.OptionError):
        chunkline.Pipeline(chunking=value)


# -- finish ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stop_reason", "finish"), sorted(FINISH_MAP.items()))
def test_finish_reason_map(stop_reason: str, finish: str) -> None:
    blocks = [tool_block(0, "toolu_1", "f", "{}")] if finish == "tool_calls" else [text_block(0, "x")]
    s = run(stream(*blocks, stop_reason=stop_reason))
    assert s.finish_reason == finish
    (chunk,) = s.finish_chunks
    assert chunk["choices"][0]["delta"] == {}


def test_refusal_is_content_filter_and_pause_turn_is_length() -> None:
    assert run(stream(text_block(0, "x"), stop_reason="refusal")).finish_reason == "content_filter"
    assert run(stream(text_block(0, "x"), stop_reason="pause_turn")).finish_reason == "length"


@pytest.mark.parametrize("stop_reason", ["some_future_reason", "", None, "END_TURN"])
def test_unknown_or_missing_stop_reasons_finish_as_stop(stop_reason: str | None) -> None:
    assert run(stream(text_block(0, "x"), stop_reason=stop_reason)).finish_reason == "stop"


def test_no_message_delta_at_all_finishes_as_stop() -> None:
    events = [message_start(), *text_block(0, "x"), STOP]
    assert run(events).finish_reason == "stop"


def test_the_last_message_delta_decides() -> None:
    events = [
        message_start(),
        *text_block(0, "x"),
        message_delta("max_tokens"),
        message_delta("end_turn"),
        STOP,
    ]
    assert run(events).finish_reason == "stop"


def test_tool_use_without_a_client_tool_call_is_stop() -> None:
    assert run(stream(text_block(0, "x"), stop_reason="tool_use")).finish_reason == "stop"
    server_only = stream(
        tool_block(0, "srvtoolu_1", "web_search", "{}", kind="server_tool_use"), stop_reason="tool_use"
    )
    assert run(server_only).finish_reason == "stop"


def test_tool_calls_with_end_turn_finish_as_stop() -> None:
    assert run(stream(tool_block(0, "toolu_1", "f", "{}"), stop_reason="end_turn")).finish_reason == "stop"


def test_finish_reasons_can_be_overridden() -> None:
    p = chunkline.Pipeline(
        finish_reasons={"end_turn": "length", "my_reason": "content_filter"}, created=CREATED
    )
    assert read_openai_stream(p.convert(encode_sse(stream(text_block(0, "x"))))).finish_reason == "length"
    out = p.convert(encode_sse(stream(text_block(0, "x"), stop_reason="my_reason")))
    assert read_openai_stream(out).finish_reason == "content_filter"
    # Reasons not overridden keep the default map.
    out = p.convert(encode_sse(stream(text_block(0, "x"), stop_reason="refusal")))
    assert read_openai_stream(out).finish_reason == "content_filter"


@pytest.mark.parametrize(
    "value", [{"end_turn": "function_call"}, {"end_turn": "end_turn"}, {1: "stop"}, ["stop"], "stop", None]
)
def test_bad_finish_reason_overrides(value: Any) -> None:
    with pytest.raises(chunkline.OptionError):
        chunkline.Pipeline(finish_reasons=value)


# -- usage -----------------------------------------------------------------------------------------


def usage_of(events: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    s = run(events, include_usage=True, **options)
    (chunk,) = s.usage_chunks
    assert (
        chunk["usage"]["total_tokens"]
        == chunk["usage"]["prompt_tokens"] + chunk["usage"]["completion_tokens"]
    )
    return chunk["usage"]


def test_output_tokens_are_cumulative_never_summed() -> None:
    events = [
        message_start(usage={"input_tokens": 10, "output_tokens": 1}),
        *text_block(0, "x"),
        message_delta(None, {"output_tokens": 5}),
        message_delta("end_turn", {"output_tokens": 12}),
        STOP,
    ]
    assert usage_of(events) == {
        "prompt_tokens": 10,
        "completion_tokens": 12,
        "total_tokens": 22,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def test_message_delta_values_override_message_start() -> None:
    events = [
        message_start(
            usage={
                "input_tokens": 2679,
                "output_tokens": 3,
                "cache_read_input_tokens": 7,
                "cache_creation_input_tokens": 100,
            }
        ),
        *text_block(0, "x"),
        message_delta(
            "end_turn", {"input_tokens": 10682, "output_tokens": 510, "cache_creation_input_tokens": 0}
        ),
        STOP,
    ]
    usage = usage_of(events)
    assert usage["prompt_tokens"] == 10682 + 7 + 0
    assert usage["completion_tokens"] == 510
    assert usage["prompt_tokens_details"] == {"cached_tokens": 7}


def test_absent_and_null_fields_keep_earlier_values() -> None:
    events = [
        message_start(usage={"input_tokens": 50, "output_tokens": 1, "cache_read_input_tokens": 20}),
        *text_block(0, "x"),
        message_delta(None, {"output_tokens": 8, "input_tokens": None, "cache_read_input_tokens": None}),
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}},
        STOP,
    ]
    usage = usage_of(events)
    assert usage["prompt_tokens"] == 70 and usage["completion_tokens"] == 8
    assert usage["prompt_tokens_details"] == {"cached_tokens": 20}


def test_reasoning_tokens_only_when_reported() -> None:
    events = stream(text_block(0, "x"))
    assert "completion_tokens_details" not in usage_of(events)
    events[-2] = message_delta(
        "end_turn", {"output_tokens": 40, "output_tokens_details": {"thinking_tokens": 30}}
    )
    assert usage_of(events)["completion_tokens_details"] == {"reasoning_tokens": 30}


def test_usage_chunk_is_last_before_done_and_others_carry_usage_null() -> None:
    s = run(stream(text_block(0, "a", "b")), include_usage=True)
    assert kinds(s) == ["role", "content", "content", "finish", "usage", "done"]
    assert all(c["usage"] is None for c in s.chunks[:-1])
    assert s.usage_chunks[0]["choices"] == []


def test_usage_final_puts_usage_on_the_finish_chunk() -> None:
    s = run(stream(text_block(0, "a")), include_usage=True, usage="final")
    assert kinds(s) == ["role", "content", "finish", "done"]
    assert s.finish_chunks[0]["usage"]["completion_tokens"] == 5
    assert all(c["usage"] is None for c in s.chunks if c is not s.finish_chunks[0])


@pytest.mark.parametrize("where", ["chunk", "final"])
def test_no_usage_key_without_include_usage(where: str) -> None:
    s = run(stream(text_block(0, "a")), usage=where)
    assert s.usage_chunks == []
    assert all("usage" not in c for c in s.chunks)


def test_no_usage_after_an_error() -> None:
    events = [message_start(), {"type": "error", "error": {"type": "api_error", "message": "boom"}}]
    s = run(events, include_usage=True)
    assert kinds(s) == ["role", "error", "done"]


@pytest.mark.parametrize(
    ("name", "value"), [("include_usage", "yes"), ("include_usage", 1), ("usage", "both")]
)
def test_bad_usage_options(name: str, value: Any) -> None:
    with pytest.raises(chunkline.OptionError):
        chunkline.Pipeline(**{name: value})


# -- envelope --------------------------------------------------------------------------------------


def test_envelope_from_the_stream() -> None:
    s = run(stream(text_block(0, "a"), msg_id="msg_01XFDUDYJgAACzvnptvVoYEL", model="claude-sonnet-4-5"))
    for chunk in s.chunks:
        assert chunk["id"] == "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL"
        assert chunk["model"] == "claude-sonnet-4-5"
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["created"] == CREATED
        assert chunk["choices"][0]["index"] == 0 and chunk["choices"][0]["logprobs"] is None
    assert s.chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}


def test_model_and_response_id_options_override() -> None:
    s = run(stream(text_block(0, "a")), model="gpt-4o-compat", response_id="chatcmpl-custom")
    assert {c["model"] for c in s.chunks} == {"gpt-4o-compat"}
    assert {c["id"] for c in s.chunks} == {"chatcmpl-custom"}


def test_created_defaults_to_now_as_an_int() -> None:
    before = int(time.time())
    out = chunkline.Pipeline(include_usage=True).convert(encode_sse(stream(text_block(0, "a"))))
    s = read_openai_stream(out)
    created = {c["created"] for c in s.chunks}
    assert len(created) == 1
    (value,) = created
    assert type(value) is int and before <= value <= int(time.time()) + 1


def test_unicode_model_names_and_text_are_json() -> None:
    s = run(stream(text_block(0, 'quote " back\\slash \u2028 \x00 😀'), model="モデル"))
    assert s.text == 'quote " back\\slash \u2028 \x00 😀' and s.chunks[0]["model"] == "モデル"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("created", 1.5),
        ("created", -1),
        ("created", True),
        ("created", "1"),
        ("model", ""),
        ("model", 5),
        ("response_id", ""),
    ],
)
def test_bad_envelope_options(name: str, value: Any) -> None:
    with pytest.raises(chunkline.OptionError):
        chunkline.Pipeline(**{name: value})


# -- serializer ------------------------------------------------------------------------------------

PINGED = [
    message_start(),
    {"type": "ping"},
    *text_block(0, "a"),
    {"type": "ping"},
    message_delta(),
    STOP,
]


def test_pings_are_sse_comments_by_default() -> None:
    out = wire(PINGED)
    assert out.count(b": ping\n\n") == 2
    assert out[1] == b": ping\n\n"
    assert read_openai_stream(out).comments == [": ping", ": ping"]


def test_pings_can_be_dropped() -> None:
    out = wire(PINGED, ping="drop")
    assert not any(o.startswith(b":") for o in out)
    assert read_openai_stream(out).text == "a"


def test_every_output_is_one_data_event_and_no_event_lines() -> None:
    out = wire(TOOLS, include_usage=True)
    for item in out:
        assert item.startswith((b"data: ", b": ")) and item.endswith(b"\n\n")
        assert b"event:" not in item.split(b"\n")[0]
    assert out[-1] == b"data: [DONE]\n\n"


def test_error_body_shape() -> None:
    events = [
        message_start(),
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    ]
    out = wire(events)
    assert out[-2:] == [
        b'data: {"error":{"message":"Overloaded","type":"upstream_error",'
        b'"param":null,"code":"overloaded_error"}}\n\n',
        b"data: [DONE]\n\n",
    ]


def test_error_code_defaults_to_the_type() -> None:
    s = run([message_start()])
    assert s.error is not None
    assert s.error["type"] == s.error["code"] == "upstream_truncated" and s.error["param"] is None


# -- on_error="raise" ------------------------------------------------------------------------------

HELLO = stream(text_block(0, "Hello"))


@pytest.mark.parametrize(
    ("data", "exc_type", "code"),
    [
        (
            encode_sse(HELLO[:3])
            + b"event: error\n"
            + b'data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n',
            chunkline.UpstreamError,
            "overloaded_error",
        ),
        (encode_sse(HELLO[:3]) + b"event: ping\ndata: {nope\n\n", chunkline.InvalidUpstreamResponse, None),
        (encode_sse(HELLO[:3]) + b"event: ping\ndata: \xff\n\n", chunkline.InvalidUpstreamResponse, None),
        (encode_sse([*HELLO[:3], HELLO[0]]), chunkline.InvalidUpstreamResponse, None),
        (encode_sse(HELLO[:3]) + b"event: ping\ndata: " + b"x" * 5000, chunkline.LimitExceeded, None),
    ],
    ids=["upstream-error", "bad-json", "bad-utf8", "protocol", "limit"],
)
def test_on_error_raise_raises_the_matching_exception(data: bytes, exc_type: type, code: str | None) -> None:
    conversion = pipeline(on_error="raise", max_event_bytes=1024).open()
    with pytest.raises(exc_type) as info:
        conversion.feed(data)
        conversion.close()
    error = info.value
    assert isinstance(error, chunkline.StreamError) and isinstance(error, chunkline.ChunklineError)
    assert error.type == exc_type.type and error.message and str(error) == error.message
    if code is not None:
        assert error.code == code
    # What came before the fault: the role chunk and the text, as bytes a client could be sent.
    s = read_openai_stream([*error.output, b"data: [DONE]\n\n"], check=False)
    assert s.text == "Hello" and s.chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert conversion.feed(b"more") == [] and conversion.close() == []


def test_on_error_raise_truncation_is_raised_by_close_with_the_flushed_text() -> None:
    conversion = pipeline(on_error="raise", chunking="words:10").open()
    out = conversion.feed(encode_sse(HELLO[:3]))
    assert [o for o in out if b'"content":"Hello"' in o] == []  # held by the chunker
    with pytest.raises(chunkline.UpstreamTruncated) as info:
        conversion.close()
    assert info.value.type == "upstream_truncated"
    assert any(b'"content":"Hello"' in o for o in info.value.output)


def test_on_error_raise_output_holds_only_what_was_not_yet_returned() -> None:
    conversion = pipeline(on_error="raise").open()
    first = conversion.feed(encode_sse(HELLO[:3]))
    assert len(first) == 2
    with pytest.raises(chunkline.UpstreamError) as info:
        conversion.feed(
            encode_sse([{"type": "ping"}, {"type": "error", "error": {"type": "x", "message": "y"}}])
        )
    assert info.value.output == [b": ping\n\n"]


def test_on_error_raise_convert_keeps_everything_produced_before_the_fault() -> None:
    # Pipeline.convert() returns nothing when it raises, so the exception's output must hold
    # all that the conversion produced before the fault, not only what close() produced.
    with pytest.raises(chunkline.UpstreamTruncated) as info:
        pipeline(on_error="raise").convert(encode_sse(HELLO[:3]))
    s = read_openai_stream([*info.value.output, b"data: [DONE]\n\n"], check=False)
    assert s.text == "Hello"


def test_on_error_raise_still_converts_good_streams() -> None:
    assert pipeline(on_error="raise").convert(encode_sse(HELLO)) == pipeline().convert(encode_sse(HELLO))


class Boom(chunkline.Stage):
    handles = (TextDelta,)

    def feed(self, item: Any) -> None:
        raise RuntimeError("kaboom")


def _boom_pipeline(**options: Any) -> chunkline.Pipeline:
    stages: list[Any] = list(chunkline.DEFAULT_STAGES)
    stages.insert(stages.index("chunker"), chunkline.StageSpec("boom", lambda options: Boom()))
    return chunkline.Pipeline(stages=stages, created=CREATED, **options)


def test_a_stage_that_raises_is_an_internal_error() -> None:
    s = read_openai_stream(_boom_pipeline().convert(encode_sse(HELLO)))
    assert s.error is not None and s.error["type"] == "internal_error"
    assert "boom" in s.error["message"] and "kaboom" in s.error["message"]
    with pytest.raises(chunkline.InternalStageError) as info:
        _boom_pipeline(on_error="raise").convert(encode_sse(HELLO))
    assert info.value.type == "internal_error"
    assert isinstance(info.value.__cause__, RuntimeError)


def test_bad_on_error_value() -> None:
    with pytest.raises(chunkline.OptionError):
        chunkline.Pipeline(on_error="ignore")


# -- conversion lifecycle --------------------------------------------------------------------------


def test_feed_after_close_raises() -> None:
    conversion = pipeline().open()
    conversion.feed(encode_sse(HELLO))
    conversion.close()
    with pytest.raises(chunkline.ChunklineError) as info:
        conversion.feed(b"")
    assert not isinstance(info.value, chunkline.StreamError)
    assert conversion.close() == []


def test_feed_after_close_raises_even_for_an_unfinished_stream() -> None:
    conversion = pipeline().open()
    conversion.feed(encode_sse(HELLO[:2]))
    assert read_openai_stream(conversion.close(), check=False).error is not None
    with pytest.raises(chunkline.ChunklineError):
        conversion.feed(encode_sse(HELLO[2:]))


def test_conversions_are_independent() -> None:
    p = pipeline()
    first, second = p.open(), p.open()
    a = first.feed(encode_sse(HELLO[:3]))
    b = second.feed(encode_sse(HELLO))
    assert read_openai_stream(b + second.close()).text == "Hello"
    assert read_openai_stream(a + first.close()).error is not None
