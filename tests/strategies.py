"""Hypothesis strategies for Anthropic streams, their SSE framing and feed splits; output readers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "ALL_BLOCK_KINDS",
    "CREATED",
    "FINISH_MAP",
    "ExpectedCall",
    "OpenAIStream",
    "anthropic_streams",
    "block_events",
    "encode_sse",
    "expected_finish_reason",
    "expected_reasoning",
    "expected_text",
    "expected_tool_calls",
    "expected_usage",
    "framed_streams",
    "line_break_points",
    "message_delta",
    "message_start",
    "read_openai_stream",
    "split_at",
    "split_points",
    "splits",
    "sse_framing",
    "texts",
]

CREATED = 1_700_000_000
"""A fixed ``created`` value, so outputs of different runs can be compared byte for byte."""

# ---------------------------------------------------------------------------------------------
# Building blocks for hand-written streams (used by the unit tests too).
# ---------------------------------------------------------------------------------------------


def message_start(
    msg_id: str = "msg_01",
    model: str = "claude-test-1",
    usage: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``message_start`` event as the API sends it."""
    message = {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1} if usage is None else usage,
        **extra,
    }
    return {"type": "message_start", "message": message}


def message_delta(
    stop_reason: str | None = "end_turn",
    usage: dict[str, Any] | None = None,
    stop_sequence: str | None = None,
) -> dict[str, Any]:
    """A ``message_delta`` event; ``usage=None`` gives ``{"output_tokens": 5}``."""
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
        "usage": {"output_tokens": 5} if usage is None else usage,
    }


def block_events(
    index: int, block: dict[str, Any], deltas: list[dict[str, Any]] | tuple[()] = ()
) -> list[dict[str, Any]]:
    """``content_block_start``, one ``content_block_delta`` per delta, ``content_block_stop``."""
    return [
        {"type": "content_block_start", "index": index, "content_block": block},
        *({"type": "content_block_delta", "index": index, "delta": d} for d in deltas),
        {"type": "content_block_stop", "index": index},
    ]


def encode_sse(events: list[dict[str, Any]], *, end: str = "\n") -> bytes:
    """The plain SSE framing the API uses: ``event:``, one ``data:`` line, a blank line."""
    out = []
    for event in events:
        out.append(f"event: {event['type']}{end}data: {json.dumps(event, ensure_ascii=False)}{end}{end}")
    return "".join(out).encode()


# ---------------------------------------------------------------------------------------------
# (a) Valid Anthropic event streams.
# ---------------------------------------------------------------------------------------------

SPECIAL_TEXTS = [
    "",
    " ",
    "   ",
    "\n",
    "\n\n",
    "\r\n",
    "\t",
    " \n \n",
    "Hello",
    "Hello, world. ",
    "Done! Next? Yes.",
    "e\u0301",  # combining acute accent
    "a\u0300\u0301\u0302",
    "👍🏽",
    "👨‍👩‍👧‍👦",
    "🇯🇵",
    "日本語のテキスト。",
    "中文\uff0c标点\uff01",  # fullwidth comma and exclamation mark
    "한국어",
    "\u200b\u200d",
    "\u2028\u2029",
    "\x00\x1f",
    "\ufeff",
    '"\\',
    "data: not a frame\n\n",
    "event: ping\r\n",
    "word  word\t\tword\n\nword",
]

_ALPHABET = list(" \n\t.!?,;:'\"abcXYZ01日本😀👍🏽\u0301\u3002…")

texts = st.one_of(
    st.text(max_size=30),
    st.sampled_from(SPECIAL_TEXTS),
    st.text(alphabet=st.sampled_from(_ALPHABET), max_size=40),
)
"""Text fragments from all of Unicode (no surrogates), biased towards whitespace, emoji, CJK and
combining marks; the empty string included."""

_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_ids = st.text(alphabet=_ID_CHARS, min_size=1, max_size=24)

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=12),
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
json_objects = st.dictionaries(st.text(max_size=8), _json_values, max_size=4)

STOP_REASONS = [
    "end_turn",
    "max_tokens",
    "tool_use",
    "stop_sequence",
    "refusal",
    "pause_turn",
    "model_context_window_exceeded",
    "compaction",
]
stop_reasons = st.one_of(
    st.sampled_from(STOP_REASONS), st.text(alphabet="abcdefgh_", min_size=1, max_size=12)
)

FINISH_MAP = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
    "pause_turn": "length",
    "compaction": "stop",
}

ALL_BLOCK_KINDS = ("text", "thinking", "redacted_thinking", "tool_use", "server_tool", "other")

_SERVER_RESULT_TYPES = [
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
    "mcp_tool_result",
    "container_upload",
]
_SERVER_USE_TYPES = ["server_tool_use", "mcp_tool_use"]


@st.composite
def _fragments(draw: st.DrawFn, text: str) -> list[str]:
    """``text`` cut at random points (empty fragments included)."""
    points = sorted(draw(st.lists(st.integers(0, len(text)), max_size=6)))
    return split_at(text, points)


@st.composite
def _text_block(draw: st.DrawFn, index: int, dumped: bool) -> list[dict[str, Any]]:
    block: dict[str, Any] = {"type": "text", "text": draw(st.sampled_from(["", "", "", "Hi "]))}
    if dumped:
        block["citations"] = None
    deltas: list[dict[str, Any]] = []
    for piece in draw(st.lists(texts, max_size=6)):
        deltas.append({"type": "text_delta", "text": piece})
        if draw(st.integers(0, 9)) == 0:
            deltas.append(
                {
                    "type": "citations_delta",
                    "citation": {
                        "type": "char_location",
                        "cited_text": draw(texts),
                        "document_index": 0,
                        "document_title": None,
                        "start_char_index": 0,
                        "end_char_index": 3,
                    },
                }
            )
    return block_events(index, block, deltas)


@st.composite
def _thinking_block(draw: st.DrawFn, index: int, dumped: bool) -> list[dict[str, Any]]:
    block = {"type": "thinking", "thinking": "", "signature": ""}
    deltas: list[dict[str, Any]] = [
        {"type": "thinking_delta", "thinking": piece} for piece in draw(st.lists(texts, max_size=5))
    ]
    if draw(st.booleans()):
        deltas.append({"type": "signature_delta", "signature": "SIGNATURE_" + draw(_ids)})
    return block_events(index, block, deltas)


@st.composite
def _redacted_block(draw: st.DrawFn, index: int, dumped: bool) -> list[dict[str, Any]]:
    return block_events(index, {"type": "redacted_thinking", "data": "REDACTED_" + draw(_ids)})


@st.composite
def _tool_use_block(draw: st.DrawFn, index: int, dumped: bool) -> list[dict[str, Any]]:
    variant = draw(
        st.sampled_from(["streamed", "streamed", "streamed", "empty", "blank_deltas", "start_input"])
    )
    block: dict[str, Any] = {
        "type": "tool_use",
        "id": "toolu_" + draw(_ids),
        "name": draw(st.sampled_from(["get_weather", "search", "f", "ツール"])),
        "input": {},
    }
    if dumped:
        block["caller"] = None
    fragments: list[str] = []
    if variant == "streamed":
        arguments = json.dumps(
            draw(json_objects),
            ensure_ascii=draw(st.booleans()),
            indent=draw(st.sampled_from([None, None, 2])),
        )
        fragments = draw(_fragments(arguments))
    elif variant == "blank_deltas":
        fragments = [""] * draw(st.integers(1, 3))
    elif variant == "start_input":
        block["input"] = draw(json_objects.filter(bool))
    deltas = [{"type": "input_json_delta", "partial_json": f} for f in fragments]
    return block_events(index, block, deltas)


@st.composite
def _server_tool_blocks(draw: st.DrawFn, index: int, dumped: bool) -> list[dict[str, Any]]:
    tool_id = "srvtoolu_" + draw(_ids)
    use = {"type": draw(st.sampled_from(_SERVER_USE_TYPES)), "id": tool_id, "name": "web_search", "input": {}}
    query = json.dumps({"query": draw(texts)})
    deltas = [{"type": "input_json_delta", "partial_json": f} for f in draw(_fragments(query))]
    result = {
        "type": draw(st.sampled_from(_SERVER_RESULT_TYPES)),
        "tool_use_id": tool_id,
        "content": [{"type": "web_search_result", "title": draw(texts), "url": "https://example.com"}],
    }
    return block_events(index, use, deltas) + block_events(index + 1, result)


@st.composite
def _other_block(draw: st.DrawFn, index: int, dumped: bool) -> list[dict[str, Any]]:
    block = {
        "type": draw(st.sampled_from(["future_widget", "compaction", "hologram"])),
        "payload": draw(texts),
    }
    deltas = [
        draw(
            st.sampled_from(
                [
                    {"type": "future_delta", "stuff": "x"},
                    {"type": "compaction_delta", "content": "summary"},
                    {"type": "input_json_delta", "partial_json": '{"a"'},
                    {"type": "text_delta", "text": "must not leak"},
                ]
            )
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    return block_events(index, block, deltas)


_BLOCKS = {
    "text": _text_block,
    "thinking": _thinking_block,
    "redacted_thinking": _redacted_block,
    "tool_use": _tool_use_block,
    "server_tool": _server_tool_blocks,
    "other": _other_block,
}


@st.composite
def _start_usage(draw: st.DrawFn, dumped: bool) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "input_tokens": draw(st.integers(0, 100_000)),
        "output_tokens": draw(st.integers(0, 3)),
    }
    for key in ("cache_creation_input_tokens", "cache_read_input_tokens"):
        how = draw(st.sampled_from(["absent", "none", "int"]))
        if how == "int":
            usage[key] = draw(st.integers(0, 50_000))
        elif how == "none" or dumped:
            usage[key] = None
    if draw(st.booleans()):
        usage["service_tier"] = "standard"
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}
    if dumped:
        usage.setdefault("server_tool_use", None)
        usage.setdefault("output_tokens_details", None)
    return usage


@st.composite
def _delta_usage(draw: st.DrawFn, output_tokens: int, dumped: bool) -> dict[str, Any] | None:
    if draw(st.integers(0, 7)) == 0:
        return None  # R47: message_delta.usage may be absent
    usage: dict[str, Any] = {"output_tokens": output_tokens}
    for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        how = draw(st.sampled_from(["absent", "absent", "none", "int"]))
        if how == "int":
            usage[key] = draw(st.integers(0, 100_000))
        elif how == "none" or dumped:
            usage[key] = None
    if draw(st.integers(0, 3)) == 0:
        usage["output_tokens_details"] = {"thinking_tokens": draw(st.integers(0, output_tokens))}
    elif dumped:
        usage["output_tokens_details"] = None
    if draw(st.integers(0, 4)) == 0:
        usage["server_tool_use"] = {"web_search_requests": draw(st.integers(0, 3))}
    return usage


@st.composite
def anthropic_streams(
    draw: st.DrawFn,
    *,
    kinds: tuple[str, ...] = ALL_BLOCK_KINDS,
    max_blocks: int = 5,
    pings: bool = True,
) -> list[dict[str, Any]]:
    """A complete, valid Anthropic Messages stream as a list of event dicts: ``message_start``,
    content blocks of the given kinds in order, one or more ``message_delta`` (cumulative usage,
    the last with a stop reason), ``message_stop``, and ``ping`` events anywhere."""
    dumped = draw(st.booleans())  # model_dump()-style dicts carry None for absent fields
    start = message_start(
        msg_id="msg_" + draw(_ids),
        model=draw(st.one_of(st.sampled_from(["claude-sonnet-4-5", "claude-opus-4-1"]), st.text(min_size=1))),
        usage=draw(_start_usage(dumped)),
    )
    events = [start]
    index = 0
    weighted = (*kinds, "text", "text") if "text" in kinds else kinds  # text is the common case
    for kind in draw(st.lists(st.sampled_from(weighted), max_size=max_blocks)):
        block = draw(_BLOCKS[kind](index, dumped))
        index += sum(1 for e in block if e["type"] == "content_block_start")
        events += block
    output_tokens = start["message"]["usage"]["output_tokens"]
    n_deltas = draw(st.integers(1, 2))
    for i in range(n_deltas):
        output_tokens += draw(st.integers(0, 500))
        last = i == n_deltas - 1
        reason = draw(stop_reasons) if last else draw(st.one_of(st.none(), stop_reasons))
        sequence = draw(texts) if reason == "stop_sequence" else None
        event: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
        }
        usage = draw(_delta_usage(output_tokens, dumped))
        if usage is not None:
            event["usage"] = usage
        elif dumped:
            event["usage"] = None
        events.append(event)
    events.append({"type": "message_stop"})
    if pings:
        for position in sorted(draw(st.lists(st.integers(0, len(events) - 1), max_size=3)), reverse=True):
            events.insert(position, {"type": "ping"})
    return events


# ---------------------------------------------------------------------------------------------
# What a stream means (computed from the dicts, independently of chunkline).
# ---------------------------------------------------------------------------------------------


def _blocks(events: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each content block's start block and its deltas, in block order."""
    blocks: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for event in events:
        if event["type"] == "content_block_start":
            blocks[event["index"]] = (event["content_block"], [])
        elif event["type"] == "content_block_delta":
            blocks[event["index"]][1].append(event["delta"])
    return [blocks[i] for i in sorted(blocks)]


def expected_text(events: list[dict[str, Any]]) -> str:
    """``"".join`` of the text blocks' text, as the anthropic SDK accumulates it."""
    out = []
    for block, deltas in _blocks(events):
        if block["type"] == "text":
            out.append(block.get("text") or "")
            out += [d["text"] for d in deltas if d["type"] == "text_delta"]
    return "".join(out)


def expected_reasoning(events: list[dict[str, Any]]) -> str:
    """All thinking text, in order."""
    out = []
    for block, deltas in _blocks(events):
        if block["type"] == "thinking":
            out.append(block.get("thinking") or "")
            out += [d["thinking"] for d in deltas if d["type"] == "thinking_delta"]
    return "".join(out)


@dataclass
class ExpectedCall:
    """One client tool call: ``arguments`` is the exact string expected (joined fragments, or
    ``"{}"``), or ``None`` when it is the start block's ``input`` serialised (compare parsed)."""

    id: str
    name: str
    arguments: str | None
    input: Any


def expected_tool_calls(events: list[dict[str, Any]]) -> list[ExpectedCall]:
    """The client tool calls (``tool_use`` blocks only), in block order."""
    calls = []
    for block, deltas in _blocks(events):
        if block["type"] != "tool_use":
            continue
        joined = "".join(d["partial_json"] for d in deltas if d["type"] == "input_json_delta")
        if joined:
            calls.append(ExpectedCall(block["id"], block["name"], joined, None))
        elif block.get("input"):
            calls.append(ExpectedCall(block["id"], block["name"], None, block["input"]))
        else:
            calls.append(ExpectedCall(block["id"], block["name"], "{}", {}))
    return calls


def expected_finish_reason(events: list[dict[str, Any]]) -> str:
    """R22/R24: the last message_delta's stop reason mapped; tool_calls only with a client call."""
    reason = None
    for event in events:
        if event["type"] == "message_delta":
            reason = event["delta"].get("stop_reason")
    finish = FINISH_MAP.get(reason or "", "stop")
    if finish == "tool_calls" and not expected_tool_calls(events):
        finish = "stop"
    return finish


def expected_usage(events: list[dict[str, Any]]) -> dict[str, Any]:
    """R37/R38: the usage object built from the final cumulative counts."""
    counts: dict[str, int] = {}
    thinking = None
    usages = []
    for event in events:
        if event["type"] == "message_start":
            usages.append(event["message"].get("usage"))
        elif event["type"] == "message_delta":
            usages.append(event.get("usage"))
    for usage in usages:
        if not usage:
            continue
        for key in (
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        ):
            if usage.get(key) is not None:
                counts[key] = usage[key]
        details = usage.get("output_tokens_details")
        if isinstance(details, dict) and details.get("thinking_tokens") is not None:
            thinking = details["thinking_tokens"]
    cache_read = counts.get("cache_read_input_tokens", 0)
    prompt = counts.get("input_tokens", 0) + cache_read + counts.get("cache_creation_input_tokens", 0)
    completion = counts.get("output_tokens", 0)
    body: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read},
    }
    if thinking is not None:
        body["completion_tokens_details"] = {"reasoning_tokens": thinking}
    return body


# ---------------------------------------------------------------------------------------------
# (b) SSE framing.
# ---------------------------------------------------------------------------------------------

_ENDINGS = ["\n", "\r", "\r\n"]


@st.composite
def _event_lines(draw: st.DrawFn, event: dict[str, Any]) -> list[str]:
    """The lines of one SSE event (without the blank line that ends it)."""
    ensure_ascii = draw(st.booleans())
    if draw(st.integers(0, 3)) == 0:
        # Pretty-printed JSON over several data: lines; joined with "\n" it is the same JSON.
        payload_lines = json.dumps(event, ensure_ascii=ensure_ascii, indent=draw(st.integers(0, 3))).split(
            "\n"
        )
    else:
        separators = draw(st.sampled_from([(",", ":"), (", ", ": ")]))
        payload_lines = [json.dumps(event, ensure_ascii=ensure_ascii, separators=separators)]
    lines = [draw(st.sampled_from(["data: ", "data:"])) + line for line in payload_lines]
    name_line = draw(st.sampled_from(["event: ", "event:"])) + event["type"]
    lines.insert(draw(st.integers(0, len(lines))), name_line)
    extras = draw(
        st.lists(
            st.sampled_from(
                [": comment", ":", ": ping", "id: 42", "id", "retry: 3000", "x-unknown: 1", "foo"]
            ),
            max_size=2,
        )
    )
    for extra in extras:
        lines.insert(draw(st.integers(0, len(lines))), extra)
    return lines


@st.composite
def sse_framing(draw: st.DrawFn, events: list[dict[str, Any]]) -> bytes:
    """``events`` framed as SSE in any of the ways a conforming decoder must accept: LF, CR or
    CRLF line endings (mixed or not), comments, ``data:`` with and without the space, data
    over several lines, unknown fields, an optional UTF-8 BOM."""
    mixed = draw(st.booleans())
    fixed = draw(st.sampled_from(_ENDINGS))
    out: list[str] = []
    previous = "\n"
    for event in events:
        for line in [*draw(_event_lines(event)), ""]:
            ending = draw(st.sampled_from(_ENDINGS)) if mixed else fixed
            if previous == "\r" and line == "" and ending == "\n":
                ending = "\r"  # CR then LF would read as one CRLF, eating the blank line
            out.append(line + ending)
            previous = ending
    data = "".join(out).encode()
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data


@st.composite
def framed_streams(
    draw: st.DrawFn, streams: st.SearchStrategy[list[dict[str, Any]]] | None = None
) -> tuple[list[dict[str, Any]], bytes]:
    """A valid stream and one SSE framing of it."""
    events = draw(streams if streams is not None else anthropic_streams())
    return events, draw(sse_framing(events))


# ---------------------------------------------------------------------------------------------
# (c) Split points.
# ---------------------------------------------------------------------------------------------


def split_at(data: Any, points: list[int]) -> list[Any]:
    """``data`` cut at the sorted ``points`` (repeated points give empty pieces)."""
    pieces = []
    last = 0
    for point in sorted(points):
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


@st.composite
def split_points(draw: st.DrawFn, length: int) -> list[int]:
    """Where to cut an input of ``length`` bytes: random points, every byte, or every 7 bytes."""
    how = draw(st.sampled_from(["random", "random", "random", "bytes", "sevens"]))
    if how == "bytes":
        return list(range(1, length))
    if how == "sevens":
        return list(range(7, length, 7))
    return sorted(draw(st.lists(st.integers(0, length), max_size=30)))


@st.composite
def line_break_points(draw: st.DrawFn, data: bytes) -> list[int]:
    """Cuts right after some CR and LF bytes, some of them twice (an empty read in between)."""
    points = []
    for position, byte in enumerate(data):
        if byte in b"\r\n" and draw(st.integers(0, 3)) == 0:
            points += [position + 1] * draw(st.integers(1, 2))
    return points


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` as a list of pieces to feed one by one (empty pieces included)."""
    if draw(st.integers(0, 4)) == 0:
        return split_at(data, draw(line_break_points(data)))
    return split_at(data, draw(split_points(len(data))))


# ---------------------------------------------------------------------------------------------
# Reading the converter's output.
# ---------------------------------------------------------------------------------------------


@dataclass
class OpenAIStream:
    """What an OpenAI client makes of the output (and the checks that it is a valid stream)."""

    payloads: list[Any] = field(default_factory=list)
    chunks: list[dict[str, Any]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    reasoning: dict[str, list[str]] = field(default_factory=dict)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    tool_fragments: dict[int, list[str]] = field(default_factory=dict)
    finish_chunks: list[dict[str, Any]] = field(default_factory=list)
    usage_chunks: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.content)

    @property
    def finish_reason(self) -> str | None:
        return self.finish_chunks[0]["choices"][0]["finish_reason"] if self.finish_chunks else None

    @property
    def error(self) -> dict[str, Any] | None:
        return self.errors[0]["error"] if self.errors else None


def read_openai_stream(outputs: list[bytes], *, check: bool = True) -> OpenAIStream:
    """Parse the converter's outputs (each one whole SSE event) and, with ``check``, assert the
    wire rules a client relies on (R1-R19, R33, R40, R41, R52)."""
    stream = OpenAIStream()
    for out in outputs:
        assert isinstance(out, bytes), out
        assert out.endswith(b"\n\n") and out.count(b"\n\n") == 1 and b"\r" not in out, out
        line = out[:-2].decode("utf-8")
        assert "\n" not in line, out
        if line.startswith(":"):
            stream.comments.append(line)
            continue
        assert line.startswith("data: "), out  # R4: never an event: line
        raw = line[6:]
        if raw == "[DONE]":
            stream.payloads.append("[DONE]")
            continue
        payload = json.loads(raw)
        assert isinstance(payload, dict), raw
        stream.payloads.append(payload)
        if "error" in payload:
            stream.errors.append(payload)
            continue
        stream.chunks.append(payload)
        choices = payload["choices"]
        if not choices:
            stream.usage_chunks.append(payload)
            continue
        (choice,) = choices
        delta = choice["delta"]
        if choice["finish_reason"] is not None:
            stream.finish_chunks.append(payload)
        if delta.get("content"):
            stream.content.append(delta["content"])
        for key in ("reasoning_content", "reasoning"):
            if key in delta:
                stream.reasoning.setdefault(key, []).append(delta[key])
        for call in delta.get("tool_calls") or ():
            entry = stream.tool_calls.setdefault(call["index"], {"id": None, "name": None, "arguments": ""})
            if "id" in call:
                entry["id"] = call["id"]
                entry["name"] = call["function"]["name"]
                entry["type"] = call.get("type")
            entry["arguments"] += call["function"]["arguments"]
            stream.tool_fragments.setdefault(call["index"], []).append(call["function"]["arguments"])
    if check:
        _check(stream)
    return stream


def _check(stream: OpenAIStream) -> None:
    payloads = stream.payloads
    assert payloads and payloads[-1] == "[DONE]", "the stream must end with [DONE] (R5)"
    assert payloads.count("[DONE]") == 1, "[DONE] exactly once, last (R52)"
    assert len(stream.finish_chunks) + len(stream.errors) == 1, "exactly one finish or one error (R19, R41)"
    if stream.errors:
        error = stream.errors[0]
        assert payloads[-2] is error, "the error is the last event before [DONE]"
        assert set(error) == {"error"} and set(error["error"]) == {"message", "type", "param", "code"}
        assert error["error"]["param"] is None and isinstance(error["error"]["message"], str)
        assert error["error"]["message"] and isinstance(error["error"]["type"], str)
    ids = {c["id"] for c in stream.chunks}
    assert len(ids) <= 1, "one id on every chunk (R7)"
    assert len({c["created"] for c in stream.chunks}) <= 1 and len({c["model"] for c in stream.chunks}) <= 1
    seen_finish = False
    tool_indices_seen: list[int] = []
    for number, chunk in enumerate(stream.chunks):
        assert {"id", "object", "created", "model", "choices"} <= set(chunk), chunk
        assert chunk["object"] == "chat.completion.chunk"
        assert isinstance(chunk["id"], str) and isinstance(chunk["model"], str)
        assert type(chunk["created"]) is int
        assert "error" not in chunk
        if not chunk["choices"]:
            assert seen_finish and chunk is stream.chunks[-1], "usage chunk is last (R33, R34)"
            assert isinstance(chunk["usage"], dict)
            continue
        assert not seen_finish, "nothing but the usage chunk after the finish chunk (R19)"
        (choice,) = chunk["choices"]
        assert choice["index"] == 0 and isinstance(choice["delta"], dict) and "logprobs" in choice
        delta = choice["delta"]
        if number == 0:
            assert delta == {"role": "assistant", "content": ""}, "the role chunk comes first (R10)"
        else:
            assert "role" not in delta, "role exactly once (R10)"
        if choice["finish_reason"] is not None:
            seen_finish = True
            assert choice["finish_reason"] in {"stop", "length", "tool_calls", "content_filter"}
            assert delta == {}
        for key in ("content", "reasoning_content", "reasoning"):
            if key in delta:
                assert isinstance(delta[key], str)
        if "tool_calls" in delta:
            calls = delta["tool_calls"]
            assert isinstance(calls, list) and calls, "omit tool_calls rather than send [] (R12)"
            assert len({c["index"] for c in calls}) == len(calls), "one entry per index per chunk (R13)"
            for call in calls:
                assert isinstance(call["function"]["arguments"], str)
                if call["index"] not in tool_indices_seen:
                    assert call["index"] == len(tool_indices_seen), "0-based contiguous indices (R13)"
                    tool_indices_seen.append(call["index"])
                    assert call["id"] and call["type"] == "function" and call["function"]["name"], call
                else:
                    assert set(call) == {"index", "function"} and set(call["function"]) == {"arguments"}
    if stream.finish_chunks:
        assert stream.chunks[0]["choices"], "the stream starts with the role chunk"
