"""The parse stage: SSE and JSON-lines framing, UTF-8, JSON, event names, end of input and size limits."""

from __future__ import annotations

import json
import tracemalloc
from functools import cache
from typing import Any

import pytest

import chunkline
from chunkline.events import ErrorEvent
from strategies import CREATED, block_events, encode_sse, message_delta, message_start, read_openai_stream

PING = {"type": "ping"}
BOM = b"\xef\xbb\xbf"


@cache
def _pipeline(stages: tuple[str, ...] | None, **options: Any) -> chunkline.Pipeline:
    return chunkline.Pipeline(stages=None if stages is None else list(stages), **options)


def parse(*pieces: bytes, **options: Any) -> list[Any]:
    """Feed ``pieces`` through a parse-only pipeline: Anthropic event dicts and ErrorEvents out."""
    conversion = _pipeline(("parse",), **options).open()
    out: list[Any] = []
    for piece in pieces:
        out += conversion.feed(piece)
    return out + conversion.close()


def convert(*pieces: bytes, **options: Any) -> list[bytes]:
    conversion = _pipeline(None, created=CREATED, **options).open()
    out: list[bytes] = []
    for piece in pieces:
        out += conversion.feed(piece)
    return out + conversion.close()


def errors(out: list[Any]) -> list[ErrorEvent]:
    return [item for item in out if isinstance(item, ErrorEvent)]


def one_error(out: list[Any], type_: str = "invalid_upstream_response") -> ErrorEvent:
    """The first error (a parse-only pipeline has no finish stage to end the stream at it)."""
    found = errors(out)
    assert found, out
    error = found[0]
    assert error.type == type_, error
    assert error.message
    return error


def stream_events(text: str = "Hello, wörld 👋") -> list[dict[str, Any]]:
    return [
        message_start(),
        *block_events(0, {"type": "text", "text": ""}, [{"type": "text_delta", "text": text}]),
        message_delta("end_turn"),
        {"type": "message_stop"},
    ]


def ping_event(end: str = "\n") -> bytes:
    return f'event: ping{end}data: {{"type": "ping"}}{end}{end}'.encode()


# -- line endings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("end", ["\n", "\r", "\r\n"], ids=["LF", "CR", "CRLF"])
def test_every_line_ending_gives_the_same_events(end: str) -> None:
    events = stream_events()
    assert parse(encode_sse(events, end=end)) == events


def test_mixed_line_endings() -> None:
    data = b'event: ping\r\ndata: {"type":"ping"}\r\r' + b'event: ping\rdata: {"type":"ping"}\n\r\n'
    assert parse(data) == [PING, PING]


@pytest.mark.parametrize("end", ["\r\n", "\r", "\n"], ids=["CRLF", "CR", "LF"])
def test_any_split_of_the_input_gives_the_same_events(end: str) -> None:
    data = encode_sse(stream_events(), end=end)
    whole = parse(data)
    for cut in range(len(data) + 1):
        assert parse(data[:cut], data[cut:]) == whole, cut


def test_crlf_split_across_feeds_is_one_line_break() -> None:
    assert parse(b"event: ping\r", b'\ndata: {"type":"ping"}\r', b"\n\r", b"\n") == [PING]


def test_empty_feeds_change_nothing_even_between_cr_and_lf() -> None:
    # feed(b"") is a legitimate read (an empty network chunk); it must not split a CRLF in two.
    assert parse(b"event: ping\r", b"", b'\ndata: {"type":"ping"}\r\n', b"", b"\r\n") == [PING]


def test_cr_cr_lf_is_two_line_breaks() -> None:
    # CR, then CRLF: the blank line that ends the event.
    assert parse(b'event: ping\ndata: {"type":"ping"}\r\r\n') == [PING]


# -- fields ----------------------------------------------------------------------------------------


def test_comments_are_ignored() -> None:
    data = b': hello\n:\nevent: ping\n: between\ndata: {"type":"ping"}\n: after\n\n: trailing comment\n\n'
    assert parse(data) == [PING]


def test_multi_line_data_is_joined_with_line_feeds() -> None:
    pretty = json.dumps({"type": "ping", "list": [1, 2]}, indent=2)
    data = "event: ping\n" + "".join(f"data: {line}\n" for line in pretty.split("\n")) + "\n"
    assert parse(data.encode()) == [{"type": "ping", "list": [1, 2]}]


def test_multi_line_data_joins_with_a_line_feed_not_nothing() -> None:
    # Joined with "\n" this is {"type":"ping","n":1\n2} (invalid); joined with "" it would be n=12.
    out = parse(b'event: ping\ndata: {"type":"ping","n":1\ndata: 2}\n\n')
    one_error(out)


def test_data_with_and_without_the_space() -> None:
    assert parse(b'event:ping\ndata:{"type":"ping"}\n\n') == [PING]
    assert parse(b'event: ping\ndata: {"type":"ping"}\n\n') == [PING]


def test_only_one_space_after_the_colon_is_stripped() -> None:
    # "event:  ping" names the event " ping", which does not match the data's type.
    one_error(parse(b'event:  ping\ndata: {"type":"ping"}\n\n'))
    assert parse(b'event: ping\ndata:  {"type":"ping"}\n\n') == [PING]  # " {...}" is still JSON


def test_a_field_without_a_colon_has_an_empty_value() -> None:
    # "data" alone appends an empty data line: {"type":"ping"\n\n} is valid JSON.
    assert parse(b'event: ping\ndata: {"type":"ping"\ndata\ndata: }\n\n') == [PING]
    # "event" alone names the event "", which does not match the data's type.
    one_error(parse(b'event\ndata: {"type":"ping"}\n\n'))


def test_unknown_fields_id_and_retry_are_ignored() -> None:
    data = b'id: 7\nevent: ping\nretry: 1000\nfoo: bar\nid\nbaz\ndata: {"type":"ping"}\n\n'
    assert parse(data) == [PING]


def test_event_line_may_follow_the_data_lines() -> None:
    assert parse(b'data: {"type":"ping"}\nevent: ping\n\n') == [PING]


def test_extra_blank_lines_between_events_are_harmless() -> None:
    assert parse(b"\n\n\n" + ping_event() + b"\n\n\n" + ping_event()) == [PING, PING]


def test_an_event_with_no_data_is_not_dispatched() -> None:
    assert parse(b"event: ping\n\n" + ping_event()) == [PING]


# -- BOM -------------------------------------------------------------------------------------------


def test_bom_at_the_start_is_skipped() -> None:
    assert parse(BOM + ping_event()) == [PING]


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_bom_split_across_feeds_is_skipped(cut: int) -> None:
    assert parse(BOM[:cut], BOM[cut:], ping_event()) == [PING]
    assert parse(BOM[:cut], (BOM + ping_event())[cut:]) == [PING]


def test_bom_byte_by_byte_is_skipped() -> None:
    data = BOM + ping_event()
    assert parse(*(data[i : i + 1] for i in range(len(data)))) == [PING]


def test_bom_not_at_the_start_is_not_stripped() -> None:
    # A second BOM turns "event" into "\ufeffevent", an unknown field: the data has no name.
    one_error(parse(BOM + BOM + ping_event()))
    out = parse(ping_event() + BOM + ping_event())
    assert out[0] == PING
    one_error(out)


def test_a_bom_prefix_that_is_not_a_bom_is_kept() -> None:
    out = parse(b"\xef\xbb", b"x" + ping_event())
    # The first line "\xef\xbbxevent: ping" is an unknown field (not UTF-8 either): no event name.
    one_error(out)


# -- UTF-8 -----------------------------------------------------------------------------------------


def test_splits_inside_multi_byte_sequences() -> None:
    events = stream_events("日本語 😀 e\u0301 👨‍👩‍👧")
    data = encode_sse(events)
    assert parse(*(data[i : i + 1] for i in range(len(data)))) == events
    assert parse(*(data[i : i + 7] for i in range(0, len(data), 7))) == events


@pytest.mark.parametrize("bad", [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf0\x9f\x98"], ids=repr)
def test_invalid_utf8_is_an_in_band_error(bad: bytes) -> None:
    data = encode_sse(stream_events("PLACEHOLDER")).replace(b"PLACEHOLDER", b"ok " + bad + b" ok")
    stream = read_openai_stream(convert(data))
    assert stream.error is not None and stream.error["type"] == "invalid_upstream_response"
    assert "utf-8" in stream.error["message"].lower()
    assert stream.text == ""  # R53: never silently replaced


# -- bad JSON, names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload", [b"{", b'{"type": "ping",}', b"nope", b"", b"{'type': 'ping'}", b'{"type":"ping"} x']
)
def test_malformed_json_is_an_in_band_error(payload: bytes) -> None:
    error = one_error(parse(b"event: ping\ndata: " + payload + b"\n\n"))
    assert "json" in error.message.lower()


@pytest.mark.parametrize("payload", [b"[]", b'"ping"', b"1", b"null", b"true", b'[{"type":"ping"}]'])
def test_json_that_is_not_an_object_is_an_error(payload: bytes) -> None:
    one_error(parse(b"event: ping\ndata: " + payload + b"\n\n"))


def test_data_without_an_event_line_is_an_error() -> None:
    error = one_error(parse(b'data: {"type":"ping"}\n\n'))
    assert "event" in error.message


@pytest.mark.parametrize(
    "name", [b"message_start", b"pong", b"", b"PING", b"ping ", b"\xff"], ids=lambda n: repr(n)
)
def test_event_name_must_equal_the_data_type(name: bytes) -> None:
    one_error(parse(b"event: " + name + b'\ndata: {"type":"ping"}\n\n'))


def test_data_without_a_string_type_is_an_error_when_named() -> None:
    one_error(parse(b'event: ping\ndata: {"kind":"ping"}\n\n'))
    one_error(parse(b'event: 1\ndata: {"type":1}\n\n'))


def test_parse_errors_end_the_default_stream_in_band() -> None:
    data = encode_sse(stream_events()[:1]) + b'event: ping\ndata: {"type": "ping",}\n\n'
    stream = read_openai_stream(convert(data))
    assert stream.error is not None and stream.error["type"] == "invalid_upstream_response"
    assert stream.error["code"] == "invalid_upstream_response" and stream.error["param"] is None


# -- end of input (R51) and after message_stop (R52) ----------------------------------------------


def test_last_event_without_its_blank_line_is_dispatched_at_close() -> None:
    data = encode_sse(stream_events())
    assert data.endswith(b"\n\n")
    stream = read_openai_stream(convert(data[:-1]))
    assert stream.finish_reason == "stop" and stream.error is None
    assert parse(data[:-1]) == stream_events()


@pytest.mark.parametrize("end", ["\r", "\r\n"])
def test_last_event_ended_by_cr_is_complete(end: str) -> None:
    data = encode_sse(stream_events(), end=end)
    stream = read_openai_stream(convert(data[: -len(end)]))
    assert stream.finish_reason == "stop"


def test_an_event_cut_inside_a_line_is_not_dispatched() -> None:
    data = encode_sse(stream_events())
    cut = data[:-2]  # message_stop's data line lacks its line break
    assert cut.endswith(b"}")
    *events, error = parse(cut)
    assert events == stream_events()[:-1]
    # Its JSON is whole, so the message says what is missing (a recording saved without it).
    assert error == ErrorEvent(
        "upstream_truncated",
        "the input's last event ('message_stop') has no blank line after it (not even a line break), "
        "so it was not used: server-sent events end with a blank line; was the recording saved without "
        "its last newlines?",
    )
    stream = read_openai_stream(convert(cut))
    assert stream.finish_chunks == [] and stream.error is not None
    assert stream.error["type"] == "upstream_truncated"


@pytest.mark.parametrize(
    ("data", "kind", "message"),
    [
        (
            b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}\n',
            "upstream_error",
            "authentication_error: invalid x-api-key (the input is the API's JSON error response",
        ),
        (
            b'{"id":"msg_1","type":"message","role":"assistant","content":[]}',
            "invalid_upstream_response",
            'the input is a whole JSON message, not a stream: was the request sent without "stream": true?',
        ),
        (
            b'{"type":"message_start","message":{}}\n{"type":"ping"}\n',
            "invalid_upstream_response",
            "no server-sent events in the input; is it JSON lines? try --input-format jsonl",
        ),
    ],
)
def test_input_that_is_not_server_sent_events_says_what_it_is(data: bytes, kind: str, message: str) -> None:
    (error,) = parse(data)
    assert isinstance(error, ErrorEvent) and error.type == kind
    assert error.message.startswith(message)
    stream = read_openai_stream(convert(data))
    assert stream.error is not None and stream.error["message"].startswith(message)


def test_truncation_is_an_in_band_error_not_a_finish() -> None:
    data = encode_sse(stream_events()[:-1])  # no message_stop at all
    stream = read_openai_stream(convert(data))
    assert stream.error is not None and stream.error["type"] == "upstream_truncated"
    assert stream.text == "Hello, wörld 👋"


@pytest.mark.parametrize(
    "tail",
    [
        b"\xff\xfe garbage {{{\n\n",
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n',
        b"data: no event line\n\n",
        b"event: ping\ndata: " + b"x" * 5000,
    ],
    ids=["garbage", "error-event", "nameless", "long-line"],
)
def test_input_after_message_stop_is_ignored(tail: bytes) -> None:
    data = encode_sse(stream_events())
    expected = convert(data)
    assert convert(data + tail) == expected
    assert convert(data, tail) == expected
    assert convert(data[:-1], data[-1:] + tail) == expected
    assert convert(data + tail, max_event_bytes=1024) == expected


def test_a_second_response_after_message_stop_is_ignored() -> None:
    data = encode_sse(stream_events())
    second = encode_sse(stream_events("second response"))
    stream = read_openai_stream(convert(data + second))
    assert stream.text == "Hello, wörld 👋"
    assert convert(data + second) == convert(data)


# -- size limit ------------------------------------------------------------------------------------


def test_a_long_line_fed_in_small_pieces_hits_the_limit() -> None:
    conversion = chunkline.Pipeline(max_event_bytes=4096, created=CREATED).open()
    out: list[bytes] = []
    out += conversion.feed(encode_sse(stream_events()[:1]))
    out += conversion.feed(b"event: content_block_start\ndata: {")
    for _ in range(100):
        out += conversion.feed(b"x" * 100)
    out += conversion.close()
    stream = read_openai_stream(out)
    assert stream.error is not None and stream.error["type"] == "limit_exceeded"
    assert "max_event_bytes" in stream.error["message"]


def test_memory_stays_bounded_when_the_limit_is_hit() -> None:
    conversion = chunkline.Pipeline(max_event_bytes=64 * 1024).open()
    piece = b"y" * 4096
    tracemalloc.start()
    try:
        out = conversion.feed(b"event: ping\ndata: ")
        for _ in range(2000):  # 8 MB offered in total
            out += conversion.feed(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    out += conversion.close()
    assert peak < 1024 * 1024, peak
    assert read_openai_stream(out).error["type"] == "limit_exceeded"


@pytest.mark.parametrize("piece", [None, 100], ids=["whole", "100-byte-pieces"])
def test_many_short_data_lines_adding_up_past_the_limit(piece: int | None) -> None:
    lines = b"".join(b"data: " + b" " * 60 + b"\n" for _ in range(40))
    data = b"event: ping\n" + lines + b'data: {"type":"ping"}\n\n'
    pieces = [data] if piece is None else [data[i : i + piece] for i in range(0, len(data), piece)]
    one_error(parse(*pieces, max_event_bytes=1024), "limit_exceeded")


def test_an_event_under_the_limit_passes() -> None:
    payload = json.dumps({"type": "ping", "pad": "x" * 900}).encode()
    assert parse(b"event: ping\ndata: " + payload + b"\n\n", max_event_bytes=1024)[0]["type"] == "ping"


@pytest.mark.parametrize("piece", [None, 1000, 100], ids=["whole", "1000-byte-pieces", "100-byte-pieces"])
def test_the_limit_does_not_depend_on_how_the_input_is_split(piece: int | None) -> None:
    # One 2000-byte event with max_event_bytes=1024 is too large however it arrives.
    data = b'event: ping\ndata: {"type":"ping","pad":"' + b"x" * 2000 + b'"}\n\n'
    pieces = [data] if piece is None else [data[i : i + piece] for i in range(0, len(data), piece)]
    one_error(parse(*pieces, max_event_bytes=1024), "limit_exceeded")


@pytest.mark.parametrize("value", [0, 1023, -1, "big", 1.5e6, True, None])
def test_max_event_bytes_is_checked(value: Any) -> None:
    with pytest.raises(chunkline.OptionError):
        chunkline.Pipeline(max_event_bytes=value)


# -- JSON lines ------------------------------------------------------------------------------------


def jsonl(events: list[dict[str, Any]], end: str = "\n") -> bytes:
    return "".join(json.dumps(e, ensure_ascii=False) + end for e in events).encode()


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_jsonl_input(end: str) -> None:
    events = stream_events()
    data = jsonl(events, end)
    assert parse(data, input_format="jsonl") == events
    assert parse(*(data[i : i + 5] for i in range(0, len(data), 5)), input_format="jsonl") == events
    assert convert(data, input_format="jsonl") == convert(encode_sse(events))


def test_jsonl_skips_blank_lines_and_needs_no_event_names() -> None:
    assert parse(b'\n  \n{"type":"ping"}\n\n{"type":"ping"}\n', input_format="jsonl") == [PING, PING]


def test_jsonl_bom_is_skipped() -> None:
    assert parse(BOM + b'{"type":"ping"}\n', input_format="jsonl") == [PING]


def test_jsonl_bad_lines_are_errors() -> None:
    one_error(parse(b'{"type":"ping"\n', input_format="jsonl"))
    one_error(parse(b"[1, 2]\n", input_format="jsonl"))
    one_error(parse(b'{"type":"ping"}\xff\n', input_format="jsonl"))


def test_jsonl_sse_input_is_an_error() -> None:
    stream = read_openai_stream(convert(ping_event(), input_format="jsonl"))
    assert stream.error is not None and stream.error["type"] == "invalid_upstream_response"


def test_input_format_is_checked() -> None:
    with pytest.raises(chunkline.OptionError):
        chunkline.Pipeline(input_format="xml")
