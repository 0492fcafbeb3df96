"""The neutral event vocabulary: what decoders emit, middle stages transform and encoders write.

Every route speaks these events in the middle, whatever its source and target formats. A decoder
(the source format's stages) turns upstream input into them; an encoder (the target format's
stages) turns them into the client's wire format. The middle stages (thinking, tool calls,
chunker, finish, usage) see nothing else, so they serve every route unchanged.

The contract, in the order a well-formed response emits events::

    ResponseStart                      exactly once, first
    UsageUpdate*                       any time (counts as reported so far)
    TextStart(p) TextDelta(p)* TextEnd(p)
    ReasoningStart(p) ReasoningDelta(p)* ReasoningEnd(p)
    ToolCallStart(p) ToolCallDelta(p)* ToolCallEnd(p)
    Ping*                              any time
    Finish                             once, when the upstream ended normally
    Done                               last: nothing follows (the finish stage emits it)

or, instead of ``Finish``, one ``ErrorEvent`` (then ``Done``). ``p`` is a part id: an int unique
within one response (a decoder may use the upstream's own block index). Parts may interleave;
every delta names its part, and every part that starts also ends before ``Finish`` (decoders
close what the upstream left open). A redacted reasoning part carries its opaque data on
``ReasoningStart`` and has no deltas.

Events are frozen and slotted (as in h11's ``_events.py``): stages may hold on to them, and a
stage that wants to change one emits a new one instead. Don't subclass them: routing is by exact
type.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any

__all__ = [
    "FINISH_REASONS",
    "Chunk",
    "Done",
    "ErrorEvent",
    "Finish",
    "Ping",
    "ReasoningDelta",
    "ReasoningEnd",
    "ReasoningStart",
    "ResponseStart",
    "TextDelta",
    "TextEnd",
    "TextStart",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "UsageUpdate",
]

FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "pause", "error"})
"""The neutral finish reasons. ``stop``: the model finished (or hit a stop sequence). ``length``:
an output or context limit cut it. ``tool_calls``: it wants its tool calls run. ``content_filter``:
it refused, or a filter stopped it. ``pause``: the turn is unfinished and may be continued
(Anthropic's ``pause_turn``). ``error``: the upstream said it failed; the finish stage turns that
into an in-band error, so it never reaches a client as a clean finish."""


@dataclass(frozen=True, slots=True)
class ResponseStart:
    """The upstream response began: its id and model name."""

    id: str
    model: str


@dataclass(frozen=True, slots=True)
class TextStart:
    """A part of the answer's text opened."""

    part: int


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A fragment of a text part, exactly as the model produced it."""

    part: int
    text: str


@dataclass(frozen=True, slots=True)
class TextEnd:
    """A text part closed."""

    part: int


@dataclass(frozen=True, slots=True)
class ReasoningStart:
    """A part of the model's reasoning opened. ``redacted`` is the opaque data of reasoning the
    upstream withheld (Anthropic's ``redacted_thinking``); such a part has no deltas, and a
    client must send the data back unchanged for the next turn to verify."""

    part: int
    redacted: str | None = None


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A fragment of a reasoning part's visible text."""

    part: int
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningEnd:
    """A reasoning part closed. ``signature`` is the upstream's opaque proof of the reasoning
    text (Anthropic's thinking ``signature``), which a client must send back with that text."""

    part: int
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    """A client tool call began: the call's id (as the upstream named it) and the tool's name."""

    part: int
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a tool call's JSON arguments, byte for byte as streamed. Joined in order,
    a call's fragments are its arguments (the tool-call stage sends ``{}`` for a call that
    streamed none)."""

    part: int
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCallEnd:
    """A tool call's arguments are complete."""

    part: int


@dataclass(frozen=True, slots=True)
class UsageUpdate:
    """Token counts as reported so far. ``None`` means not reported (an earlier value stands).

    ``input_tokens`` counts input neither read from nor written to a prompt cache, so the whole
    prompt is ``input_tokens + cache_read_tokens + cache_write_tokens``. ``reasoning_tokens`` is
    the part of ``output_tokens`` spent reasoning. On `Finish`, the same type holds the totals.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None

    @property
    def prompt_tokens(self) -> int:
        """The whole prompt: uncached input plus cache reads plus cache writes."""
        return (self.input_tokens or 0) + (self.cache_read_tokens or 0) + (self.cache_write_tokens or 0)


@dataclass(frozen=True, slots=True)
class Finish:
    """The response ended normally. ``reason`` is one of `FINISH_REASONS`; ``raw_reason`` is the
    upstream's own word for it (``end_turn``, ``length``...), ``stop_sequence`` the stop sequence
    that ended it, where known. The usage stage fills ``usage`` with the totals."""

    reason: str
    raw_reason: str | None = None
    stop_sequence: str | None = None
    usage: UsageUpdate | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    """A keep-alive."""


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """A fault that ends the stream. ``type`` names the class of fault (``upstream_error``,
    ``invalid_upstream_response``, ``upstream_truncated``, ``limit_exceeded``, ``internal_error``);
    ``code`` is the upstream's own error type where there is one."""

    type: str
    message: str
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Done:
    """End of the client stream: nothing follows."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """One serialized client event (a JSON object, as bytes), not yet framed for the wire.
    ``event`` is its SSE event name, for targets that name their events."""

    payload: bytes
    event: str | None = None


def _fast_init(cls: type) -> None:
    """Give a frozen slotted dataclass an ``__init__`` that sets its slots through their
    descriptors. Frozen dataclasses set fields with ``object.__setattr__``, which made creating an
    event the largest single cost per text delta; the instances stay exactly as frozen."""
    names = [f.name for f in fields(cls)]
    if not names:
        return
    namespace: dict[str, Any] = {}
    params = []
    for f in fields(cls):
        namespace[f"_set_{f.name}"] = getattr(cls, f.name).__set__
        if f.default is MISSING:
            params.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
    body = "".join(f"    _set_{n}(self, {n})\n" for n in names)
    exec(f"def __init__(self, {', '.join(params)}):\n{body}", namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[misc]


for _event in (
    Chunk,
    ErrorEvent,
    Finish,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningStart,
    ResponseStart,
    TextDelta,
    TextEnd,
    TextStart,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
):
    _fast_init(_event)
del _event
