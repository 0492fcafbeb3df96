"""The serialize stage: chunks, keep-alives, errors and the end framed as server-sent events."""

from __future__ import annotations

from typing import Any

import orjson

from ..events import Chunk, Done, ErrorEvent, Ping
from ..hookspecs import hookimpl
from ..stage import Option, Options, Stage, StageSpec
from .envelope import error_object

__all__ = ["SSESerializer", "register_stages"]

DONE = b"data: [DONE]\n\n"
PING = b": ping\n\n"


class SSESerializer(Stage):
    """Writes each chunk as ``data: <json>\\n\\n``, after an ``event: NAME`` line when the chunk
    is named (targets whose clients read event names), and a keep-alive as the comment
    ``: ping``. An error that reaches it is written as OpenAI's error body and the end as
    ``data: [DONE]`` (the OpenAI Chat target's; an encoder for another target turns errors and
    the end into chunks of its own before they get here). Anything else is dropped."""

    __slots__ = ("_ping",)

    handles = None
    chunk_frame = (b"data: ", b"\n\n")
    """All this stage does with an unnamed Chunk is put it between these bytes; an encoder may
    use that to emit framed bytes directly (see Envelope.connected)."""

    def __init__(self, options: Options) -> None:
        self._ping = PING if options["ping"] == "comment" else None

    def feed(self, item: Any) -> None:
        cls = item.__class__
        if cls is Chunk:
            if item.event is None:
                self.emit(b"data: " + item.payload + b"\n\n")
            else:
                self.emit(b"event: " + item.event.encode() + b"\ndata: " + item.payload + b"\n\n")
        elif cls is Done:
            self.emit(DONE)
        elif cls is Ping:
            if self._ping:
                self.emit(self._ping)
        elif cls is ErrorEvent:
            self.emit(b"data: " + orjson.dumps(error_object(item)) + b"\n\n")


@hookimpl
def register_stages(register: Any) -> None:
    register(
        StageSpec(
            "serialize",
            SSESerializer,
            options=(
                Option.choice(
                    "ping",
                    "comment",
                    ("comment", "drop"),
                    "Upstream keep-alives that reach it: an SSE comment ': ping' (keeps proxies "
                    "from closing an idle connection) or nothing.",
                ),
            ),
            description="Chunks and keep-alives framed as server-sent events.",
        )
    )
