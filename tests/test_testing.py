"""chunkline.testing: the stream builder, runners, assertions, client readers and the pytest plugin."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path
from typing import Any

import openai
import pytest

import chunkline
from chunkline import InternalStageError, OptionError, Pipeline, Stage, StageSpec, UpstreamTruncated
from chunkline.events import (
    ErrorEvent,
    ReasoningDelta,
    ResponseStart,
    TextDelta,
    TextEnd,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)
from chunkline.testing import (
    AnthropicStream,
    anthropic_stream,
    assert_lossless,
    assert_split_invariant,
    assert_stage_split_invariant,
    coalesce,
    decode_events,
    feed_bytewise,
    feed_pieces,
    load_recording,
    open_stage,
    random_pieces,
    read_openai_stream,
    read_with_openai_sdk,
    recording_events,
    resplit,
    run_pipeline,
    run_stage,
    stage_pipeline,
)
from harness import ANTHROPIC_FIXTURES, anthropic_final_message

ROOT = Path(__file__).resolve().parent.parent


def pipeline(**options: Any) -> Pipeline:
    options.setdefault("created", 0)
    return Pipeline(load_entrypoints=False, **options)


# -- building streams --------------------------------------------------------------------------


def test_the_builder_writes_a_stream_the_anthropic_sdk_reads_back() -> None:
    stream = (
        AnthropicStream(model="claude-x", message_id="msg_1", input_tokens=42)
        .thinking("Let me ", "check.")
        .text("The weather ", "in Paris: ")
        .tool_use("get_weather", '{"city": ', '"Paris"}', id="toolu_a")
        .tool_use("noop")
        .stop()
    )
    message = anthropic_final_message(stream.sse())
    assert message.id == "msg_1"
    assert message.model == "claude-x"
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert message.content[0].thinking == "Let me check."
    assert message.content[1].text == "The weather in Paris: "
    assert message.content[2].id == "toolu_a"
    assert message.content[2].input == {"city": "Paris"}
    assert message.content[3].input == {}
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 42


def test_the_builder_numbers_blocks_and_names_every_event() -> None:
    stream = AnthropicStream().text("a").tool_use("f", "{}").stop("max_tokens", output_tokens=7)
    events = stream.events()
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert [e.get("index") for e in events if "index" in e] == [0, 0, 0, 1, 1, 1]
    assert events[7]["delta"]["stop_reason"] == "max_tokens"
    assert events[7]["usage"] == {"output_tokens": 7}
    frames = stream.sse().split(b"\n\n")[:-1]
    assert len(frames) == len(events)
    for frame, event in zip(frames, events, strict=True):
        name, data = frame.split(b"\n")
        assert name == b"event: " + event["type"].encode()
        assert json.loads(data.removeprefix(b"data: ")) == event
    lines = stream.jsonl().splitlines()
    assert [json.loads(line) for line in lines] == events


def test_the_builder_stops_with_end_turn_without_tool_calls_and_can_end_in_an_error() -> None:
    assert AnthropicStream().text("hi").stop().events()[-2]["delta"]["stop_reason"] == "end_turn"
    events = AnthropicStream().text("hi").error("overloaded_error", "busy").events()
    assert events[-1] == {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    with pytest.raises(ValueError, match="already ended"):
        AnthropicStream().stop().text("more")


def test_an_unfinished_builder_is_a_truncated_stream() -> None:
    data = AnthropicStream().text("Hello").sse()
    message = read_openai_stream(pipeline().convert(data))
    assert message.content == "Hello"
    assert message.error is not None
    assert message.error["type"] == "upstream_truncated"
    assert message.finish_reason is None


def test_anthropic_stream_in_one_call() -> None:
    data = anthropic_stream(
        "Hello, ", "world", thinking=["hmm"], tool_calls=[("f", ['{"a":', "1}"]), ("g", "{}")]
    )
    message = read_openai_stream(pipeline().convert(data))
    assert message.content == "Hello, world"
    assert message.reasoning == "hmm"
    assert [(c.name, c.arguments) for c in message.tool_calls] == [("f", '{"a":1}'), ("g", "{}")]
    assert message.finish_reason == "tool_calls"
    assert message.done


def test_non_ascii_text_round_trips() -> None:
    text = "Grüße 👋🏽 — 日本"
    message = read_openai_stream(feed_bytewise(pipeline(), anthropic_stream(text)))
    assert message.content == text


# -- recordings ----------------------------------------------------------------------------------


def test_load_recording_frames_jsonl_as_named_sse_events() -> None:
    jsonl = ANTHROPIC_FIXTURES / "vercel_text.jsonl"
    sse = load_recording(jsonl)
    events = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    assert recording_events(sse) == events
    assert sse.startswith(b"event: " + events[0]["type"].encode() + b"\ndata: ")
    assert pipeline().convert(sse) == pipeline(input_format="jsonl").convert(jsonl.read_bytes())


def test_load_recording_returns_sse_files_as_they_are() -> None:
    path = ANTHROPIC_FIXTURES / "llm_minimal_text.sse"
    assert load_recording(path) == path.read_bytes()
    assert recording_events(path)[0]["type"] == "message_start"


def test_a_bad_recording_says_where(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "ping"}\n\nnot json\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:3: not a JSON event"):
        load_recording(bad)
    bad.write_text('["a list"]\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: an event must be a JSON object"):
        load_recording(bad)
    with pytest.raises(ValueError, match="malformed JSON"):
        recording_events(b"event: ping\ndata: {oops\n\n")


# -- running -------------------------------------------------------------------------------------


def test_run_pipeline_gives_the_same_output_for_any_chunk_size() -> None:
    data = load_recording(ANTHROPIC_FIXTURES / "otel_text_then_parallel_tool_use_args.sse")
    whole = run_pipeline(pipeline(), data)
    assert whole == pipeline().convert(data)
    for size in (1, 2, 7, 100, 4096):
        assert run_pipeline(pipeline(), data, chunk_size=size) == whole
    assert feed_bytewise(pipeline(), data) == whole
    assert run_pipeline(pipeline(), recording_events(data)) == whole
    with pytest.raises(ValueError, match="at least 1"):
        run_pipeline(pipeline(), data, chunk_size=0)
    with pytest.raises(ValueError, match="applies to bytes"):
        run_pipeline(pipeline(), [{}], chunk_size=3)


def test_feed_pieces_keeps_everything_before_a_raised_fault() -> None:
    data = AnthropicStream().text("Hello", " there").sse()
    with pytest.raises(UpstreamTruncated) as caught:
        feed_pieces(pipeline(on_error="raise"), random_pieces(data, 3, max_size=10))
    assert read_openai_stream(caught.value.output).content == "Hello there"


def test_random_pieces_are_reproducible_and_join_back() -> None:
    data = bytes(range(256)) * 3
    first = random_pieces(data, 7, max_size=20)
    assert first == random_pieces(data, 7, max_size=20)
    assert b"".join(first) == data
    assert all(1 <= len(piece) <= 20 for piece in first)
    assert first != random_pieces(data, 8, max_size=20)


def test_decode_events_gives_what_the_stages_after_decode_see() -> None:
    events = decode_events(AnthropicStream().text("Hi").tool_use("f", '{"x"', ":1}").stop().sse())
    assert events[0] == ResponseStart("msg_test", "claude-test")
    assert TextDelta(0, "Hi") in events
    assert ToolCallStart(1, "toolu_00", "f") in events
    assert [e for e in events if isinstance(e, ToolCallDelta)] == [
        ToolCallDelta(1, '{"x"'),
        ToolCallDelta(1, ":1}"),
    ]


def test_run_stage_runs_one_stage_and_routes_everything_else_past_it() -> None:
    events = [
        ToolCallStart(0, "toolu_1", "f"),
        TextDelta(1, "passes by"),
        ToolCallEnd(0),
        ToolCallStart(2, "toolu_2", "g"),
        ToolCallDelta(2, '{"a":'),
        ToolCallDelta(2, "1}"),
        ToolCallEnd(2),
    ]
    assert run_stage("tool_calls", events, load_entrypoints=False) == [
        ToolCallStart(0, "toolu_1", "f"),
        TextDelta(1, "passes by"),
        ToolCallDelta(0, "{}"),
        ToolCallEnd(0),
        ToolCallStart(2, "toolu_2", "g"),
        ToolCallDelta(2, '{"a":'),
        ToolCallDelta(2, "1}"),
        ToolCallEnd(2),
    ]


def test_run_stage_checks_options_like_a_pipeline() -> None:
    events = [ToolCallStart(0, "t", "f"), ToolCallDelta(0, "x" * 20)]
    out = run_stage("tool_calls", events, load_entrypoints=False, max_tool_argument_bytes=10)
    assert out[-1].__class__ is ErrorEvent
    assert out[-1].type == "limit_exceeded"
    with pytest.raises(OptionError, match="max_tool_argument_bytes"):
        run_stage("tool_calls", events, load_entrypoints=False, max_tool_argument_bytes=0)
    with pytest.raises(chunkline.StageNameError, match="unknown stage 'nope'"):
        run_stage("nope", events, load_entrypoints=False)


class _Holds(Stage):
    """Holds text until close; fails on a text delta saying "boom"."""

    __slots__ = ("held",)
    handles = (TextDelta,)

    def __init__(self) -> None:
        self.held = ""

    def feed(self, item: TextDelta) -> None:
        if item.text == "boom":
            raise KeyError("boom")
        self.held += item.text

    def close(self) -> None:
        if self.held == "fail at close":
            raise RuntimeError("failed at close")
        self.emit(TextDelta(0, self.held))


HOLDS = StageSpec("holds", lambda options: _Holds())


def test_open_stage_shows_what_a_stage_holds_between_feeds() -> None:
    run = open_stage(HOLDS, load_entrypoints=False)
    assert run.feed(TextDelta(0, "a")) == []
    assert run.feed(TextEnd(0)) == [TextEnd(0)]
    assert run.feed(TextDelta(0, "b")) == []
    assert isinstance(run.stage, _Holds)
    assert run.stage.held == "ab"
    assert run.close() == [TextDelta(0, "ab")]


class _Weak(Stage):
    """A stage without ``__slots__``, so that a weak reference can watch it go."""

    handles = (TextDelta,)


def test_a_stage_pipeline_keeps_no_earlier_runs_stage_alive() -> None:
    opener = stage_pipeline(StageSpec("weak", lambda options: _Weak()), load_entrypoints=False)
    first = opener()
    watched = weakref.ref(first.stage)
    assert first.feed(TextDelta(0, "a")) == [TextDelta(0, "a")]
    del first
    second = opener()
    gc.collect()
    assert watched() is None
    assert isinstance(second.stage, _Weak) and second.close() == []


def test_a_stage_that_raises_makes_the_run_raise_with_its_exception_as_the_cause() -> None:
    with pytest.raises(InternalStageError, match="stage 'holds' failed: KeyError") as caught:
        run_stage(HOLDS, [TextDelta(0, "boom")], load_entrypoints=False)
    assert isinstance(caught.value.__cause__, KeyError)
    with pytest.raises(InternalStageError, match="failed at close") as caught:
        run_stage(HOLDS, [TextDelta(0, "fail at "), TextDelta(0, "close")], load_entrypoints=False)
    assert isinstance(caught.value.__cause__, RuntimeError)
    inband = run_stage(HOLDS, [TextDelta(0, "boom")], load_entrypoints=False, on_error="inband")
    assert inband == [ErrorEvent("internal_error", "stage 'holds' failed: KeyError: 'boom'")]


def test_coalesce_joins_adjacent_deltas_of_the_same_text() -> None:
    items = [
        TextDelta(0, "a"),
        TextDelta(0, ""),
        TextDelta(0, "b"),
        ReasoningDelta(1, "r"),
        ReasoningDelta(1, "s"),
        ReasoningDelta(2, "t"),
        ToolCallDelta(3, "{"),
        ToolCallDelta(3, "}"),
        ToolCallDelta(4, ""),
        TextEnd(0),
        TextDelta(0, "c"),
    ]
    assert coalesce(items) == [
        TextDelta(0, "ab"),
        ReasoningDelta(1, "rs"),
        ReasoningDelta(2, "t"),
        ToolCallDelta(3, "{}"),
        TextEnd(0),
        TextDelta(0, "c"),
    ]
    assert resplit([TextDelta(0, "abc"), ToolCallDelta(1, "{}")], list) == [
        TextDelta(0, "a"),
        TextDelta(0, "b"),
        TextDelta(0, "c"),
        ToolCallDelta(1, "{"),
        ToolCallDelta(1, "}"),
    ]


# -- assertions ----------------------------------------------------------------------------------


def test_assert_split_invariant_passes_for_the_default_pipeline_on_a_recording() -> None:
    data = load_recording(ANTHROPIC_FIXTURES / "llm_thinking_then_tool_use.sse")
    out = assert_split_invariant(Pipeline(load_entrypoints=False), data, random_splits=5, two_way=16)
    assert out == pipeline(created=chunkline.testing.checks.PINNED_CREATED).convert(data)


class _Sizes(Stage):
    """Emits the size of each read: output that depends on how the input is split."""

    __slots__ = ()
    handles = (bytes,)

    def feed(self, item: bytes) -> None:
        self.emit(len(item))


def test_assert_split_invariant_names_the_split_that_changes_the_output() -> None:
    sizes = Pipeline([StageSpec("sizes", lambda options: _Sizes())], load_entrypoints=False)
    with pytest.raises(AssertionError, match="fed byte by byte: output #0: expected 3, got 1"):
        assert_split_invariant(sizes, b"abc")


def test_assert_split_invariant_raises_a_fault_every_split_shares() -> None:
    with pytest.raises(UpstreamTruncated):
        assert_split_invariant(
            Pipeline(load_entrypoints=False, on_error="raise"), AnthropicStream().text("cut").sse()
        )


@pytest.mark.parametrize("policy", ["passthrough", "words:3", "chars:5", "sentences"])
def test_assert_lossless_passes_for_the_builtin_policies(policy: str) -> None:
    texts = ["Hello there. ", "How are", " you?\nFine", "! Thanks… ", "日本語です。", " done"]
    pieces = assert_lossless(policy, texts, load_entrypoints=False)
    assert "".join(pieces) == "".join(texts)


class _DropsSpaces:
    def feed(self, text: str) -> list[str]:
        return [text.replace(" ", "")]

    def flush(self) -> list[str]:
        return []


class _FlushesTwice:
    def __init__(self) -> None:
        self.held = ""

    def feed(self, text: str) -> list[str]:
        self.held += text
        return []

    def flush(self) -> list[str]:
        return [self.held]


class _ReturnsAString:
    def feed(self, text: str) -> Any:
        return text

    def flush(self) -> list[str]:
        return []


def test_assert_lossless_catches_a_lossy_policy() -> None:
    with pytest.raises(AssertionError, match=r"not lossless when fed as given: from character 5"):
        assert_lossless(_DropsSpaces, ["Hello world"])
    with pytest.raises(AssertionError, match="a second flush"):
        assert_lossless(_FlushesTwice, ["abc"])
    with pytest.raises(AssertionError, match="returned 'abc', not a list of str"):
        assert_lossless(_ReturnsAString, ["abc"])
    with pytest.raises(OptionError, match="unknown policy 'nope'"):
        assert_lossless("nope", ["abc"], load_entrypoints=False)


def test_assert_lossless_takes_a_policy_spec() -> None:
    spec = chunkline.ChunkPolicySpec("drops", lambda arg: _DropsSpaces())
    with pytest.raises(AssertionError, match="not lossless"):
        assert_lossless(spec, "a b")


def test_assert_stage_split_invariant_passes_for_tool_calls() -> None:
    events = decode_events(AnthropicStream().text("Hi there").tool_use("f", '{"city": "Paris"}').stop().sse())
    out = assert_stage_split_invariant("tool_calls", events, load_entrypoints=False)
    assert ToolCallStart(1, "toolu_00", "f") in out
    assert ToolCallDelta(1, '{"city": "Paris"}') in out


class _CapitalizesEachDelta(Stage):
    __slots__ = ()
    handles = (TextDelta,)

    def feed(self, item: TextDelta) -> None:
        self.emit(TextDelta(item.part, item.text.capitalize()))


def test_assert_stage_split_invariant_catches_a_stage_that_depends_on_the_cutting() -> None:
    spec = StageSpec("capitalize", lambda options: _CapitalizesEachDelta())
    with pytest.raises(AssertionError, match="one character at a time: output #0"):
        assert_stage_split_invariant(spec, [TextDelta(0, "hello")], load_entrypoints=False)


# -- reading the output back ---------------------------------------------------------------------


def test_read_openai_stream_reports_an_in_band_error_and_checks_framing() -> None:
    out = pipeline().convert(AnthropicStream().text("Hi").error("overloaded_error", "busy").sse())
    message = read_openai_stream(out)
    assert message.content == "Hi"
    assert message.error == {
        "message": "busy",
        "type": "upstream_error",
        "param": None,
        "code": "overloaded_error",
    }
    assert message.done
    with pytest.raises(AssertionError, match="after \\[DONE\\]"):
        read_openai_stream(b"data: [DONE]\n\ndata: {}\n\n")
    with pytest.raises(AssertionError, match="not a single 'data: ' line"):
        read_openai_stream(b"event: x\ndata: {}\n\n")


def test_read_with_openai_sdk_reads_what_the_sdk_accumulates() -> None:
    data = anthropic_stream("Hello", thinking=["hmm"], tool_calls=[("f", '{"a": 1}')])
    out = pipeline(include_usage=True).convert(data)
    plain = read_openai_stream(out)
    sdk = read_with_openai_sdk(out, include_usage=True)
    assert (sdk.content, sdk.reasoning, sdk.finish_reason, sdk.done) == ("Hello", "hmm", "tool_calls", True)
    assert [(c.index, c.id, c.name, c.arguments) for c in sdk.tool_calls] == [
        (0, "toolu_00", "f", '{"a": 1}')
    ]
    assert sdk.usage == plain.usage
    assert sdk.usage is not None and sdk.usage["prompt_tokens"] == 10
    with pytest.raises(openai.APIError, match="busy"):
        read_with_openai_sdk(pipeline().convert(AnthropicStream().text("Hi").error(message="busy").sse()))


# -- the pytest plugin ---------------------------------------------------------------------------


def test_importing_chunkline_testing_is_side_effect_free() -> None:
    code = (
        "import sys, chunkline.testing\n"
        "heavy = [m for m in ('pytest', 'openai', 'httpx', 'httpx2', 'hypothesis') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert 'chunkline.testing.fixtures' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


PLUGIN_USER = """
import chunkline
from chunkline.events import TextDelta


class Lines:
    def __init__(self):
        self.held = ""

    def feed(self, text):
        self.held += text
        cut = self.held.rfind("\\n") + 1
        ready, self.held = self.held[:cut], self.held[cut:]
        return [ready] if ready else []

    def flush(self):
        ready, self.held = self.held, ""
        return [ready] if ready else []


@chunkline.hookimpl
def register_chunking_policies(register):
    register(chunkline.ChunkPolicySpec("lines", lambda arg: Lines()))


def test_fixtures(chunkline_pipeline, anthropic_stream, chunkline_recording):
    import sys
    pipeline = chunkline_pipeline(plugins=[sys.modules[__name__]], chunking="lines", created=0)
    from chunkline.testing import read_openai_stream, assert_split_invariant
    data = anthropic_stream("one\\ntw", "o\\nthree")
    out = assert_split_invariant(pipeline, data, random_splits=3)
    chunks = read_openai_stream(out).chunks
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]] == ["one\\n", "two\\n", "three"]
    assert chunkline_recording("stream.sse") == data
"""


def test_the_pytest_plugin_offers_its_fixtures_to_any_test_session(tmp_path: Path) -> None:
    (tmp_path / "test_uses_fixtures.py").write_text(textwrap.dedent(PLUGIN_USER))
    (tmp_path / "stream.sse").write_bytes(anthropic_stream("one\ntw", "o\nthree"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--trace-config", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "chunkline.testing.fixtures" in result.stdout
