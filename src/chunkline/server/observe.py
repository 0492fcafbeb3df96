"""What one request did (its record), and the stage that notes the upstream model, usage and finish."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..events import Finish, ReasoningStart, ResponseStart, TextStart, ToolCallStart, UsageUpdate
from ..stage import Option, Options, Stage, StageSpec
from .errors import REDACTED
from .scrub import SECRETS_OPTION

__all__ = ["OBSERVE_STAGE", "SCOPE_KEY", "RequestRecord", "record_of"]

#: Where a request's record is kept in its ASGI scope.
SCOPE_KEY = "chunkline.record"


@dataclass(slots=True)
class RequestRecord:
    """One request, filled in as it goes, read when it ends (the access line and the metrics).
    Holds no key, prompt or answer text: only names, counts and times."""

    id: str
    started: float
    route: str = "other"
    method: str = ""
    status: int = 0
    client_model: str | None = None
    upstream_model: str | None = None
    upstream_request_id: str | None = None
    stream: bool | None = None
    #: Seconds from the request's arrival to the response's first bytes (its headers).
    first_byte: float | None = None
    #: Seconds from the request's arrival to the first part (text, reasoning, tool call) of the answer.
    first_token: float | None = None
    duration: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    #: The upstream's own stop reason (``end_turn``, ``tool_use``, ...) when the answer finished.
    finish: str | None = None
    #: The error type when the request or its stream ended in a fault.
    fault: str | None = None
    bytes_out: int = 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def record_of(scope: Any) -> RequestRecord | None:
    """The record the request observer put in a request's ASGI scope (None outside the server)."""
    record = scope.get(SCOPE_KEY)
    return record if isinstance(record, RequestRecord) else None


_PART_STARTS = (TextStart, ReasoningStart, ToolCallStart)
# The longest upstream word (a model name, a stop reason) a record keeps.
_LONGEST = 200


class _Observer(Stage):
    """Notes into the conversion's record what the metrics and the access line need. It handles
    only a response's few non-delta events (its start, usage updates, each part's start and the
    finish), so the deltas never reach it: the cost is per request, not per event."""

    __slots__ = ("_record", "_secrets")

    handles = (ResponseStart, UsageUpdate, Finish, *_PART_STARTS)

    def __init__(self, options: Options) -> None:
        self._record: RequestRecord | None = options["observer"]
        # The keys this response was sent with: the upstream may quote one anywhere, even as
        # the model name, and the record goes into logs and metric labels.
        self._secrets: tuple[str, ...] = tuple(key for key in options.get(SECRETS_OPTION, ()) if key)

    def feed(self, item: Any) -> None:
        record = self._record
        if record is not None:
            cls = item.__class__
            if cls is UsageUpdate:
                # The counts are cumulative: the latest value of each wins.
                if item.input_tokens is not None:
                    record.input_tokens = item.input_tokens
                if item.output_tokens is not None:
                    record.output_tokens = item.output_tokens
                if item.cache_read_tokens is not None:
                    record.cache_read_tokens = item.cache_read_tokens
                if item.cache_write_tokens is not None:
                    record.cache_write_tokens = item.cache_write_tokens
            elif cls is ResponseStart:
                record.upstream_model = self._named(item.model)
            elif cls is Finish:
                record.finish = self._named(item.raw_reason or item.reason)
            elif record.first_token is None:
                record.first_token = record.elapsed()
        self.emit(item)

    def _named(self, value: object) -> str | None:
        """An upstream word for the record: a string, never holding a key, of bounded length."""
        if not isinstance(value, str):
            return None
        if any(key in value for key in self._secrets):
            return REDACTED
        return value[:_LONGEST]


#: The server's own stage, put right after ``decode`` in the server's stage lists; each response
#: hands it its record as the per-conversion option ``observer``.
OBSERVE_STAGE = StageSpec(
    "observe",
    _Observer,
    options=(
        Option(
            "observer",
            None,
            "the server's record of this request (set per response by the server)",
            per_conversion=True,
        ),
    ),
    description="notes the upstream's model, token counts and finish for the server's metrics and logs",
)
