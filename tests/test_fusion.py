"""Stage fusion: when the parser writes text deltas itself, and that the bytes are the same either way."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chunkline
import harness
from chunkline.builtins.decode import Decoder
from chunkline.builtins.envelope import Envelope
from chunkline.builtins.parse import SSEParser
from chunkline.events import Chunk, TextDelta
from chunkline.stage import Stage, StageSpec
from strategies import CREATED, splits

FEW = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TextWatcher(Stage):
    """A third-party stage that takes text deltas and passes them on, counting them."""

    __slots__ = ("seen",)

    handles = (TextDelta,)

    def __init__(self) -> None:
        self.seen = 0

    def feed(self, item: Any) -> None:
        self.seen += 1
        self.emit(item)


class Tap(Stage):
    """A third-party stage that takes everything and passes it on."""

    __slots__ = ()


class SubDecoder(Decoder):
    __slots__ = ()


class SubEnvelope(Envelope):
    __slots__ = ()


class Watcher:
    """A plugin registering the stages ``watch_text`` (`TextWatcher`) and ``tap`` (`Tap`)."""

    @chunkline.hookimpl
    def register_stages(self, register: Any) -> None:
        register(StageSpec("watch_text", lambda options: TextWatcher()))
        register(StageSpec("tap", lambda options: Tap()))


def fused_envelope(pipeline: chunkline.Pipeline, **overrides: Any) -> Any:
    parser = pipeline.open(**overrides)._targets[0]
    assert type(parser) is SSEParser
    return parser._envelope


@cache
def pipeline(**options: Any) -> chunkline.Pipeline:
    return chunkline.Pipeline(created=CREATED, **options)


def convert(options: dict[str, Any], pieces: list[bytes], *, fused: bool) -> tuple[list[bytes], str | None]:
    """The output of one conversion, and the error it raised (``on_error="raise"``), if any."""
    conversion = pipeline(**options).open()
    if not fused:
        conversion._targets[0]._envelope = None
    out: list[bytes] = []
    try:
        for piece in pieces:
            out += conversion.feed(piece)
        out += conversion.close()
    except chunkline.StreamError as exc:
        return out + exc.output, f"{type(exc).__name__}: {exc}"
    return out, None


def test_the_default_route_fuses_text() -> None:
    assert type(fused_envelope(chunkline.Pipeline())) is Envelope
    for options in ({"thinking": "tags"}, {"include_usage": True}, {"on_error": "raise"}):
        assert type(fused_envelope(chunkline.Pipeline(**options))) is Envelope, options
    assert type(fused_envelope(chunkline.Pipeline(), model="m", response_id="r")) is Envelope


def with_stage(name: str, factory: Any) -> list[Any]:
    """The default stage list with stage ``name`` built by ``factory`` (same options)."""
    options = chunkline.Pipeline().registry.stage(name).options
    return [StageSpec(name, factory, options) if s == name else s for s in chunkline.DEFAULT_STAGES]


def watched(after: str, name: str = "watch_text") -> chunkline.Pipeline:
    stages = chunkline.default_stages(plugins=[Watcher()]).insert_after(after, name)
    return chunkline.Pipeline(stages, plugins=[Watcher()])


@pytest.mark.parametrize(
    "make",
    [
        lambda: chunkline.Pipeline(chunking="words:3"),
        lambda: chunkline.Pipeline(chunking="sentences"),
        lambda: watched("parse", "tap"),
        lambda: watched("decode", "tap"),
        lambda: watched("decode"),
        lambda: watched("usage"),
        lambda: chunkline.Pipeline(with_stage("decode", SubDecoder)),
        lambda: chunkline.Pipeline(with_stage("envelope", SubEnvelope)),
    ],
    ids=[
        "words",
        "sentences",
        "tap-after-parse",
        "tap-after-decode",
        "after-decode",
        "after-usage",
        "sub-decoder",
        "sub-envelope",
    ],
)
def test_anything_else_on_the_way_takes_the_full_way(make: Any) -> None:
    assert fused_envelope(make()) is None


def test_the_example_plugins_take_the_full_way() -> None:
    registry = chunkline.Pipeline().registry
    if "redact" not in registry.stages or "markdown" not in registry.policies:
        pytest.skip("the example plugins in plugins/ are not installed")
    assert fused_envelope(chunkline.Pipeline(chunkline.default_stages().add("redact"))) is None
    assert fused_envelope(chunkline.Pipeline(chunking="markdown")) is None


def test_a_stage_that_takes_text_still_sees_every_delta() -> None:
    data = harness.load_sse(harness.ANTHROPIC_FIXTURES / "llm_long_text.sse")
    texts = [
        e.data["delta"]["text"]
        for e in harness.parse_anthropic_sse(data)
        if e.name == "content_block_delta" and e.data["delta"]["type"] == "text_delta"
    ]
    conversion = watched("tool_calls").open(created=CREATED)
    out = conversion.feed(data) + conversion.close()
    watcher = next(t for t in conversion._targets if isinstance(t, TextWatcher))
    assert watcher.seen == len([t for t in texts if t]) > 10
    assert out == pipeline().convert(data)


@pytest.mark.parametrize("fixture", harness.fixture_paths(), ids=lambda p: p.name)
def test_every_recording_converts_the_same_fused_or_not(fixture: Any) -> None:
    data = harness.load_sse(fixture)
    reads = [data[i : i + 97] for i in range(0, len(data), 97)]
    for options in ({}, {"include_usage": True, "thinking": "tags"}):
        for pieces in ([data], reads):
            assert convert(options, pieces, fused=True) == convert(options, pieces, fused=False)


# Streams that are mostly text on an open text block (the fused path's case), with every kind of
# event that changes what the decoder does with the next delta mixed in: blocks opening and
# stopping, deltas of the wrong shape, a second start, the end, errors.
_MISSING = object()


def _delta(index: Any, text: Any, kind: str = "text_delta") -> dict[str, Any]:
    delta: dict[str, Any] = {"type": kind}
    if text is not _MISSING:
        delta["text" if kind == "text_delta" else "thinking"] = text
    return {"type": "content_block_delta", "index": index, "delta": delta}


_START = {"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {}}}
_TEXT_BLOCK = {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}
_TEXT = st.builds(_delta, st.just(1), st.sampled_from(["Hi", " wörld 🙂", "a\nb", "", "\u2028"]))
_ODD = st.one_of(
    st.sampled_from([_START, _TEXT_BLOCK]),
    st.builds(
        lambda i, kind: {
            "type": "content_block_start",
            "index": i,
            "content_block": {"type": kind, kind: ""},
        },
        st.integers(0, 3),
        st.sampled_from(["text", "thinking", "tool_use", "server_tool_use"]),
    ),
    st.builds(
        _delta,
        st.sampled_from([0, 1, 2, True, 1.0, "1", None, [1]]),
        st.sampled_from(["Hi", "", 5, None, ["x"], _MISSING]),
    ),
    st.builds(_delta, st.integers(0, 2), st.sampled_from(["Hm", ""]), st.just("thinking_delta")),
    st.builds(lambda i: {"type": "content_block_stop", "index": i}, st.integers(0, 2)),
    st.sampled_from(
        [
            {"type": "ping"},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
            {"type": "message_stop"},
            {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
            {"type": "content_block_delta", "index": 1, "delta": []},
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "x"}},
            {"type": "content_block_delta", "index": 1, "delta": {"text": "x"}},
            {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "x"}, "x": 1},
        ]
    ),
)


def _frame(event: dict[str, Any], how: int) -> bytes:
    payload = json.dumps(event, ensure_ascii=False).encode()
    line = b"event: " + event["type"].encode()
    if how == 1:  # a name that disagrees with the data
        line = b"event: ping"
    elif how == 2:  # data over two lines: the full way
        payload += b"\ndata: "
    elif how == 3:
        payload = b"{not json"
    return line + b"\ndata: " + payload + b"\n\n"


@st.composite
def _streams(draw: st.DrawFn) -> bytes:
    events = draw(st.sampled_from([[], [_START], [_START, _TEXT_BLOCK], [_START, _TEXT_BLOCK]]))
    events = events + draw(st.lists(st.one_of(_TEXT, _TEXT, _TEXT, _ODD), max_size=30))
    hows = st.sampled_from([0] * 16 + [1, 2, 2, 3])
    return b"".join(_frame(event, draw(hows)) for event in events)


@FEW
@given(st.data())
def test_any_stream_converts_the_same_fused_or_not(data: st.DataObject) -> None:
    stream = data.draw(_streams())
    pieces = data.draw(splits(stream))
    options = data.draw(st.sampled_from(OPTIONS))
    fused = convert(options, pieces, fused=True)
    assert fused == convert(options, pieces, fused=False)
    assert fused == convert(options, [stream], fused=True)


def _block(index: int, kind: str) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": {"type": kind, kind: ""}}


_OPEN = [_START, _TEXT_BLOCK, _delta(1, "a")]
_STOP_1 = {"type": "content_block_stop", "index": 1}
# Each ends with a text delta the fused path must refuse (or, for the last two, must take with the
# envelope's frame as the full-way events before it left it).
EDGES = {
    "before-start": [_TEXT_BLOCK, _delta(1, "a")],
    "unopened-block": [_START, _delta(1, "a")],
    "stopped-block": [*_OPEN, _STOP_1, _delta(1, "b")],
    "thinking-block": [_START, _block(1, "thinking"), _delta(1, "a")],
    "tool-block": [_START, _block(1, "tool_use"), _delta(1, "a")],
    "server-tool-block": [_START, _block(1, "server_tool_use"), _delta(1, "a")],
    "bool-index": [*_OPEN, _delta(True, "b")],
    "float-index": [*_OPEN, _delta(1.0, "b")],
    "str-text": [*_OPEN, _delta(1, 5)],
    "no-text": [*_OPEN, _delta(1, _MISSING)],
    "after-stop": [*_OPEN, {"type": "message_stop"}, _delta(1, "b")],
    "after-error": [*_OPEN, {"type": "error", "error": {"message": "x"}}, _delta(1, "b")],
    "second-start": [*_OPEN, _START, _delta(1, "b")],
    "slow-start": [(_START, 2), (_TEXT_BLOCK, 2), _delta(1, "a"), _delta(1, "b")],
    "slow-start-fast-block": [(_START, 2), _TEXT_BLOCK, _delta(1, "a")],
}
OPTIONS = [
    {},
    {"on_error": "raise"},
    {"include_usage": True, "thinking": "tags"},
    # Without the finish stage, nothing ends the conversion when the decoder stops.
    {"stages": ("parse", "decode", "envelope", "serialize")},
]


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "raise", "usage-tags", "no-finish"])
@pytest.mark.parametrize("edge", EDGES, ids=list(EDGES))
def test_edges_of_the_fused_path_convert_the_same_fused_or_not(edge: str, options: dict[str, Any]) -> None:
    framed = [item if isinstance(item, tuple) else (item, 0) for item in EDGES[edge]]
    # Twice: the first time round a name never seen before takes the full way.
    data = b"".join(_frame(event, how) for event, how in framed)
    for _ in range(2):
        assert convert(options, [data], fused=True) == convert(options, [data], fused=False)


class EndAfter(Stage):
    """A third-party stage after the envelope that ends the stream at its third chunk."""

    __slots__ = ("count",)

    handles = (Chunk,)

    def __init__(self) -> None:
        self.count = 0

    def feed(self, item: Any) -> None:
        self.count += 1
        self.emit(item)
        if self.count == 3:
            self.conversion.finished = True


def test_a_stage_after_the_envelope_that_ends_the_stream_ends_it_fused_or_not() -> None:
    stages = [*chunkline.DEFAULT_STAGES]
    stages.insert(stages.index("serialize"), StageSpec("end_after", lambda options: EndAfter()))
    pipeline = chunkline.Pipeline(stages, created=CREATED)
    texts = [_delta(1, text) for text in ("a", "b", "c", "d")]
    data = b"".join(_frame(event, 0) for event in [_START, _TEXT_BLOCK, *texts, *texts])
    outputs = []
    for fused in (True, False):
        conversion = pipeline.open()
        assert conversion._targets[0]._envelope is not None
        if not fused:
            conversion._targets[0]._envelope = None
        outputs.append(conversion.feed(data) + conversion.close())
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == 3
