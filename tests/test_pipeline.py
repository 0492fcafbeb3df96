"""Tests of the Pipeline API: stage lists, option checking, routing and the per-conversion contract."""

from __future__ import annotations

import importlib.resources
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pluggy
import pytest
from anthropic.types import (
    InputJSONDelta,
    Message,
    MessageDeltaUsage,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    SignatureDelta,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    Usage,
)
from anthropic.types import TextDelta as SDKTextDelta
from anthropic.types import ThinkingDelta as SDKThinkingDelta

import chunkline
from chunkline import DEFAULT_STAGES, Pipeline, Stage, StageSpec, events

CREATED = 1_700_000_000


@pytest.fixture(autouse=True)
def _no_disabled_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHUNKLINE_DISABLE_PLUGINS", raising=False)


# -- sample streams ----------------------------------------------------------------------------


def text_stream(message_id: str = "msg_1", texts: tuple[str, ...] = ("Hello", " world")) -> list[dict]:
    """Anthropic events of a one-block text answer."""
    return [
        {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": "claude-test",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 7, "output_tokens": 1},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
            for text in texts
        ),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 4},
        },
        {"type": "message_stop"},
    ]


def sse(stream: list[dict]) -> bytes:
    """The stream framed as Anthropic sends it: named server-sent events."""
    return b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + json.dumps(e).encode() + b"\n\n" for e in stream
    )


def payloads(output: list[Any]) -> list[Any]:
    """The JSON (or ``[DONE]``) of each ``data:`` frame in serialized output."""
    found = []
    for frame in output:
        assert isinstance(frame, bytes)
        if frame.startswith(b"data: "):
            body = frame[len(b"data: ") :].strip()
            found.append("[DONE]" if body == b"[DONE]" else json.loads(body))
    return found


def contents(output: list[Any]) -> list[str]:
    return [
        p["choices"][0]["delta"]["content"]
        for p in payloads(output)
        if isinstance(p, dict) and p.get("choices") and "content" in p["choices"][0]["delta"]
    ]


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def pipeline(*args: Any, **kwargs: Any) -> Pipeline:
    """A pipeline of the built-in plugins only, with a fixed ``created`` time."""
    kwargs.setdefault("load_entrypoints", False)
    if "stages" not in kwargs or "envelope" in (kwargs["stages"] or ()):
        kwargs.setdefault("created", CREATED)
    return Pipeline(*args, **kwargs)


class Recorder(Stage):
    """Remembers every item it is fed and passes it on."""

    def __init__(self, seen: list[Any]) -> None:
        self.seen = seen

    def feed(self, item: Any) -> None:
        self.seen.append(item)
        self.emit(item)


def recording(name: str, handles: tuple[type, ...] | None, **spec: Any) -> tuple[StageSpec, list[Any]]:
    """A StageSpec for a Recorder that handles ``handles``, and the list it records into."""
    seen: list[Any] = []
    cls = type(f"Recorder_{name}", (Recorder,), {"handles": handles})
    return StageSpec(name, lambda options: cls(seen), **spec), seen


# -- the default pipeline ----------------------------------------------------------------------


def test_default_pipeline_has_the_builtin_stages_in_order() -> None:
    pipe = pipeline()
    assert list(pipe.stage_names) == list(DEFAULT_STAGES)
    assert pipe.default_stage_names() == list(DEFAULT_STAGES)
    assert DEFAULT_STAGES == (
        "parse",
        "decode",
        "thinking",
        "tool_calls",
        "chunker",
        "finish",
        "usage",
        "envelope",
        "serialize",
    )


def test_pipeline_with_entrypoints_loads_at_least_the_builtins() -> None:
    pipe = Pipeline(created=CREATED)
    names = [info.name for info in pipe.plugins]
    assert names[: len(chunkline.plugins.DEFAULT_PLUGINS)] == list(chunkline.plugins.DEFAULT_PLUGINS)
    assert set(DEFAULT_STAGES) <= set(pipe.stage_names)


def test_default_pipeline_converts_a_text_stream() -> None:
    out = pipeline().convert(sse(text_stream()))
    frames = payloads(out)
    assert frames[-1] == "[DONE]"
    assert frames[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert frames[0]["id"] == "chatcmpl-msg_1"
    assert frames[0]["created"] == CREATED
    assert contents(out) == ["", "Hello", " world"]
    assert [f["choices"][0]["finish_reason"] for f in frames[:-1]] == [None, None, None, "stop"]
    assert b": ping\n\n" in out


def test_convert_transform_sync_and_feed_agree() -> None:
    data = sse(text_stream())
    pipe = pipeline()
    conversion = pipe.open()
    fed = [out for piece in pieces(data, 5) for out in conversion.feed(piece)] + conversion.close()
    assert pipe.convert(data) == fed
    assert list(pipe.transform_sync(pieces(data, 3))) == fed


def test_transform_sync_stops_reading_and_closes_a_generator_source_at_the_end() -> None:
    data = sse(text_stream())
    state = {"reads_after_the_end": 0, "closed": False}

    def upstream() -> Iterator[bytes]:
        try:
            yield data
            while True:  # an upstream that keeps its connection open after message_stop
                state["reads_after_the_end"] += 1
                yield b": ping\n\n"
        finally:
            state["closed"] = True

    assert list(pipeline().transform_sync(upstream())) == pipeline().convert(data)
    assert state == {"reads_after_the_end": 0, "closed": True}


def test_transform_sync_leaves_a_file_source_open(tmp_path: Path) -> None:
    path = tmp_path / "in.sse"
    path.write_bytes(sse(text_stream()))
    with path.open("rb") as source:
        assert list(pipeline().transform_sync(source)) == pipeline().convert(path.read_bytes())
        assert not source.closed


def test_repr_names_the_stages() -> None:
    assert repr(pipeline(stages=["decode", "finish"])) == "Pipeline(stages=['decode', 'finish'])"


# -- explicit stage lists ----------------------------------------------------------------------


def test_explicit_stage_list_by_name_keeps_its_order() -> None:
    pipe = pipeline(stages=["decode", "finish", "serialize"])
    assert list(pipe.stage_names) == ["decode", "finish", "serialize"]
    # The default list is still available, whatever this pipeline uses.
    assert pipe.default_stage_names() == list(DEFAULT_STAGES)


def test_explicit_stage_list_can_mix_names_and_stage_specs() -> None:
    spec, seen = recording("spy", (events.TextDelta,))
    stages = ["parse", "decode", "thinking", "tool_calls", "chunker", spec, "finish", "usage", "envelope"]
    pipe = pipeline(stages=[*stages, "serialize"])
    assert list(pipe.stage_names) == [*stages[:5], "spy", *stages[6:], "serialize"]
    pipe.convert(sse(text_stream()))
    assert seen == [events.TextDelta(0, "Hello"), events.TextDelta(0, " world")]


def test_unknown_stage_name_is_a_stage_name_error() -> None:
    with pytest.raises(chunkline.StageNameError) as excinfo:
        pipeline(stages=["parse", "decoder", "serialize"])
    message = str(excinfo.value)
    assert "'decoder'" in message
    for name in DEFAULT_STAGES:
        assert name in message  # says what is registered
    assert isinstance(excinfo.value, ValueError)


def test_duplicate_stage_name_is_a_stage_name_error() -> None:
    with pytest.raises(chunkline.StageNameError, match=r"'decode'.*twice"):
        pipeline(stages=["decode", "finish", "decode"])


def test_stage_spec_with_a_registered_name_counts_as_a_duplicate() -> None:
    spec, _ = recording("decode", None)
    with pytest.raises(chunkline.StageNameError, match="'decode'"):
        pipeline(stages=["decode", spec])


def test_a_single_string_is_not_a_stage_list() -> None:
    with pytest.raises(chunkline.StageNameError):
        pipeline(stages="decode")


def test_stage_name_error_and_option_error_are_value_errors() -> None:
    assert issubclass(chunkline.StageNameError, ValueError)
    assert issubclass(chunkline.OptionError, ValueError)
    assert issubclass(chunkline.StageNameError, chunkline.ChunklineError)
    assert issubclass(chunkline.OptionError, chunkline.ChunklineError)


def test_empty_stage_list_passes_input_through() -> None:
    conversion = pipeline(stages=[]).open()
    item = {"type": "message_stop"}
    assert conversion.feed(item) == [item]
    assert conversion.close() == []


def test_an_item_a_stage_does_not_handle_is_routed_past_it() -> None:
    text_spec, text_seen = recording("text_only", (events.TextDelta,))
    bytes_spec, bytes_seen = recording("bytes_only", (bytes,))
    conversion = pipeline(stages=[text_spec, bytes_spec]).open()
    assert conversion.feed(b"raw") == [b"raw"]
    assert conversion.feed(events.TextDelta(0, "x")) == [events.TextDelta(0, "x")]
    assert text_seen == [events.TextDelta(0, "x")]
    assert bytes_seen == [b"raw"]


def test_input_no_stage_takes_is_a_type_error_naming_the_first_stage() -> None:
    spec, _ = recording("text_only", (events.TextDelta,))
    with pytest.raises(TypeError, match=r"bytes.*'text_only'"):
        pipeline(stages=[spec]).open().feed(b"raw")
    # The default pipeline takes bytes and event dicts, not text: its serializer would eat it.
    with pytest.raises(TypeError, match=r"str.*'parse'"):
        pipeline().open().feed("event: ping\n\n")


# -- default_stage_names and StageSpec.after ---------------------------------------------------


class _StagePlugin:
    """A plugin object that registers the given specs."""

    def __init__(self, name: str, *specs: StageSpec) -> None:
        self.__name__ = name
        self.specs = specs

    @chunkline.hookimpl
    def register_stages(self, register: Any) -> None:
        for spec in self.specs:
            register(spec)


def test_plugin_stage_with_after_joins_the_default_list_right_after_that_stage() -> None:
    spec, seen = recording("spy", (events.TextDelta,), after="chunker")
    pipe = pipeline(plugins=[_StagePlugin("spy_plugin", spec)])
    expected = ["parse", "decode", "thinking", "tool_calls", "chunker", "spy", "finish", "usage"]
    assert pipe.default_stage_names() == [*expected, "envelope", "serialize"]
    assert pipe.stage_names == tuple(pipe.default_stage_names())
    pipe.convert(sse(text_stream()))
    assert seen == [events.TextDelta(0, "Hello"), events.TextDelta(0, " world")]


def test_plugin_stage_without_after_is_only_used_when_named() -> None:
    spec, _ = recording("spy", None)
    pipe = pipeline(plugins=[_StagePlugin("spy_plugin", spec)])
    assert "spy" not in pipe.stage_names
    assert "spy" not in pipe.default_stage_names()
    named = pipeline(plugins=[_StagePlugin("spy_plugin", spec)], stages=["decode", "spy", "finish"])
    assert list(named.stage_names) == ["decode", "spy", "finish"]


def test_stages_after_the_same_stage_keep_registration_order() -> None:
    first, _ = recording("first", None, after="chunker")
    second, _ = recording("second", None, after="chunker")
    pipe = pipeline(plugins=[_StagePlugin("p1", first), _StagePlugin("p2", second)])
    names = pipe.default_stage_names()
    assert names[names.index("chunker") : names.index("finish")] == ["chunker", "first", "second"]
    swapped = pipeline(plugins=[_StagePlugin("p2", second), _StagePlugin("p1", first)])
    names = swapped.default_stage_names()
    assert names[names.index("chunker") : names.index("finish")] == ["chunker", "second", "first"]


def test_a_stage_can_follow_another_plugin_stage() -> None:
    inner, _ = recording("inner", None, after="decode")
    outer, _ = recording("outer", None, after="inner")
    # Registered in the "wrong" order: placement follows `after`, not registration.
    pipe = pipeline(plugins=[_StagePlugin("p", outer, inner)])
    assert pipe.default_stage_names()[:4] == ["parse", "decode", "inner", "outer"]


def test_a_stage_after_a_stage_not_on_the_route_stays_out_of_the_default_list() -> None:
    spec, _ = recording("lost", None, after="nowhere")
    plugin = _StagePlugin("p", spec)
    assert "lost" not in pipeline(plugins=[plugin]).stage_names
    with pytest.raises(chunkline.StageNameError, match=r"'lost'.*'nowhere'"):
        chunkline.default_stages(plugins=[plugin], load_entrypoints=False).add("lost")
    # An explicit stage list never needs the default placement.
    assert list(pipeline(plugins=[plugin], stages=["decode", "lost"]).stage_names) == ["decode", "lost"]


# -- options -----------------------------------------------------------------------------------


def test_default_option_values() -> None:
    options = pipeline().options
    assert options["thinking"] == "native"  # on OpenAI Chat: delta.reasoning_content
    assert options["input_format"] == "sse"
    assert options["on_error"] == "inband"
    assert options["include_usage"] is False
    assert options["usage"] == "chunk"
    assert options["ping"] == "comment"
    assert options["model"] is None
    assert options["response_id"] is None
    assert options["created"] == CREATED


def test_options_are_read_only() -> None:
    pipe = pipeline()
    with pytest.raises(TypeError):
        pipe.options["thinking"] = "drop"  # type: ignore[index]


def test_options_change_the_output() -> None:
    out = pipeline(model="gpt-x", response_id="resp-1", ping="drop", chunking="chars:2").convert(
        sse(text_stream())
    )
    frames = payloads(out)
    assert {f["model"] for f in frames[:-1]} == {"gpt-x"}
    assert {f["id"] for f in frames[:-1]} == {"resp-1"}
    assert b": ping\n\n" not in out
    assert contents(out) == ["", "He", "ll", "o ", "wo", "rl", "d"]


@pytest.mark.parametrize(
    ("options", "name", "allowed"),
    [
        ({"thinking": "loud"}, "thinking", "'native', 'tags', 'drop', 'reasoning_content', 'reasoning'"),
        ({"input_format": "xml"}, "input_format", "'sse', 'jsonl'"),
        ({"on_error": "ignore"}, "on_error", "'inband', 'raise'"),
        ({"ping": "loud"}, "ping", "'comment', 'drop'"),
        ({"usage": "everywhere"}, "usage", "'chunk', 'final'"),
        ({"include_usage": "yes"}, "include_usage", "True or False"),
        ({"include_usage": 1}, "include_usage", "True or False"),
        ({"max_event_bytes": 10}, "max_event_bytes", "1024"),
        ({"max_event_bytes": True}, "max_event_bytes", "1024"),
        ({"max_event_bytes": "big"}, "max_event_bytes", "1024"),
        ({"created": -1}, "created", "int"),
        ({"created": True}, "created", "int"),
        ({"created": 1.5}, "created", "int"),
        ({"model": ""}, "model", "non-empty string"),
        ({"model": 5}, "model", "non-empty string"),
        ({"response_id": b"id"}, "response_id", "non-empty string"),
        ({"finish_reasons": {"end_turn": "done"}}, "finish_reasons", "content_filter"),
        ({"finish_reasons": ["stop"]}, "finish_reasons", "dict"),
        ({"chunking": "bogus"}, "chunking", "passthrough"),
        ({"chunking": "words:x"}, "chunking", "at least 1"),
        ({"chunking": "words:0"}, "chunking", "at least 1"),
        ({"chunking": "passthrough:3"}, "chunking", "no argument"),
        ({"chunking": 3}, "chunking", "passthrough"),
        ({"chunking": ""}, "chunking", "passthrough"),
    ],
)
def test_bad_option_value_is_an_option_error(options: dict[str, Any], name: str, allowed: str) -> None:
    with pytest.raises(chunkline.OptionError) as excinfo:
        pipeline(**options)
    message = str(excinfo.value)
    assert name in message
    assert allowed in message
    assert repr(next(iter(options.values())))[:20] in message or name == "finish_reasons"


def test_good_option_values_are_accepted() -> None:
    pipe = pipeline(
        thinking="tags",
        input_format="jsonl",
        on_error="raise",
        ping="drop",
        usage="final",
        include_usage=True,
        max_event_bytes=1024,
        model="m",
        response_id="r",
        finish_reasons={"refusal": "stop"},
        chunking="words:2",
    )
    assert pipe.options["finish_reasons"] == {"refusal": "stop"}  # overrides; the rest stands
    assert pipe.options["max_event_bytes"] == 1024


def test_unknown_option_is_an_option_error_listing_the_known_ones() -> None:
    with pytest.raises(chunkline.OptionError) as excinfo:
        pipeline(colour="blue")
    message = str(excinfo.value)
    assert "'colour'" in message
    assert "unknown option" in message
    for known in ("thinking", "chunking", "on_error", "include_usage", "ping", "model"):
        assert known in message


def test_several_unknown_options_are_all_named() -> None:
    with pytest.raises(chunkline.OptionError) as excinfo:
        pipeline(colour="blue", flavour="mint")
    assert "'colour'" in str(excinfo.value)
    assert "'flavour'" in str(excinfo.value)


def test_option_of_a_stage_not_in_the_stage_list_says_so() -> None:
    with pytest.raises(chunkline.OptionError) as excinfo:
        pipeline(stages=["decode", "finish"], ping="drop")
    message = str(excinfo.value)
    assert "'ping'" in message
    assert "'serialize'" in message
    assert "not in this pipeline's stage list" in message


def test_options_are_checked_only_for_the_stages_in_the_list() -> None:
    # A bad value for an option of a stage left out is still rejected: the option is not this
    # pipeline's at all.
    with pytest.raises(chunkline.OptionError, match="'thinking'"):
        pipeline(stages=["decode", "finish"], thinking="drop")
    assert pipeline(stages=["decode", "finish"], on_error="raise").options == {
        "max_content_blocks": 10_000,
        "finish_reasons": pipeline().options["finish_reasons"],
        "on_error": "raise",
    }


def test_plugin_stage_options_are_checked_and_normalised_once() -> None:
    calls: list[Any] = []
    made: list[dict[str, Any]] = []

    def check(value: Any, registry: Any) -> Any:
        calls.append(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"must be a positive int, not {value!r}")
        return value * 10

    class Repeat(Stage):
        handles = (events.TextDelta,)

        def __init__(self, options: Any) -> None:
            made.append(dict(options))
            self.times = options["repeat"] // 10

        def feed(self, item: Any) -> None:
            self.emit(events.TextDelta(item.part, item.text * self.times))

    option = chunkline.Option("repeat", 1, "How often to repeat text.", check, allowed="a positive int")
    spec = StageSpec("repeat", Repeat, options=(option,), after="chunker")
    plugin = _StagePlugin("repeat_plugin", spec)

    pipe = pipeline(plugins=[plugin], repeat=2)
    assert pipe.options["repeat"] == 20
    assert calls == [2]
    built = len(made)
    for _ in range(3):
        conversion = pipe.open()
        out = [*conversion.feed(sse(text_stream())), *conversion.close()]
        assert contents(out) == ["", "HelloHello", " world world"]
    assert calls == [2]  # never re-checked per conversion
    assert len(made) == built + 3  # one stage per conversion
    assert all(m["repeat"] == 20 for m in made)

    assert pipeline(plugins=[plugin]).options["repeat"] == 10  # the default, checked too
    with pytest.raises(chunkline.OptionError) as excinfo:
        pipeline(plugins=[plugin], repeat=0)
    assert "'repeat'" in str(excinfo.value)
    assert "positive int" in str(excinfo.value)
    assert "'repeat'" in str(excinfo.value)


def test_two_stages_declaring_one_option_is_a_plugin_error() -> None:
    spec, _ = recording("thief", None)
    stolen = StageSpec(
        "thief", spec.factory, options=(chunkline.Option.boolean("include_usage", False, "Mine too."),)
    )
    with pytest.raises(chunkline.PluginError, match="include_usage"):
        pipeline(plugins=[_StagePlugin("thief_plugin", stolen)], stages=[*DEFAULT_STAGES, "thief"])


def test_describe_options_lists_every_option_with_its_stage() -> None:
    rows = pipeline().describe_options()
    by_name = {row[0]: row for row in rows}
    assert by_name["thinking"][1:3] == ("thinking", "native")
    assert by_name["ping"][1] == "serialize"
    assert "'comment'" in by_name["ping"][3]
    assert all(row[4] for row in rows)  # every option has help text
    assert set(by_name) == set(pipeline().options)


def test_a_stage_factory_that_fails_at_build_is_a_plugin_error() -> None:
    def broken(options: Any) -> Stage:
        raise RuntimeError("no")

    with pytest.raises(chunkline.PluginError, match="'broken'"):
        pipeline(stages=[StageSpec("broken", broken)])


# -- input that is already decoded -------------------------------------------------------------


def sdk_events() -> list[Any]:
    """A thinking + text + tool-use answer, as anthropic SDK event objects."""
    return [
        RawMessageStartEvent(
            type="message_start",
            message=Message(
                id="msg_sdk",
                type="message",
                role="assistant",
                model="claude-sdk",
                content=[],
                stop_reason=None,
                stop_sequence=None,
                usage=Usage(input_tokens=12, output_tokens=1),
            ),
        ),
        RawContentBlockStartEvent(
            type="content_block_start",
            index=0,
            content_block=ThinkingBlock(type="thinking", thinking="", signature=""),
        ),
        RawContentBlockDeltaEvent(
            type="content_block_delta",
            index=0,
            delta=SDKThinkingDelta(type="thinking_delta", thinking="Let me think."),
        ),
        RawContentBlockDeltaEvent(
            type="content_block_delta", index=0, delta=SignatureDelta(type="signature_delta", signature="sig")
        ),
        RawContentBlockStopEvent(type="content_block_stop", index=0),
        RawContentBlockStartEvent(
            type="content_block_start", index=1, content_block=TextBlock(type="text", text="")
        ),
        RawContentBlockDeltaEvent(
            type="content_block_delta", index=1, delta=SDKTextDelta(type="text_delta", text="Héllo")
        ),
        RawContentBlockDeltaEvent(
            type="content_block_delta", index=1, delta=SDKTextDelta(type="text_delta", text=" 👋")
        ),
        RawContentBlockStopEvent(type="content_block_stop", index=1),
        RawContentBlockStartEvent(
            type="content_block_start",
            index=2,
            content_block=ToolUseBlock(type="tool_use", id="toolu_1", name="get_weather", input={}),
        ),
        RawContentBlockDeltaEvent(
            type="content_block_delta",
            index=2,
            delta=InputJSONDelta(type="input_json_delta", partial_json='{"city": '),
        ),
        RawContentBlockDeltaEvent(
            type="content_block_delta",
            index=2,
            delta=InputJSONDelta(type="input_json_delta", partial_json='"Paris"}'),
        ),
        RawContentBlockStopEvent(type="content_block_stop", index=2),
        RawMessageDeltaEvent(
            type="message_delta",
            delta={"stop_reason": "tool_use", "stop_sequence": None},
            usage=MessageDeltaUsage(output_tokens=30),
        ),
        RawMessageStopEvent(type="message_stop"),
    ]


def sdk_sse(sdk: list[Any]) -> bytes:
    return b"".join(
        b"event: " + e.type.encode() + b"\ndata: " + e.to_json(indent=None).encode() + b"\n\n" for e in sdk
    )


OPTIONS = {"include_usage": True, "ping": "drop"}


def test_sdk_event_dicts_through_a_pipeline_starting_at_decode() -> None:
    sdk = sdk_events()
    reference = pipeline(**OPTIONS).convert(sdk_sse(sdk))
    from_decode = pipeline(stages=DEFAULT_STAGES[1:], **OPTIONS)
    assert list(from_decode.stage_names) == list(DEFAULT_STAGES[1:])
    conversion = from_decode.open()
    out = [o for event in sdk for o in conversion.feed(event.model_dump())] + conversion.close()
    assert out == reference

    frames = payloads(out)
    assert frames[-1] == "[DONE]"
    deltas = [f["choices"][0]["delta"] for f in frames[:-1] if f["choices"]]
    assert {"reasoning_content": "Let me think."} in deltas
    assert contents(out) == ["", "Héllo", " 👋"]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0]["id"] == "toolu_1"
    assert calls[0]["function"]["name"] == "get_weather"
    assert "".join(c["function"]["arguments"] for c in calls) == '{"city": "Paris"}'
    assert [f["choices"][0]["finish_reason"] for f in frames[:-1] if f["choices"]][-1] == "tool_calls"
    assert frames[-2]["choices"] == []
    assert frames[-2]["usage"]["prompt_tokens"] == 12
    assert frames[-2]["usage"]["completion_tokens"] == 30


def test_the_default_pipeline_accepts_decoded_dicts_too() -> None:
    sdk = sdk_events()
    reference = pipeline(**OPTIONS).convert(sdk_sse(sdk))
    conversion = pipeline(**OPTIONS).open()
    out = [o for event in sdk for o in conversion.feed(event.model_dump())] + conversion.close()
    assert out == reference


def test_json_mode_dicts_give_the_same_output() -> None:
    sdk = sdk_events()
    conversion = pipeline(stages=DEFAULT_STAGES[1:], **OPTIONS).open()
    out = [o for e in sdk for o in conversion.feed(e.model_dump(mode="json"))] + conversion.close()
    assert out == pipeline(**OPTIONS).convert(sdk_sse(sdk))


def test_events_parsed_by_the_anthropic_client_from_a_recorded_stream() -> None:
    """A real anthropic client reads the recorded stream (through a mock transport, no network);
    the events it yields, fed as dicts, convert exactly as the raw bytes do."""
    try:
        import httpx2 as httpx  # what newer anthropic SDKs build on
    except ImportError:
        import httpx  # type: ignore[no-redef]
    recorded = sdk_sse(sdk_events())

    def handler(request: Any) -> Any:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=recorded)

    client = anthropic.Anthropic(
        api_key="test-key", http_client=httpx.Client(transport=httpx.MockTransport(handler)), max_retries=0
    )
    stream = client.messages.create(
        model="claude-sdk", max_tokens=64, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    conversion = pipeline(stages=DEFAULT_STAGES[1:], **OPTIONS).open()
    out = []
    with stream:
        for event in stream:
            assert isinstance(event, anthropic.BaseModel)
            out += conversion.feed(event.model_dump())
    out += conversion.close()
    assert out == pipeline(**OPTIONS).convert(recorded)


def test_a_stage_list_starting_after_decode_takes_neutral_events() -> None:
    typed = [
        events.ResponseStart("msg_t", "claude-t"),
        events.TextStart(0),
        events.TextDelta(0, "typed"),
        events.TextEnd(0),
        events.Finish("length", "max_tokens"),
    ]
    conversion = pipeline(stages=DEFAULT_STAGES[2:]).open()
    out = [o for item in typed for o in conversion.feed(item)] + conversion.close()
    frames = payloads(out)
    assert contents(out) == ["", "typed"]
    assert frames[-2]["choices"][0]["finish_reason"] == "length"
    assert frames[-1] == "[DONE]"


def test_a_protocol_error_in_decoded_dicts_is_reported_in_band() -> None:
    conversion = pipeline(stages=DEFAULT_STAGES[1:]).open()
    out = conversion.feed(RawMessageStopEvent(type="message_stop").model_dump())
    frames = payloads(out)
    assert frames[0]["error"]["type"] == "invalid_upstream_response"
    assert frames[-1] == "[DONE]"
    assert conversion.feed({"type": "ping"}) == []


# -- conversions -------------------------------------------------------------------------------


def test_interleaved_conversions_are_independent() -> None:
    pipe = pipeline(chunking="words:1", include_usage=True)
    data_a = sse(text_stream("msg_a", ("one two", " three")))
    data_b = sse(text_stream("msg_b", ("uno", " dos tres", " cuatro")))
    expected_a, expected_b = pipe.convert(data_a), pipe.convert(data_b)

    a, b = pipe.open(), pipe.open()
    out_a: list[Any] = []
    out_b: list[Any] = []
    pieces_a, pieces_b = list(pieces(data_a, 7)), list(pieces(data_b, 5))
    for i in range(max(len(pieces_a), len(pieces_b))):
        if i < len(pieces_b):
            out_b += b.feed(pieces_b[i])
        if i < len(pieces_a):
            out_a += a.feed(pieces_a[i])
    out_b += b.close()
    out_a += a.close()
    assert out_a == expected_a
    assert out_b == expected_b
    assert {f["id"] for f in payloads(out_a)[:-1]} == {"chatcmpl-msg_a"}


def test_a_conversion_left_open_does_not_affect_the_next() -> None:
    pipe = pipeline()
    data = sse(text_stream())
    abandoned = pipe.open()
    abandoned.feed(data[: len(data) // 2])
    assert pipe.convert(data) == pipeline().convert(data)


def test_open_makes_new_stages_without_rechecking_options() -> None:
    checks: list[Any] = []
    option = chunkline.Option("spy_option", "x", "A spy.", lambda v, r: checks.append(v) or v)
    made: list[Stage] = []

    def factory(options: Any) -> Stage:
        stage = Recorder([])
        made.append(stage)
        return stage

    pipe = pipeline(stages=[StageSpec("spy", factory, options=(option,))])
    assert checks == ["x"]
    built = len(made)
    first, second = pipe.open(), pipe.open()
    assert first is not second
    assert len(made) == built + 2
    assert made[-1] is not made[-2]
    assert checks == ["x"]


def test_open_overrides_per_conversion_options_for_that_response_only() -> None:
    pipe = pipeline(model="shared-model")
    data = sse(text_stream())
    conversion = pipe.open(model="own-model", response_id="resp-own", created=5)
    own = payloads(conversion.feed(data) + conversion.close())
    assert {(f["model"], f["id"], f["created"]) for f in own[:-1]} == {("own-model", "resp-own", 5)}
    assert {(f["model"], f["created"]) for f in payloads(pipe.convert(data))[:-1]} == {
        ("shared-model", CREATED)
    }
    assert pipe.options["model"] == "shared-model"
    assert {f["model"] for f in payloads(pipe.convert(data, model="via-convert"))[:-1]} == {"via-convert"}


def test_open_rejects_options_that_are_not_per_conversion() -> None:
    pipe = pipeline()
    with pytest.raises(chunkline.OptionError) as excinfo:
        pipe.open(thinking="drop")
    message = str(excinfo.value)
    assert "'thinking'" in message
    for allowed in ("created", "model", "response_id"):
        assert allowed in message
    with pytest.raises(chunkline.OptionError, match="'colour'"):
        pipe.open(colour="blue")
    with pytest.raises(chunkline.OptionError, match="'model'"):
        pipe.open(model="")
    with pytest.raises(chunkline.OptionError, match="'created'"):
        pipe.open(created=-5)


def test_feed_after_close_is_an_error_and_close_twice_is_harmless() -> None:
    conversion = pipeline().open()
    conversion.feed(sse(text_stream()))
    conversion.close()
    assert conversion.close() == []
    with pytest.raises(chunkline.ChunklineError):
        conversion.feed(b"more")


def test_input_after_the_stream_finished_is_ignored() -> None:
    conversion = pipeline().open()
    conversion.feed(sse(text_stream()))
    assert conversion.finished
    assert conversion.feed(sse(text_stream("msg_2"))) == []
    assert conversion.close() == []


# -- a stage that fails ------------------------------------------------------------------------


class Boom(Stage):
    """Raises an unexpected exception on the text "bad" (or, with ``on_close``, when closed)."""

    handles = (events.TextDelta,)

    def __init__(self, on_close: bool = False) -> None:
        self.on_close = on_close

    def feed(self, item: Any) -> None:
        if item.text == "bad":
            raise RuntimeError("kaboom")
        self.emit(item)

    def close(self) -> None:
        if self.on_close:
            raise KeyError("close-kaboom")


def with_boom(on_close: bool = False) -> list[str | StageSpec]:
    spec = StageSpec("boom", lambda options: Boom(on_close))
    return [*DEFAULT_STAGES[:5], spec, *DEFAULT_STAGES[5:]]


def test_a_failing_stage_ends_the_stream_with_one_internal_error() -> None:
    data = sse(text_stream(texts=("ok", "bad", "never")))
    conversion = pipeline(stages=with_boom()).open()
    out = conversion.feed(data)
    frames = payloads(out)
    assert contents(out) == ["", "ok"]
    assert frames[-1] == "[DONE]"
    errors = [f for f in frames if isinstance(f, dict) and "error" in f]
    assert len(errors) == 1
    assert frames[-2] is errors[0]
    error = errors[0]["error"]
    assert error["type"] == "internal_error"
    assert "'boom'" in error["message"]
    assert "RuntimeError" in error["message"]
    assert "kaboom" in error["message"]
    assert not any(f["choices"][0]["finish_reason"] for f in frames if isinstance(f, dict) and "choices" in f)
    assert conversion.finished
    assert conversion.feed(b"event: ping\ndata: {}\n\n") == []
    assert conversion.close() == []


def test_a_failing_stage_fed_byte_by_byte_gives_the_same_output() -> None:
    data = sse(text_stream(texts=("ok", "bad", "never")))
    pipe = pipeline(stages=with_boom())
    conversion = pipe.open()
    out = [o for piece in pieces(data, 1) for o in conversion.feed(piece)] + conversion.close()
    assert out == pipe.convert(data)


def test_a_truncated_stream_with_a_stage_failing_in_close_ends_with_one_error() -> None:
    # The decoder closes first and reports the truncation, which ends the stream: the cause a
    # client needs, and the failing stage's close never runs.
    data = sse(text_stream(texts=("ok",))[:-1])  # no message_stop: the stages get closed
    out = pipeline(stages=with_boom(on_close=True)).convert(data)
    frames = payloads(out)
    errors = [f["error"] for f in frames if isinstance(f, dict) and "error" in f]
    assert [e["type"] for e in errors] == ["upstream_truncated"]
    assert frames[-1] == "[DONE]"


def test_a_stage_failing_in_close_ends_the_stream_with_one_internal_error() -> None:
    stages = [name for name in with_boom(on_close=True) if name not in ("parse", "decode")]
    conversion = pipeline(stages=stages).open()
    out = conversion.feed(events.ResponseStart("m", "c")) + conversion.close()
    errors = [f["error"] for f in payloads(out) if isinstance(f, dict) and "error" in f]
    assert [e["type"] for e in errors] == ["internal_error"]
    assert "'boom'" in errors[0]["message"]


def test_a_failing_stage_raises_internal_stage_error_with_on_error_raise() -> None:
    data = sse(text_stream(texts=("ok", "bad", "never")))
    conversion = pipeline(stages=with_boom(), on_error="raise").open()
    with pytest.raises(chunkline.InternalStageError) as excinfo:
        conversion.feed(data)
    error = excinfo.value
    assert isinstance(error, chunkline.StreamError)
    assert error.type == "internal_error"
    assert "'boom'" in str(error)
    assert isinstance(error.__cause__, RuntimeError)
    assert contents(error.output) == ["", "ok"]
    assert b"data: [DONE]\n\n" not in error.output
    assert conversion.finished


# -- routing -----------------------------------------------------------------------------------


def test_a_stage_sees_only_the_types_it_handles() -> None:
    spec, seen = recording("spy", (events.TextDelta,), after="chunker")
    plugin = _StagePlugin("spy_plugin", spec)
    sdk = sdk_events()
    out = pipeline(plugins=[plugin], **OPTIONS).convert(sdk_sse(sdk))
    assert seen == [events.TextDelta(1, "Héllo"), events.TextDelta(1, " 👋")]
    # ...and routing past it changes nothing else.
    assert out == pipeline(**OPTIONS).convert(sdk_sse(sdk))


def test_a_stage_handling_none_sees_everything_after_its_place() -> None:
    spec, seen = recording("spy", None)
    pipe = pipeline(stages=[*DEFAULT_STAGES[:2], spec, *DEFAULT_STAGES[2:]])
    pipe.convert(sse(text_stream()))
    assert {type(item) for item in seen} >= {
        events.ResponseStart,
        events.TextStart,
        events.TextDelta,
        events.TextEnd,
        events.Ping,
        events.UsageUpdate,
        events.Finish,
    }


class Upper(Stage):
    handles = (events.TextDelta,)
    emits = (events.TextDelta,)

    def feed(self, item: Any) -> None:
        self.emit(events.TextDelta(item.part, item.text.upper()))


class UpperUndeclared(Upper):
    emits = None


class UpperAndPing(Upper):
    emits = (events.TextDelta, events.Ping)


@pytest.mark.parametrize(("cls", "direct"), [(Upper, True), (UpperUndeclared, False), (UpperAndPing, False)])
def test_a_stage_declaring_emits_is_wired_straight_to_the_next_stage(cls: type[Stage], direct: bool) -> None:
    uppers: list[Stage] = []
    recorders: list[Recorder] = []
    seen: list[Any] = []

    def make_upper(options: Any) -> Stage:
        uppers.append(cls())
        return uppers[-1]

    def make_recorder(options: Any) -> Stage:
        recorders.append(type("TextRecorder", (Recorder,), {"handles": (events.TextDelta,)})(seen))
        return recorders[-1]

    stages = [*DEFAULT_STAGES[:5], StageSpec("upper", make_upper), StageSpec("rec", make_recorder)]
    pipe = pipeline(stages=[*stages, *DEFAULT_STAGES[5:]])
    conversion = pipe.open()
    assert (uppers[-1].emit == recorders[-1].feed) is direct
    out = conversion.feed(sse(text_stream())) + conversion.close()
    assert seen == [events.TextDelta(0, "HELLO"), events.TextDelta(0, " WORLD")]
    assert contents(out) == ["", "HELLO", " WORLD"]


def test_conversion_knows_its_stage_names() -> None:
    pipe = pipeline(stages=["decode", "finish"])
    assert tuple(pipe.open().stage_names) == ("decode", "finish")


# -- pluggy only at assembly -------------------------------------------------------------------


class _CountingPlugin:
    __name__ = "counting_plugin"

    def __init__(self) -> None:
        self.calls = 0

    @chunkline.hookimpl
    def register_stages(self, register: Any) -> None:
        self.calls += 1
        register(StageSpec("upper", lambda options: Upper(), after="chunker"))

    @chunkline.hookimpl
    def register_chunking_policies(self, register: Any) -> None:
        self.calls += 1


def _pluggy_frames() -> tuple[list[str], Any]:
    """A profile function that records every call into pluggy's own code."""
    root = os.path.dirname(pluggy.__file__)
    seen: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_filename.startswith(root):
            seen.append(frame.f_code.co_name)

    return seen, profile


def test_no_pluggy_hook_call_while_converting(monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = _CountingPlugin()
    pipe = pipeline(plugins=[plugin], chunking="words:1", include_usage=True)
    assert plugin.calls == 2  # each registration hook once, at assembly
    data = sse(text_stream(texts=("one two", " three")))
    expected = pipeline(plugins=[_CountingPlugin()], chunking="words:1", include_usage=True).convert(data)

    hook_calls: list[str] = []
    for method in ("__call__", "call_historic", "call_extra"):
        original = getattr(pluggy.HookCaller, method)

        def counting(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            hook_calls.append(self.name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(pluggy.HookCaller, method, counting)
    original_exec = pluggy.PluginManager._hookexec

    def counting_exec(self: Any, hook_name: str, *args: Any, **kwargs: Any) -> Any:
        hook_calls.append(hook_name)
        return original_exec(self, hook_name, *args, **kwargs)

    monkeypatch.setattr(pluggy.PluginManager, "_hookexec", counting_exec)

    frames, profile = _pluggy_frames()
    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        pipe.open(model="per-conversion")
        conversion = pipe.open()
        opened = list(frames)
        out = [o for piece in pieces(data, 3) for o in conversion.feed(piece)] + conversion.close()
    finally:
        sys.setprofile(previous)

    assert opened == []
    assert frames == []
    assert hook_calls == []
    assert plugin.calls == 2
    assert out == expected
    assert contents(out) == ["", "ONE", " TWO", " THREE"]

    # The counters are live: a hook call through pluggy is seen.
    pm, _ = chunkline.plugins.make_plugin_manager(load_entrypoints=False)
    pm.hook.register_chunking_policies(register=lambda spec, replace=False: None)
    assert "register_chunking_policies" in hook_calls


def test_the_hook_counter_does_see_assembly(monkeypatch: pytest.MonkeyPatch) -> None:
    """The profile hook above is not blind: building a pipeline does run pluggy code."""
    frames, profile = _pluggy_frames()
    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        pipeline()
    finally:
        sys.setprofile(previous)
    assert frames


# -- the package -------------------------------------------------------------------------------


def test_all_lists_every_public_name_and_each_exists() -> None:
    assert len(chunkline.__all__) == len(set(chunkline.__all__))
    for name in chunkline.__all__:
        assert hasattr(chunkline, name), name
    # Everything importable from the package that is not a submodule is listed.
    public = {
        name
        for name, value in vars(chunkline).items()
        if not name.startswith("_") and not isinstance(value, type(sys)) and name != "annotations"
    }
    assert public <= set(chunkline.__all__)
    for name in (
        "Pipeline",
        "Conversion",
        "Stage",
        "StageSpec",
        "ChunkPolicySpec",
        "Option",
        "hookimpl",
        "events",
        "OptionError",
        "StageNameError",
        "PluginError",
        "InternalStageError",
        "StreamError",
        "DEFAULT_STAGES",
    ):
        assert name in chunkline.__all__


def test_events_module_all_lists_its_events() -> None:
    for name in events.__all__:
        value = getattr(events, name)
        assert isinstance(value, type) or name == "FINISH_REASONS"
        if isinstance(value, type):
            assert value.__doc__ and value.__slots__ is not None, name


def test_py_typed_ships() -> None:
    assert importlib.resources.files("chunkline").joinpath("py.typed").is_file()


def test_a_stage_that_asks_another_conversion_for_its_route_gets_a_clear_error() -> None:
    pipeline = Pipeline()
    stage = pipeline.open()._targets[0]
    other = pipeline.open()
    with pytest.raises(chunkline.ChunklineError, match="not one of the conversion's stages"):
        other.route(stage, events.TextDelta)
