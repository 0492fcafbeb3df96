"""The serialize stage: chunks, keep-alives, errors and the end, framed as server-sent events."""

from __future__ import annotations

from typing import Any

import orjson

from ..events import Chunk, Done, ErrorEvent, Ping
from ..hookspecs import hookimpl
from ..stage import Option, Options, Stage, StageSpec

__all__ = ["SSESerializer", "error_object", "register_stages"]

DONE = b"data: [DONE]\n\n"
PING = b": ping\n\n"


def error_object(error: ErrorEvent) -> dict[str, Any]:
    """The OpenAI error body for an in-band error (the openai SDK raises APIError on it)."""
    return {
        "error": {
            "message": error.message,
            "type": error.type,
            "param": None,
            "code": error.code or error.type,
        }
    }


class SSESerializer(Stage):
    """Writes each chunk as ``data: <json>\\n\\n``, a keep-alive as the comment ``: ping``, an
    error as ``data: {"error": ...}``, and the end as ``data: [DONE]``. No ``event:`` lines
    (older openai clients choke on them). Anything else is not for the wire and is dropped."""

    __slots__ = ("_ping",)

    handles = None
    chunk_frame = (b"data: ", b"\n\n")
    """All this stage does with a Chunk is put it between these bytes; the envelope stage uses
    that to emit framed bytes directly (see Envelope.connected)."""

    def __init__(self, options: Options) -> None:
        self._ping = PING if options["ping"] == "comment" else None

    def feed(self, item: Any) -> None:
        cls = item.__class__
        if cls is Chunk:
            self.emit(b"data: " + item.payload + b"\n\n")
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
                    "Upstream keep-alives: an SSE comment ': ping' (keeps proxies from closing an "
                    "idle connection) or nothing.",
                ),
            ),
            description="Chunks, pings, errors and [DONE] framed as server-sent events.",
        )
    )
