"""The chat_parse stage: raw OpenAI-compatible chat stream bytes in, chunk dicts and [DONE] out."""

from __future__ import annotations

from typing import Any, Final

import orjson

from ..events import ErrorEvent, Ping
from ..hookspecs import hookimpl
from ..stage import Options, Stage, StageSpec
from .parse import INPUT_FORMAT, MAX_EVENT_BYTES, MAX_EVENT_VALUES, JsonLinesParser, _Framer

__all__ = ["STREAM_DONE", "ChatSSEParser", "StreamDone", "register_stages"]


class StreamDone:
    """The upstream's ``data: [DONE]`` line: the stream says it is complete."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "STREAM_DONE"


STREAM_DONE: Final = StreamDone()
"""The one `StreamDone` marker the parser emits."""

_DONE = b"[DONE]"


class ChatSSEParser(_Framer):
    """Server-sent events as OpenAI-compatible servers send them: ``data:`` lines without event
    names (a name, where a server adds one, is ignored), CR, LF or CRLF line breaks, and the
    ``[DONE]`` sentinel, which becomes `STREAM_DONE`. A frame of comments only (a keep-alive)
    becomes a `Ping`."""

    __slots__ = ()

    separator = b"\n\n"
    emits = (dict, StreamDone, Ping, ErrorEvent)

    def _frames(self, frames: list[bytes]) -> None:
        conversion = self.conversion
        emit = self.emit
        loads = orjson.loads
        limit = self._limit
        # Each JSON value takes a byte at least: a payload no longer than max_event_values cannot
        # hold more, and a longer one takes the full way, which counts them before parsing.
        short = self._max_values + 6
        for frame in frames:
            if len(frame) > limit:
                self._too_large()
                return
            # The shape every server sends, one "data: {JSON}" line, takes the short way (a frame
            # with more lines than that fails to parse here and takes the full way).
            if frame[:7] == b"data: {" and len(frame) <= short:
                try:
                    chunk = loads(frame[6:])
                except orjson.JSONDecodeError:
                    chunk = None
                if chunk.__class__ is dict:
                    emit(chunk)
                    if conversion.finished:
                        return
                    continue
            if frame:
                self._lines(frame)
                if conversion.finished:
                    return

    def _lines(self, frame: bytes, at_close: bool = False) -> None:
        data: list[bytes] = []
        comment = False
        for line in frame.split(b"\n"):
            if not line:
                continue
            if line[:1] == b":":
                comment = True
                continue
            field, colon, value = line.partition(b":")
            if colon and value[:1] == b" ":
                value = value[1:]
            if field == b"data":
                data.append(value)
        if not data:
            if comment:
                # A server's keep-alive (": keep-alive", OpenRouter's ": OPENROUTER PROCESSING"):
                # passed on, so the client's connection stays alive through the silence too.
                self.emit(Ping())
            return
        payload = data[0] if len(data) == 1 else b"\n".join(data)
        if payload.strip() == _DONE:
            self.emit(STREAM_DONE)
            return
        self._event(payload, None, at_close)

    def close(self) -> None:
        rest = bytes(self._buf)
        self._buf.clear()
        # A "data: [DONE]" (or a whole JSON chunk) whose closing blank line never came still
        # counts; a line cut short never does (its JSON does not parse: truncation).
        if rest.endswith(b"\n") or rest.rstrip().endswith(_DONE):
            self._lines(rest, at_close=True)


class ChatJsonLinesParser(JsonLinesParser):
    """One chunk object per line (recorded streams, such as vercel/ai's chunk files); a
    ``[DONE]`` line, where present, becomes `STREAM_DONE`."""

    __slots__ = ()

    emits = (dict, StreamDone, ErrorEvent)

    def _event(self, payload: bytes, name: bytes | None, at_close: bool = False) -> None:
        if payload.strip() == _DONE:
            self.emit(STREAM_DONE)
        else:
            super()._event(payload, name, at_close)


def _make_parser(options: Options) -> Stage:
    if options.get("input_format", "sse") == "jsonl":
        return ChatJsonLinesParser(options)
    return ChatSSEParser(options)


@hookimpl
def register_stages(register: Any) -> None:
    register(
        StageSpec(
            "chat_parse",
            _make_parser,
            options=(INPUT_FORMAT, MAX_EVENT_BYTES, MAX_EVENT_VALUES),
            description="Raw OpenAI-compatible chat stream bytes to chunk dicts (SSE or JSON lines).",
        )
    )
