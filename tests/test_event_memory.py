"""The worst-case memory of one stream, as docs/reliability.md states it; the bound on an event's values."""

from __future__ import annotations

import re
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

import chunkline
from faults import events
from strategies import message_start

MiB = 1024 * 1024
LIMIT = MiB  # max_event_bytes for these tests: the bound scales with it, and 1 MiB keeps them fast
START = events(
    message_start(),
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
)
HEAD = (
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"'
)
RELIABILITY = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"


def _documented_bound() -> tuple[int, int]:
    """The factors of "A * max_event_bytes + B bytes * max_event_values" in docs/reliability.md."""
    found = re.search(
        r"(\d+) \u00d7 `max_event_bytes` \+ (\d+) bytes \u00d7 `max_event_values`", RELIABILITY.read_text()
    )
    assert found, "docs/reliability.md states no worst-case memory per stream"
    return int(found.group(1)), int(found.group(2))


def _text(fill: Callable[[int], bytes]) -> bytes:
    room = LIMIT - len(HEAD) - len(b'"}}') + len(b"event: content_block_delta\n") - 64
    return HEAD + fill(room) + b'"}}\n\n'


def _values(item: bytes, count: int) -> bytes:
    pad = item * count
    filler = b"x" * (LIMIT - len(pad) - 200)
    return HEAD + b'x","pad":[' + pad + b'0],"s":"' + filler + b'"}}\n\n'


SHAPES = {
    "ascii text": lambda: _text(lambda n: b"x" * n),
    # one character outside Latin-1 makes the whole string four bytes per character
    "astral text": lambda: _text(lambda n: "😀".encode() + b"x" * (n - 4)),
    "escaped astral text": lambda: _text(lambda n: b"\\ud83d\\ude00" * (n // 12)),
    "empty arrays": lambda: _values(b"[],", 49_000),
    "small objects": lambda: _values(b'{"a":1.5},', 33_000),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_one_stream_stays_within_the_documented_worst_case(shape: str) -> None:
    per_byte, per_value = _documented_bound()
    pipeline = chunkline.Pipeline(max_event_bytes=LIMIT)
    bound = per_byte * LIMIT + per_value * pipeline.options["max_event_values"]
    data = SHAPES[shape]()
    conversion = pipeline.open()
    conversion.feed(START)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        errors = []
        for at in range(0, len(data), 65536):
            errors += [o for o in conversion.feed(data[at : at + 65536]) if o.startswith(b'data: {"error"')]
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert not errors, f"the {shape} event is meant to be legal: {errors[0][:200]!r}"
    print(f"{shape}: peak {peak / MiB:.1f} MiB, bound {bound / MiB:.1f} MiB")
    assert peak <= bound, f"{shape}: {peak / MiB:.1f} MiB, more than the documented {bound / MiB:.1f} MiB"


def test_an_event_of_too_many_values_is_refused_before_it_is_parsed() -> None:
    pipeline = chunkline.Pipeline(max_event_values=1000)
    event = b'event: ping\ndata: {"type":"ping","pad":[' + b"[]," * 2_500_000 + b"[]]}\n\n"
    started = time.process_time()
    out, peak = _fed_after(pipeline, START, event)
    assert time.process_time() - started < 1.0
    # The copies framing makes come to a few times the event; parsing it would be about 35 times.
    assert peak < 8 * len(event), "the event was parsed"
    assert b"max_event_values (1000)" in out[-2] and b'"type":"limit_exceeded"' in out[-2]
    assert out[-1] == b"data: [DONE]\n\n"


def test_an_event_at_the_value_limit_passes() -> None:
    pipeline = chunkline.Pipeline(max_event_values=2000)
    text = "," * 1999  # commas in a string count too: the bound is conservative
    event = events({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})
    payload_values = event.count(b",") + event.count(b":") + event.count(b"[") + event.count(b"{") + 1
    assert payload_values > 2000
    out = pipeline.convert(START + event)
    assert any(b"limit_exceeded" in o for o in out)
    small = events(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "," * 1900}}
    )
    assert not any(b"limit_exceeded" in o for o in pipeline.convert(START + small))


def test_a_chat_chunk_of_too_many_values_is_refused_before_it_is_parsed() -> None:
    """The openai-chat source holds the same limit, on its fast path for one-line chunks too."""
    pipeline = chunkline.Pipeline(source="openai-chat", target="anthropic-messages", max_event_values=1000)
    role = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
    )
    chunk = b'data: {"id":"c","choices":[],"pad":[' + b"[]," * 2_500_000 + b"[]]}\n\n"
    out, peak = _fed_after(pipeline, role, chunk)
    assert peak < 8 * len(chunk), "the chunk was parsed"
    assert b"more JSON values than max_event_values (1000)" in b"".join(out)


def _fed_after(pipeline: chunkline.Pipeline, start: bytes, data: bytes) -> tuple[list[bytes], int]:
    """What a conversion fed ``start`` writes for ``data``, and the traced peak of that feed."""
    conversion = pipeline.open()
    conversion.feed(start)
    tracemalloc.start()
    try:
        out = conversion.feed(data)
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
