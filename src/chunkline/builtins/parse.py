"""The parse stage: raw upstream bytes (SSE, or JSON lines) in, Anthropic event dicts out."""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import orjson

from ..errors import describe
from ..events import ErrorEvent
from ..hookspecs import hookimpl
from ..registry import Registry
from ..stage import Option, Options, Stage, StageSpec, positive_int
from .envelope import Envelope
from .fusion import text_envelope
from .input_diagnosis import complete_event_type, not_sse

__all__ = [
    "INPUT_FORMAT",
    "MAX_EVENT_BYTES",
    "MAX_EVENT_VALUES",
    "JsonLinesParser",
    "SSEParser",
    "count_values",
    "register_stages",
]

_BOM = b"\xef\xbb\xbf"
_DEFAULT_LIMIT = 8 * 1024 * 1024
# The most JSON values one event may hold. Anthropic's events hold a few dozen (a web search
# result a few hundred); an event of tiny values ("[[],[],...]") costs tens of bytes of memory per
# byte once parsed, so a legal-size event could cost far more than its size.
_DEFAULT_MAX_VALUES = 200_000
_INPUT_TYPES = (bytes, bytearray, memoryview)
# Event names seen so far, keyed by their whole "event: NAME" line (bounded: they come from the
# upstream). The fast path only takes names already here; the full path adds them.
_EVENT_LINES: dict[bytes, str] = {}
_NO_FRAME: tuple[bytes, bytes, Any] = (b"", b"", None)


def count_values(data: bytes | bytearray) -> int:
    """An upper bound on the number of JSON values ``data`` parses into, found without parsing it:
    every value after the first in an array or object follows a ``,``, every member value a ``:``,
    and every container opens with a ``[`` or ``{``. Those bytes inside strings count too, so the
    bound is conservative; counting runs at memory speed."""
    return data.count(b",") + data.count(b":") + data.count(b"[") + data.count(b"{") + 1


def _limit(value: Any, registry: Registry) -> Any:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
        raise ValueError(f"must be an int of at least 1024 (bytes), not {value!r}")
    return value


@functools.lru_cache(maxsize=64)
def _pending_limit(limit: int, separator_length: int) -> int:
    """What may wait in the buffer: a whole frame plus the first byte of its separator. Cached, so
    that conversions share one int object (an int this large is 32 bytes per conversion else)."""
    return limit + separator_length - 1


class _Framer(Stage):
    """Cuts bytes into frames (events for SSE, lines for JSON lines) however the input is split:
    line breaks may be CR, LF or CRLF (even a CRLF split across reads), a UTF-8 BOM at the very
    start is skipped, and a frame still arriving may not outgrow ``max_event_bytes``."""

    __slots__ = ("_buf", "_cr", "_limit", "_max_values", "_pending_limit", "_started")

    handles = _INPUT_TYPES
    emits: ClassVar[tuple[type, ...] | None] = (dict, ErrorEvent)
    separator: ClassVar[bytes] = b"\n"

    def __init__(self, options: Options) -> None:
        self._buf = bytearray()
        self._cr = False
        self._started = False
        self._limit: int = options.get("max_event_bytes", _DEFAULT_LIMIT)
        self._max_values: int = options.get("max_event_values", _DEFAULT_MAX_VALUES)
        self._pending_limit = _pending_limit(self._limit, len(self.separator))

    def feed(self, item: Any) -> None:
        data = bytes(item)
        if not data:
            return  # an empty read changes nothing (and must not break a CRLF in two)
        buf = self._buf
        if not self._started:
            buf += data
            if len(buf) < len(_BOM) and _BOM.startswith(buf):
                return  # could still be a BOM split across reads
            self._started = True
            data = bytes(buf[len(_BOM) :] if buf.startswith(_BOM) else buf)
            buf.clear()
        if self._cr and data[:1] == b"\n":
            data = data[1:]  # the LF of a CRLF whose CR ended the previous read
        self._cr = False
        # Bytes are searched for with an int (13 is CR) or find(): bytes.__contains__ tries its
        # argument as an int first, so a bytes needle costs a TypeError raised and cleared (8x
        # the time of the search itself on an event's payload).
        if 13 in data:
            self._cr = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if buf:
            # A bytearray grows in place, so a frame arriving in many small reads stays linear;
            # the pending bytes are copied only when a separator (maybe across the boundary of
            # the two reads) completes a frame.
            completes = data.find(self.separator) >= 0 or (data[:1] == b"\n" and buf[-1:] == b"\n")
            buf += data
            if not completes:
                if len(buf) > self._pending_limit:
                    self._too_large()
                return
            data = bytes(buf)
            buf.clear()
        frames = data.split(self.separator)
        rest = frames.pop()
        if frames:
            self._frames(frames)
        if rest and not self.conversion.finished:
            buf += rest
            if len(buf) > self._pending_limit:
                self._too_large()

    def _frames(self, frames: list[bytes]) -> None:
        raise NotImplementedError

    def _too_large(self) -> None:
        self._buf.clear()
        self._error(
            "limit_exceeded",
            f"an upstream event or line is larger than max_event_bytes ({self._limit} bytes)",
        )

    def _error(self, type_: str, message: str) -> None:
        self.emit(ErrorEvent(type_, message))

    def _too_many_values(self, payload: bytes) -> bool:
        """Whether ``payload`` may hold more than ``max_event_values`` JSON values (reported as
        an error). Checked before parsing, and only for payloads longer than the limit (each
        value takes at least one byte): no cost for the events Anthropic sends."""
        if count_values(payload) <= self._max_values:
            return False
        self._error(
            "limit_exceeded",
            f"an upstream event holds more JSON values than max_event_values ({self._max_values})",
        )
        return True

    def _event(self, payload: bytes, name: bytes | None, at_close: bool = False) -> None:
        """Parse, check and emit one event. ``at_close``: the input ended before this event was
        known to be complete, so JSON that does not parse was cut off (the finish stage reports
        the truncation), not malformed."""
        if len(payload) > self._max_values and self._too_many_values(payload):
            return
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            if at_close:
                return
            what = "invalid UTF-8" if "utf-8" in str(exc).lower() else "malformed JSON"
            self._error(
                "invalid_upstream_response",
                f"the upstream sent {what} in an event: {exc}; data starts {payload[:80]!r}",
            )
            return
        if type(event) is not dict:
            self._error(
                "invalid_upstream_response",
                f"event data must be a JSON object, not {type(event).__name__}: {payload[:80]!r}",
            )
            return
        if name is not None:
            kind = event.get("type")
            named = name.decode("utf-8", "replace")
            if kind == named and len(_EVENT_LINES) < 256 and b"\n" not in name:
                _EVENT_LINES[b"event: " + name] = named
            if kind != named:
                self._error(
                    "invalid_upstream_response",
                    f"an SSE event named {describe(named)} carries data of type {describe(kind)}; "
                    "the event name and the data's type must agree",
                )
                return
        self.emit(event)


class SSEParser(_Framer):
    """Server-sent events, by the WHATWG rules: comments, multi-line data joined with LF, one
    space after the colon stripped, dispatch on a blank line. Every event must be named."""

    __slots__ = ("_envelope", "_framed")

    separator = b"\n\n"

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self._framed = False  # a blank line has been seen (set once per read, not per event)
        self._envelope: Envelope | None = None

    def connected(self) -> None:
        self._envelope = text_envelope(self)

    def _frames(self, frames: list[bytes]) -> None:
        self._framed = True
        conversion = self.conversion
        emit = self.emit
        loads, dumps = orjson.loads, orjson.dumps
        known = _EVENT_LINES
        limit = self._limit
        max_values = self._max_values
        # Stage fusion (builtins/fusion.py): with an envelope found, a text delta is checked here
        # as the decoder would check it and written as the envelope would write it. The
        # envelope's frame changes only when it is fed, which only an event that takes the full
        # way can cause, so it is read again after each of those.
        envelope = self._envelope
        decoder: Any = None if envelope is None else getattr(emit, "__self__", None)
        blocks: dict[int, str | None] = {} if decoder is None else decoder._blocks
        before, after, send = _NO_FRAME if envelope is None else envelope.text_frame()
        for frame in frames:
            if len(frame) > limit:
                self._too_large()
                return
            # The shape Anthropic always sends, "event: NAME\ndata: JSON", with a NAME seen before,
            # takes the short way (inlined: this loop runs once per event). Anything else, and
            # any event that does not check out here, goes through the full rules and messages.
            # "10 not in": no LF in the payload (an int needle, see _Framer.feed).
            head, sep, payload = frame.partition(b"\ndata: ")
            name = known.get(head) if sep and 10 not in payload and len(payload) <= max_values else None
            if name is not None:
                try:
                    event = loads(payload)
                except orjson.JSONDecodeError:
                    event = None
                if type(event) is dict and event.get("type") == name:
                    if decoder is not None and name == "content_block_delta" and not decoder._stopped:
                        # Decoder.feed's fast path, check for check; sending stays outside the try.
                        text = None
                        try:
                            delta, index = event["delta"], event["index"]
                            if (
                                delta["type"] == "text_delta"
                                and type(index) is int
                                and blocks[index] == "text"
                            ):
                                text = delta["text"]
                        except (KeyError, TypeError):
                            pass
                        if type(text) is str:
                            if text:
                                send(before + dumps(text) + after)
                                if conversion.finished:
                                    return
                            continue
                    emit(event)
                    if envelope is not None:
                        before, after, send = envelope.text_frame()
                    if conversion.finished:
                        return
                    continue
            if frame:
                self._lines(frame)
                if envelope is not None:
                    before, after, send = envelope.text_frame()
                if conversion.finished:
                    return

    def _lines(self, frame: bytes, at_close: bool = False) -> None:
        """One event's lines (the frame ended at a blank line, so the event is complete; at
        close, all its lines arrived but the blank line did not)."""
        data: list[bytes] = []
        name = None
        for line in frame.split(b"\n"):
            if not line:
                # A blank line inside the frame: only at its start ("\n\n\n"), nothing pending.
                continue
            if line[:1] == b":":
                continue  # a comment
            field, colon, value = line.partition(b":")
            if colon and value[:1] == b" ":
                value = value[1:]
            if field == b"data":
                data.append(value)
            elif field == b"event":
                name = value
            # id, retry and unknown fields change nothing a converter cares about.
        if not data:
            return
        payload = data[0] if len(data) == 1 else b"\n".join(data)
        if name is None:
            self._error(
                "invalid_upstream_response",
                "an SSE event has data but no 'event:' line; the Anthropic stream names every "
                f"event (use input_format='jsonl' for bare JSON): {payload[:80]!r}",
            )
            return
        self._event(payload, name, at_close)

    def close(self) -> None:
        rest = bytes(self._buf)
        self._buf.clear()
        if not self._framed and rest.strip():
            # Not one blank line in the whole input: say what it is rather than "truncated".
            problem = not_sse(rest)
            if problem is not None:
                self.emit(problem)
                return
        # R51: an event whose lines all arrived (each ended by a line break) but whose closing
        # blank line did not is dispatched; an event cut inside a line never is.
        if rest.endswith(b"\n"):
            self._lines(rest, at_close=True)
            return
        kind = complete_event_type(rest)
        if kind is not None:
            # Its JSON is whole, so the input most likely lost its last line breaks (a recording
            # saved by hand); it is still not used, as the rule says, but the message says why.
            self._error(
                "upstream_truncated",
                f"the input's last event ({describe(kind)}) has no blank line after it (not even a "
                "line break), so it was not used: server-sent events end with a blank line; was "
                "the recording saved without its last newlines?",
            )


class JsonLinesParser(_Framer):
    """One JSON event object per line (recorded events, such as vercel/ai's chunk files)."""

    __slots__ = ()

    def _frames(self, frames: list[bytes]) -> None:
        conversion = self.conversion
        limit = self._limit
        for line in frames:
            if len(line) > limit:
                self._too_large()
                return
            if line.strip():
                self._event(line, None)
                if conversion.finished:
                    return

    def close(self) -> None:
        # JSON lines may omit the last line break. A JSON object only parses once its closing
        # brace has arrived, so a last line that parses is complete; one that does not was cut
        # off, and the finish stage reports the truncation.
        rest = bytes(self._buf).strip()
        self._buf.clear()
        if rest:
            self._event(rest, None, at_close=True)


def _make_parser(options: Options) -> Stage:
    if options.get("input_format", "sse") == "jsonl":
        return JsonLinesParser(options)
    return SSEParser(options)


INPUT_FORMAT = Option.choice(
    "input_format",
    "sse",
    ("sse", "jsonl"),
    "How the upstream bytes are framed: server-sent events, or one JSON event per line.",
)
"""The parse option that says how upstream bytes are framed (shared by every parser stage)."""

MAX_EVENT_BYTES = Option(
    "max_event_bytes",
    _DEFAULT_LIMIT,
    "The longest upstream line or event, in bytes; longer input ends the stream with a limit_exceeded error.",
    _limit,
    allowed="an int >= 1024",
)
"""The parse option that bounds one upstream frame (shared by every parser stage)."""
MAX_EVENT_VALUES = Option(
    "max_event_values",
    _DEFAULT_MAX_VALUES,
    "The most JSON values one upstream event may hold (counted, before parsing, as "
    "its , : [ and { bytes); more ends the stream with a limit_exceeded error.",
    positive_int,
    allowed="an int >= 1",
)
"""The parse option that bounds the JSON values of one upstream event (shared by every parser stage)."""


@hookimpl
def register_stages(register: Any) -> None:
    register(
        StageSpec(
            "parse",
            _make_parser,
            options=(
                INPUT_FORMAT,
                MAX_EVENT_BYTES,
                MAX_EVENT_VALUES,
            ),
            description="Raw upstream bytes to Anthropic event dicts (SSE or JSON lines).",
        )
    )
