"""A cut-off upstream answer is never a success: every byte offset of the recordings, generated streams."""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chunkline
import harness
from chunkline.errors import describe
from faults import DONE, assert_client_error, error_body, split_output
from strategies import CREATED, anthropic_streams, encode_sse, read_openai_stream, splits, sse_framing

PATHS = harness.fixture_paths()
JSONL = [p for p in PATHS if p.suffix == ".jsonl"]
# Recordings that break the protocol (see test_conformance): from the offending event on, the
# output is the whole recording's output, an invalid_upstream_response error.
PROTOCOL_VIOLATIONS = {"vercel_spliced_message_start_thinking_tool.jsonl"}

# The sweep: every byte offset of an SSE recording up to FULL_SWEEP bytes long (28 of the 39).
# Longer ones (15-256 KB) get every offset in their first EDGE bytes and in the EDGE bytes before
# and after the end of message_stop's data line, the offsets on both sides of each event's dispatch
# point and end, and STRIDE_POINTS offsets evenly spread over the rest. The 14 JSON-lines
# recordings are also swept raw (input_format="jsonl"), the same way but with JSONL_EDGE bytes
# at the edges, whatever their size.
FULL_SWEEP = 12 * 1024
EDGE = 2 * 1024
JSONL_EDGE = 512
STRIDE_POINTS = 300
SDK_SAMPLES = 6
SEED = 43  # R43

TRUNCATED = "the upstream stream ended before 'message_stop': the response is incomplete"
TRUNCATED_AFTER_DELTA = (
    "the upstream stream ended after 'message_delta' before 'message_stop': the response is incomplete"
)
# An input cut right at the end of an event's JSON: whole, but with no line break after it.
NO_BLANK_LINE = (
    "the input's last event ({kind}) has no blank line after it (not even a line break), so it was "
    "not used: server-sent events end with a blank line; was the recording saved without its last newlines?"
)


def truncation_message(events: list[Event], cut: int, reason: str | None, input_format: str = "sse") -> str:
    """The error for ``data[:cut]`` of a stream whose last stop reason seen was ``reason``."""
    if input_format == "sse":
        for event in events:
            if event.dispatched_at - 1 == cut:
                return NO_BLANK_LINE.format(kind=describe(event.data["type"]))
    return TRUNCATED if reason is None else TRUNCATED_AFTER_DELTA


@functools.cache
def pipeline(input_format: str = "sse") -> chunkline.Pipeline:
    return chunkline.Pipeline(created=CREATED, input_format=input_format)


@dataclass
class Event:
    data: dict[str, Any]
    dispatched_at: int  # the shortest prefix after which the parser hands this event on (at close)
    end: int  # where its bytes end


def sse_events(data: bytes) -> list[Event]:
    # An SSE event is dispatched at close once the line break after its (single) data line arrived.
    return [
        Event(e.data, data.index(b"\n", data.index(b"data:", e.start)) + 1, e.end)
        for e in harness.parse_anthropic_sse(data)
    ]


def jsonl_events(data: bytes) -> list[Event]:
    # A JSON line is dispatched at close once its closing brace arrived (a cut line does not parse).
    out, position = [], 0
    for line in data.split(b"\n"):
        if line.strip():
            out.append(Event(json.loads(line), position + len(line.rstrip()), position + len(line) + 1))
        position += len(line) + 1
    return out


@dataclass
class Recording:
    """One input, its whole conversion, and what any prefix of it must convert to."""

    name: str
    data: bytes
    input_format: str
    events: list[Event]
    full: list[bytes]
    body: list[bytes]  # the whole conversion's outputs before its finish (or its error)
    counts: list[int]  # outputs of the whole conversion after each event
    complete_at: int  # from this prefix length on, the output is the whole output
    fault_at: int | None  # where a protocol violation is dispatched

    def expected(self, cut: int) -> tuple[dict[str, Any], list[bytes]]:
        """The error and the outputs before it for the prefix ``data[:cut]`` (``cut < complete_at``)."""
        arrived = bisect.bisect_right(self.thresholds, cut)  # events dispatch in order
        reason = None
        for event in self.events[:arrived]:
            if event.data["type"] == "message_delta":
                reason = event.data["delta"].get("stop_reason")
        message = truncation_message(self.events, cut, reason, self.input_format)
        count = self.counts[arrived - 1] if arrived else 0
        return error_body(message, "upstream_truncated"), self.body[:count]

    @functools.cached_property
    def thresholds(self) -> list[int]:
        assert all(a.dispatched_at < b.dispatched_at for a, b in itertools.pairwise(self.events))
        return [e.dispatched_at for e in self.events]


@functools.cache
def recording(path: Path, input_format: str = "sse") -> Recording:
    if input_format == "sse":
        data = harness.load_complete_sse(path)
        events = sse_events(data)
    else:
        data = path.read_bytes()
        events = jsonl_events(data)
    convert = pipeline(input_format).convert
    full = convert(data)
    conversion = pipeline(input_format).open()
    counts, produced, start = [], 0, 0
    for event in events:
        produced += len(conversion.feed(data[start : event.end]))
        start = event.end
        counts.append(produced)
    stop = next(e for e in events if e.data["type"] == "message_stop")
    fault_at = None
    if path.name in PROTOCOL_VIOLATIONS:
        starts = [e for e in events if e.data["type"] == "message_start"]
        fault_at = starts[1].dispatched_at
        body = full[:-2]
    else:
        finish = next(i for i, item in enumerate(full) if b'"finish_reason":"' in item)
        body = full[:finish]
    return Recording(path.name, data, input_format, events, full, body, counts, stop.dispatched_at, fault_at)


def sweep_offsets(rec: Recording) -> list[int]:
    size = len(rec.data)
    if size <= FULL_SWEEP and rec.input_format == "sse":
        return list(range(size + 1))
    last = rec.complete_at
    edge = EDGE if rec.input_format == "sse" else JSONL_EDGE
    offsets = set(range(edge + 1)) | set(range(max(0, last - edge), min(size, last + edge) + 1))
    for event in rec.events:
        offsets |= {event.dispatched_at - 1, event.dispatched_at, event.end - 1, min(event.end, size)}
    offsets |= set(range(0, size + 1, max(1, size // STRIDE_POINTS))) | {size}
    return sorted(o for o in offsets if 0 <= o <= size)


def error_line(error: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps({"error": error}, separators=(",", ":")).encode() + b"\n\n"


def check_prefix(rec: Recording, cut: int, out: list[bytes]) -> None:
    """Assert the conversion of ``data[:cut]`` byte for byte: the whole output once the input is
    complete; else the outputs of the events that arrived, the truncation error and [DONE]."""
    where = f"{rec.name} ({rec.input_format}) cut at byte {cut} of {len(rec.data)}"
    if cut >= rec.complete_at or (rec.fault_at is not None and cut >= rec.fault_at):
        assert out == rec.full, where
        return
    want_error, want_body = rec.expected(cut)
    # want_body is a prefix of the whole output's outputs before its finish: no finish, no error.
    assert out == [*want_body, error_line(want_error), DONE], where


SWEEP = [(p, "sse") for p in PATHS] + [(p, "jsonl") for p in JSONL]


@pytest.mark.parametrize(("path", "input_format"), SWEEP, ids=[f"{p.name}-{f}" for p, f in SWEEP])
def test_every_prefix_is_an_error_never_a_finish(path: Path, input_format: str) -> None:
    rec = recording(path, input_format)
    convert = pipeline(input_format).convert
    offsets = sweep_offsets(rec)
    for cut in offsets:
        check_prefix(rec, cut, convert(rec.data[:cut]))
    # Everything before the finish reaches the client when only the end of message_stop is missing.
    last = rec.complete_at - 1
    if rec.fault_at is None:
        assert split_output(convert(rec.data[:last]))[0] == rec.body


def sdk_offsets(rec: Recording) -> list[int]:
    """A few offsets per recording: the first and last that are cut, right after the stop reason
    arrived, and random ones."""
    last = (rec.fault_at or rec.complete_at) - 1
    deltas = [e.dispatched_at for e in rec.events if e.data["type"] == "message_delta"]
    rng = random.Random(f"{SEED}:{rec.name}")
    chosen = {0, last, *(d for d in deltas if d <= last)}
    chosen |= set(rng.sample(range(last + 1), min(SDK_SAMPLES, last + 1)))
    return sorted(chosen)


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_the_openai_sdk_raises_for_a_cut_stream(path: Path) -> None:
    rec = recording(path)
    for cut in sdk_offsets(rec):
        out = pipeline().convert(rec.data[:cut])
        body, error = split_output(out)
        want_error, want_body = rec.expected(cut)
        assert (error, body) == (want_error, want_body), cut
        text = read_openai_stream([*body, b"data: [DONE]\n\n"], check=False).text
        assert_client_error(b"".join(out), error, content=text)


# -- generated streams -----------------------------------------------------------------------------

SDK = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _truth_usage(message: Any) -> dict[str, Any]:
    usage = message.usage
    cache_read = usage.cache_read_input_tokens or 0
    prompt = usage.input_tokens + cache_read + (usage.cache_creation_input_tokens or 0)
    body: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": cache_read},
    }
    if usage.output_tokens_details is not None and usage.output_tokens_details.thinking_tokens is not None:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.output_tokens_details.thinking_tokens}
    return body


def with_delta_usage(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The anthropic SDK (2.13) fails on a message_delta without usage, which R47 allows and
    chunkline accepts: give those an output count so the SDK can be the reference."""
    return [
        {**e, "usage": {"output_tokens": 0}} if e["type"] == "message_delta" and not e.get("usage") else e
        for e in events
    ]


@SDK
@given(st.data())
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
def test_generated_streams_read_like_the_anthropic_sdk_however_split(data: st.DataObject) -> None:
    # test_properties checks generated streams against values computed from the event dicts; here
    # the two real SDKs are the ends: whatever the framing and the split, the openai SDK's
    # accumulation equals the anthropic SDK's reading of the plain stream.
    events = with_delta_usage(data.draw(anthropic_streams()))
    truth = harness.anthropic_truth(encode_sse(events))
    framed = data.draw(sse_framing(events))
    conversion = pipeline().open()
    out: list[bytes] = []
    for piece in data.draw(splits(framed)):
        out += conversion.feed(piece)
    out += conversion.close()
    seen = harness.openai_stream_create(b"".join(out))
    assert seen.content == truth.text  # the role chunk's "" included
    assert (seen.reasoning_content or None) == truth.thinking
    assert [(c.id, c.name, json.loads(c.arguments)) for c in seen.tool_calls] == [
        (c["id"], c["name"], c["input"]) for c in truth.tool_calls
    ]
    with_usage = chunkline.Pipeline(created=CREATED, include_usage=True).convert(framed)
    assert harness.openai_stream_create(b"".join(with_usage), include_usage=True).usage == _truth_usage(
        truth.message
    )


@SDK
@given(st.data())
def test_generated_streams_cut_anywhere_raise_in_the_sdk(data: st.DataObject) -> None:
    events = data.draw(anthropic_streams())
    plain = encode_sse(events)
    rec_events = sse_events(plain)
    stop = next(e for e in rec_events if e.data["type"] == "message_stop")
    cut = data.draw(st.integers(0, stop.dispatched_at - 1))
    conversion = pipeline().open()
    out: list[bytes] = []
    for piece in data.draw(splits(plain[:cut])):
        out += conversion.feed(piece)
    out += conversion.close()
    body, error = split_output(out)
    reason = None
    for event in rec_events:
        if event.dispatched_at <= cut and event.data["type"] == "message_delta":
            reason = event.data["delta"]["stop_reason"]
    assert error == error_body(truncation_message(rec_events, cut, reason), "upstream_truncated")
    whole = pipeline().convert(plain)
    assert body == whole[: len(body)]
    text = read_openai_stream([*body, b"data: [DONE]\n\n"], check=False).text
    assert_client_error(b"".join(out), error, content=text)
