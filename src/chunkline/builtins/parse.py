"""The parse stage: raw upstream bytes (SSE, or JSON lines) in, Anthropic event dicts out."""

from __future__ import annotations

from typing import Any

import orjson

from ..events import ErrorEvent
from ..hookspecs import hookimpl
from ..registry import Registry
from ..stage import Option, Options, Stage, StageSpec

__all__ = ["JsonLinesParser", "SSEParser", "register_stages"]

_BOM = b"\xef\xbb\xbf"
_DEFAULT_LIMIT = 8 * 1024 * 1024
_INPUT_TYPES = (bytes, bytearray, memoryview)


def _limit(value: Any, registry: Registry) -> Any:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
        raise ValueError(f"must be an int of at least 1024 (bytes), not {value!r}")
    return value


class _LineParser(Stage):
    """Splits bytes into lines (CR, LF or CRLF, split anywhere) and hands each to ``_line``."""

    __slots__ = ("_buf", "_cr", "_limit", "_started")

    handles = _INPUT_TYPES
    emits = (dict, ErrorEvent)

    def __init__(self, options: Options) -> None:
        self._buf = bytearray()
        self._cr = False
        self._started = False
        self._limit: int = options.get("max_event_bytes", _DEFAULT_LIMIT)

    def feed(self, item: Any) -> None:
        data = bytes(item)
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
        if b"\r" in data:
            self._cr = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in data:
            # A bytearray grows in place: a long line arriving in small reads stays linear.
            buf += data
            if len(buf) > self._limit:
                self._too_long()
            return
        if buf:
            buf += data
            lines = bytes(buf).split(b"\n")
            buf.clear()
        else:
            lines = data.split(b"\n")
        rest = lines.pop()
        conversion = self.conversion
        line = self._line
        for raw in lines:
            line(raw)
            if conversion.finished:
                return
        if rest:
            buf += rest
            if len(buf) > self._limit:
                self._too_long()

    def _too_long(self) -> None:
        self._buf.clear()
        self._error(
            "limit_exceeded",
            f"an upstream line is longer than max_event_bytes ({self._limit} bytes)",
        )

    def _error(self, type_: str, message: str) -> None:
        self.emit(ErrorEvent(type_, message))

    def _line(self, raw: bytes) -> None:
        raise NotImplementedError

    def _event(self, payload: bytes, name: bytes | None) -> None:
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
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
            if not isinstance(kind, str) or name != kind.encode():
                self._error(
                    "invalid_upstream_response",
                    f"an SSE event named {name.decode(errors='replace')!r} carries data of type "
                    f"{kind!r}; the event name and the data's type must agree",
                )
                return
        self.emit(event)


class SSEParser(_LineParser):
    """Server-sent events, by the WHATWG rules: comments, multi-line data joined with LF, one
    space after the colon stripped, dispatch on a blank line. Every event must be named."""

    __slots__ = ("_data", "_name", "_size")

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self._data: list[bytes] = []
        self._name: bytes | None = None
        self._size = 0

    def _line(self, raw: bytes) -> None:
        if raw[:6] == b"data: ":
            self._add_data(raw[6:])
        elif not raw:
            self._dispatch()
        elif raw[:1] == b":":
            return
        else:
            field, colon, value = raw.partition(b":")
            if colon and value[:1] == b" ":
                value = value[1:]
            if field == b"data":
                self._add_data(value)
            elif field == b"event":
                self._name = value
            # id, retry and unknown fields change nothing a converter cares about.

    def _add_data(self, value: bytes) -> None:
        self._data.append(value)
        if len(self._data) > 1:
            self._size += len(value) + 1
            if self._size > self._limit:
                self._data = []
                self._size = 0
                self._error(
                    "limit_exceeded",
                    f"an upstream event is larger than max_event_bytes ({self._limit} bytes)",
                )
        else:
            self._size = len(value)

    def _dispatch(self) -> None:
        data, name = self._data, self._name
        self._name = None
        if not data:
            return
        self._data = []
        self._size = 0
        if name is None:
            self._error(
                "invalid_upstream_response",
                "an SSE event has data but no 'event:' line; the Anthropic stream names every "
                f"event (use input_format='jsonl' for bare JSON): {data[0][:80]!r}",
            )
            return
        self._event(data[0] if len(data) == 1 else b"\n".join(data), name)

    def close(self) -> None:
        if self._buf:
            return  # the input ended inside a line: that event is incomplete, never dispatched
        # All lines of the last event arrived, only its blank line is missing: dispatch it.
        self._dispatch()


class JsonLinesParser(_LineParser):
    """One JSON event object per line (recorded events, such as vercel/ai's chunk files)."""

    __slots__ = ()

    def _line(self, raw: bytes) -> None:
        if raw.strip():
            self._event(raw, None)


def _make_parser(options: Options) -> Stage:
    if options.get("input_format", "sse") == "jsonl":
        return JsonLinesParser(options)
    return SSEParser(options)


@hookimpl
def register_stages(register: Any) -> None:
    register(
        StageSpec(
            "parse",
            _make_parser,
            options=(
                Option.choice(
                    "input_format",
                    "sse",
                    ("sse", "jsonl"),
                    "How the upstream bytes are framed: server-sent events, or one JSON event per line.",
                ),
                Option(
                    "max_event_bytes",
                    _DEFAULT_LIMIT,
                    "The longest upstream line or event, in bytes; longer input ends the stream "
                    "with a limit_exceeded error.",
                    _limit,
                    allowed="an int >= 1024",
                ),
            ),
            description="Raw upstream bytes to Anthropic event dicts (SSE or JSON lines).",
        )
    )
