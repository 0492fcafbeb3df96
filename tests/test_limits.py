"""Size limits end to end: exact boundaries, one in-band limit_exceeded error, bounded memory under input."""

from __future__ import annotations

import json
import time
import tracemalloc
from typing import Any

import pytest

import chunkline
from faults import DONE, assert_client_error, error_body, events, split_output
from strategies import CREATED, block_events, message_delta, message_start, read_openai_stream

KiB = 1024
MiB = 1024 * KiB
READ = 64 * KiB  # one network read
TOTAL = 200 * MiB  # an endless line, as far as the tests go
LIMIT = MiB  # the small max_event_bytes the memory tests use

STOP = {"type": "message_stop"}
TEXT_START = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
START = events(message_start(), TEXT_START)
REST = events({"type": "content_block_stop", "index": 0}, message_delta(), STOP)
DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":'


def text_delta(text: str) -> bytes:
    return events({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})


def text_frame(size: int) -> bytes:
    """A text-delta event of exactly ``size`` bytes as the limit counts it (without the blank line)."""
    head = DELTA_HEAD + b'{"type":"text_delta","text":"'
    tail = b'"}}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def pipeline(**options: Any) -> chunkline.Pipeline:
    return chunkline.Pipeline(created=CREATED, **options)


def fed(conversion: Any, data: bytes, piece: int | None) -> list[bytes]:
    out: list[bytes] = []
    for start in range(0, len(data), piece or len(data) or 1):
        out += conversion.feed(data[start : start + (piece or len(data))])
    return out + conversion.close()


def convert(data: bytes, piece: int | None = None, **options: Any) -> list[bytes]:
    return fed(pipeline(**options).open(), data, piece)


def chunk_payloads(out: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(item[6:]) for item in out if item.startswith(b"data: {")]


def deltas(out: list[bytes]) -> list[dict[str, Any]]:
    return [p["choices"][0]["delta"] for p in chunk_payloads(out) if p.get("choices")]


EVENT_LIMIT_MESSAGE = "an upstream event or line is larger than max_event_bytes ({} bytes)"
BLOCKS_MESSAGE = "the upstream message has more than max_content_blocks ({}) content blocks"
TOOL_MESSAGE = "the upstream's tool-call arguments add up to more than max_tool_argument_bytes ({} bytes)"


def limit_error(message: str) -> dict[str, Any]:
    return error_body(message, "limit_exceeded")


# -- defaults and option checks --------------------------------------------------------------------


def test_the_documented_defaults() -> None:
    options = chunkline.Pipeline().options
    assert options["max_event_bytes"] == 8 * MiB
    assert options["max_content_blocks"] == 10_000
    assert options["max_tool_argument_bytes"] == 16 * MiB


@pytest.mark.parametrize("name", ["max_content_blocks", "max_tool_argument_bytes"])
@pytest.mark.parametrize("value", [0, -1, "big", 1.5, True, None])
def test_limit_values_are_checked(name: str, value: Any) -> None:
    with pytest.raises(chunkline.OptionError, match=name):
        chunkline.Pipeline(**{name: value})


# -- max_event_bytes -------------------------------------------------------------------------------


@pytest.mark.parametrize("piece", [None, READ, 4099], ids=["whole", "64KiB-reads", "4099-byte-reads"])
def test_default_max_event_bytes_is_exact(piece: int | None) -> None:
    limit = 8 * MiB
    fits = text_frame(limit)
    out = convert(START + fits + b"\n\n" + REST, piece)
    stream = read_openai_stream(out)
    assert stream.error is None and stream.finish_reason == "stop"
    assert stream.text == "x" * (limit - len(DELTA_HEAD) - len(b'{"type":"text_delta","text":"') - 3)

    out = convert(START + text_delta("Hi") + text_frame(limit + 1) + b"\n\n" + REST, piece)
    body, error = split_output(out)
    assert error == limit_error(EVENT_LIMIT_MESSAGE.format(limit))
    assert [d for d in deltas(body)] == [{"role": "assistant", "content": ""}, {"content": "Hi"}]


def test_max_event_bytes_counts_the_event_after_line_break_normalisation() -> None:
    # CRLF line endings count as one byte each: an event at the limit with CRLF still fits.
    frame = text_frame(4096).replace(b"\n", b"\r\n")
    assert len(frame) == 4097
    stream = read_openai_stream(convert(START + frame + b"\r\n\r\n" + REST, max_event_bytes=4096))
    assert stream.error is None and stream.finish_reason == "stop"
    out = convert(START + text_frame(4097).replace(b"\n", b"\r\n") + b"\r\n\r\n" + REST, max_event_bytes=4096)
    assert split_output(out)[1] == limit_error(EVENT_LIMIT_MESSAGE.format(4096))


@pytest.mark.parametrize("piece", [None, 1000])
def test_jsonl_line_limit_is_exact(piece: int | None) -> None:
    head = b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"'

    def line(size: int) -> bytes:
        return head + b"x" * (size - len(head) - 3) + b'"}}'

    start = b"".join(json.dumps(e).encode() + b"\n" for e in [message_start(), TEXT_START, {"type": "ping"}])
    rest = b"".join(
        json.dumps(e).encode() + b"\n"
        for e in [{"type": "content_block_stop", "index": 0}, message_delta(), STOP]
    )
    stream = read_openai_stream(
        convert(start + line(2048) + b"\n" + rest, piece, input_format="jsonl", max_event_bytes=2048)
    )
    assert stream.error is None and stream.text == "x" * (2048 - len(head) - 3)
    out = convert(start + line(2049) + b"\n" + rest, piece, input_format="jsonl", max_event_bytes=2048)
    assert split_output(out)[1] == limit_error(EVENT_LIMIT_MESSAGE.format(2048))


def test_an_oversized_event_mid_stream_through_the_openai_sdk() -> None:
    out = convert(START + text_delta("Hi") + text_frame(LIMIT + 1) + b"\n\n" + REST, max_event_bytes=LIMIT)
    body, error = split_output(out)
    assert error == limit_error("an upstream event or line is larger than max_event_bytes (1048576 bytes)")
    assert deltas(body) == [{"role": "assistant", "content": ""}, {"content": "Hi"}]
    assert_client_error(b"".join(out), error, content="Hi")


def _measure(conversion: Any, head: bytes, read: bytes, total: int) -> dict[str, Any]:
    """Feed ``head`` then ``read`` until ``total`` bytes were offered; record where the error came,
    the traced memory growth (peak while feeding, and what is kept at the end) and timings."""
    outputs: list[bytes] = []
    error_at = None
    reads = total // len(read)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        outputs += conversion.feed(head)
        after_error = 0.0
        empty_after_error = True
        for number in range(1, reads + 1):
            started = time.perf_counter()
            got = conversion.feed(read)
            if error_at is None:
                outputs += got
                if conversion.finished:
                    error_at = number
            else:
                after_error += time.perf_counter() - started
                empty_after_error = empty_after_error and got == []
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    tail = conversion.close()
    return {
        "outputs": outputs,
        "error_at": error_at,
        "growth": peak - baseline,
        "kept": current - baseline,
        "after_error_seconds": after_error,
        "empty_after_error": empty_after_error,
        "tail": tail,
        "reads": reads,
    }


# Shapes of endless input with no blank line: (options, what comes first, one 64 KiB read,
# the bytes already pending before the first read, the outputs before the error).
_LINE = (b"data: " + b"y" * 57 + b"\n") * (READ // 64)
ENDLESS = {
    "one-line": ({}, b"", b"x" * READ, 0, []),
    "data-line-no-newline": ({}, b"event: ping\ndata: ", b"y" * READ, 18, []),
    "many-data-lines": ({}, b"event: ping\n", _LINE, 12, []),
    "comment-line": ({}, b": ", b"z" * READ, 2, []),
    "after-text": ({}, START + text_delta("Hi") + DELTA_HEAD, b"w" * READ, len(DELTA_HEAD), ["", "Hi"]),
    "jsonl-line": ({"input_format": "jsonl"}, b'{"type":"ping","pad":"', b"v" * READ, 22, []),
}


@pytest.mark.parametrize("shape", ENDLESS)
def test_200_mib_without_a_blank_line_keeps_memory_bounded(shape: str) -> None:
    options, head, read, pending, before = ENDLESS[shape]
    assert len(read) == READ
    conversion = pipeline(max_event_bytes=LIMIT, **options).open()
    result = _measure(conversion, head, read, TOTAL)
    # The error comes with the first read that takes the pending event past the limit (plus the
    # first byte of a separator for SSE): nothing more than the limit is ever buffered.
    allowed = LIMIT + (1 if options.get("input_format") != "jsonl" else 0)
    expected_read = (allowed - pending) // READ + 1
    assert result["error_at"] == expected_read, result["error_at"]
    body, error = split_output(result["outputs"])
    assert error == limit_error(EVENT_LIMIT_MESSAGE.format(LIMIT))
    assert [d.get("content") for d in deltas(body)] == before
    assert result["growth"] < 3 * LIMIT, f"{result['growth']} bytes traced while feeding {TOTAL} bytes"
    assert result["kept"] < 64 * KiB, result["kept"]
    # After the error, the remaining ~3,180 reads return [] without looking at them.
    assert result["empty_after_error"] and result["tail"] == []
    assert result["after_error_seconds"] < 0.5
    assert_client_error(b"".join(result["outputs"]), error, content="".join(before))


def test_a_frame_of_many_complete_lines_hits_the_limit_however_it_is_cut() -> None:
    # 1 MiB of short data lines with no blank line, in whole or in awkward pieces.
    data = b"event: ping\n" + b"data: 1\n" * (LIMIT // 8) + b"\n"
    for piece in (None, READ, 4099):
        out = convert(START + data + REST, piece, max_event_bytes=LIMIT)
        assert split_output(out)[1] == limit_error(EVENT_LIMIT_MESSAGE.format(LIMIT)), piece


def _seconds_to_feed(head: bytes, read: bytes, count: int) -> float:
    conversion = pipeline(max_event_bytes=64 * MiB).open()
    conversion.feed(head)
    started = time.perf_counter()
    for _ in range(count):
        conversion.feed(read)
    elapsed = time.perf_counter() - started
    assert not conversion.finished
    return elapsed


def test_a_large_event_in_small_reads_costs_linear_time() -> None:
    # 128 KiB of one pending event in 8-byte reads. Whether each read starts or ends with its line
    # break must not matter: both are one pass over the bytes. (Copying the whole pending event
    # on every read that starts with a line break is quadratic: 1 MiB took 103 s this way.)
    count = 128 * KiB // 8
    ending = _seconds_to_feed(b"event: ping\n", b"data: 1\n", count)
    starting = _seconds_to_feed(b"event: ping", b"\ndata: 1", count)
    assert starting < 10 * ending + 0.1, f"{starting:.3f}s vs {ending:.3f}s"


# -- max_content_blocks ----------------------------------------------------------------------------


def text_blocks(count: int, first: int = 0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for index in range(first, first + count):
        out += block_events(
            index, {"type": "text", "text": ""}, [{"type": "text_delta", "text": f"<{index}>"}]
        )
    return out


def test_default_max_content_blocks_is_exact() -> None:
    tail = [message_delta(), STOP]
    stream = read_openai_stream(convert(events(message_start(), *text_blocks(10_000), *tail)))
    assert stream.error is None and stream.finish_reason == "stop"
    assert stream.text == "".join(f"<{i}>" for i in range(10_000))

    out = convert(events(message_start(), *text_blocks(10_001), *tail))
    body, error = split_output(out)
    assert error == limit_error(BLOCKS_MESSAGE.format(10_000))
    assert "".join(d.get("content", "") for d in deltas(body)) == "".join(f"<{i}>" for i in range(10_000))


def test_max_content_blocks_counts_every_block_kind_open_or_stopped() -> None:
    data = events(
        message_start(),
        *text_blocks(1),
        *block_events(1, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}),
        {"type": "content_block_start", "index": 2, "content_block": {"type": "hologram"}},
        *text_blocks(1, first=3),
        message_delta(),
        STOP,
    )
    out = convert(data, max_content_blocks=3)
    body, error = split_output(out)
    assert error == limit_error(BLOCKS_MESSAGE.format(3))
    assert deltas(body) == [{"role": "assistant", "content": ""}, {"content": "<0>"}]
    assert_client_error(b"".join(out), error, content="<0>")
    assert read_openai_stream(convert(data, max_content_blocks=4)).finish_reason == "stop"


def test_max_content_blocks_input_past_the_limit_costs_no_memory() -> None:
    # The decoder's state is bounded by the limit itself; once it is hit, 20,000 more blocks are
    # not even looked at.
    conversion = pipeline().open()
    out = conversion.feed(events(message_start(), *text_blocks(10_001)))
    more = events(*text_blocks(20_000, first=10_001))
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        late = [conversion.feed(more[start : start + READ]) for start in range(0, len(more), READ)]
        kept = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert split_output(out + conversion.close())[1] == limit_error(BLOCKS_MESSAGE.format(10_000))
    assert len(out) == 10_000 + 3  # role, one chunk per allowed block, error, [DONE]
    assert all(got == [] for got in late) and kept < 16 * KiB, kept


# -- max_tool_argument_bytes -----------------------------------------------------------------------


def tool_block(index: int, call_id: str, fragments: list[str]) -> list[dict[str, Any]]:
    return block_events(
        index,
        {"type": "tool_use", "id": call_id, "name": "f", "input": {}},
        [{"type": "input_json_delta", "partial_json": f} for f in fragments],
    )


def tool_stream(*blocks: list[dict[str, Any]]) -> bytes:
    items = [event for block in blocks for event in block]
    return events(message_start(), *items, message_delta("tool_use"), STOP)


def test_default_max_tool_argument_bytes_is_exact_over_all_calls() -> None:
    mib = "a" * MiB
    fits = tool_stream(tool_block(0, "toolu_1", [mib] * 8), tool_block(1, "toolu_2", [mib] * 8))
    stream = read_openai_stream(convert(fits))
    assert stream.error is None and stream.finish_reason == "tool_calls"
    assert [len(c["arguments"]) for c in stream.tool_calls.values()] == [8 * MiB, 8 * MiB]

    over = tool_stream(tool_block(0, "toolu_1", [mib] * 8), tool_block(1, "toolu_2", [mib] * 8 + ["b"]))
    body, error = split_output(convert(over))
    assert error == limit_error(TOOL_MESSAGE.format(16 * MiB))
    sent = read_openai_stream([*body, DONE], check=False).tool_calls
    assert [len(c["arguments"]) for c in sent.values()] == [8 * MiB, 8 * MiB]


def test_tool_argument_bytes_are_utf8_bytes_and_the_crossing_fragment_is_not_sent() -> None:
    fragments = ['{"a":', '"é"}']  # 5 + 5 bytes, 9 characters
    data = tool_stream(tool_block(0, "toolu_1", fragments))
    assert (
        read_openai_stream(convert(data, max_tool_argument_bytes=10)).tool_calls[0]["arguments"]
        == '{"a":"é"}'
    )

    out = convert(data, max_tool_argument_bytes=9)
    body, error = split_output(out)
    assert error == limit_error(TOOL_MESSAGE.format(9))
    assert deltas(body)[1:] == [
        {
            "tool_calls": [
                {"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": ""}}
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]},
    ]
    assert_client_error(b"".join(out), error, arguments={0: '{"a":'})


def test_tool_argument_limit_is_shared_by_all_calls() -> None:
    data = tool_stream(tool_block(0, "toolu_1", ['{"x":1}']), tool_block(1, "toolu_2", ['{"y":2}']))
    assert read_openai_stream(convert(data, max_tool_argument_bytes=14)).finish_reason == "tool_calls"
    out = convert(data, max_tool_argument_bytes=13)
    assert split_output(out)[1] == limit_error(TOOL_MESSAGE.format(13))
    assert_client_error(b"".join(out), limit_error(TOOL_MESSAGE.format(13)), arguments={0: '{"x":1}', 1: ""})


def test_what_the_tool_argument_limit_does_not_count() -> None:
    # Server tool input is never sent to the client, so it is not counted.
    start_input = block_events(0, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"k": "v"}})
    server = block_events(
        1,
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
        [{"type": "input_json_delta", "partial_json": '{"query": "' + "q" * 100 + '"}'}],
    )
    stream = read_openai_stream(convert(tool_stream(start_input, server), max_tool_argument_bytes=16))
    assert stream.error is None and stream.finish_reason == "tool_calls"
    assert json.loads(stream.tool_calls[0]["arguments"]) == {"k": "v"}


def test_a_start_blocks_input_counts_as_arguments() -> None:
    # Whatever way a call's arguments arrive (fragments, or whole in the start block), the client
    # receives them: one limit bounds them all.
    start_input = block_events(
        0, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"k": "v" * 100}}
    )
    stream = read_openai_stream(convert(tool_stream(start_input), max_tool_argument_bytes=16))
    assert stream.error is not None and stream.error["type"] == "limit_exceeded"


# -- on_error="raise" ------------------------------------------------------------------------------

RAISING = {
    "max_event_bytes": (
        {"max_event_bytes": 4096},
        START + text_delta("Hi") + text_frame(4097) + b"\n\n" + REST,
        EVENT_LIMIT_MESSAGE.format(4096),
    ),
    "max_content_blocks": (
        {"max_content_blocks": 2},
        events(message_start(), *text_blocks(3), message_delta(), STOP),
        BLOCKS_MESSAGE.format(2),
    ),
    "max_tool_argument_bytes": (
        {"max_tool_argument_bytes": 3},
        tool_stream(tool_block(0, "toolu_1", ["{}", "{}"])),
        TOOL_MESSAGE.format(3),
    ),
}


@pytest.mark.parametrize("limit", RAISING)
def test_limits_with_on_error_raise(limit: str) -> None:
    options, data, message = RAISING[limit]
    body, error = split_output(convert(data, **options))
    assert error == limit_error(message)
    for piece in (None, 5):
        with pytest.raises(chunkline.LimitExceeded) as caught:
            convert(data, piece, on_error="raise", **options)
        assert caught.value.message == message and caught.value.type == "limit_exceeded"
    # Whole input: Pipeline.convert puts everything produced before the fault on the exception.
    with pytest.raises(chunkline.LimitExceeded) as caught:
        pipeline(on_error="raise", **options).convert(data)
    assert caught.value.output == body
