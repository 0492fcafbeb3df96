"""The small typed events that flow between stages, in neither Anthropic's nor OpenAI's wire shape."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any

__all__ = [
    "BlockStart",
    "BlockStop",
    "Chunk",
    "Done",
    "ErrorEvent",
    "Finish",
    "MessageDelta",
    "MessageStart",
    "MessageStop",
    "Ping",
    "ReasoningDelta",
    "TextDelta",
    "ThinkingDelta",
    "ToolCallDelta",
    "ToolInputDelta",
    "ToolUseStart",
    "UsageReport",
    "UsageUpdate",
]

# Events are frozen and slotted (as in h11's _events.py): stages may hold on to them, and a stage
# that wants to change one emits a new one instead. Don't subclass these: routing is by exact type.


@dataclass(frozen=True, slots=True)
class MessageStart:
    """The upstream response began: its id and model name."""

    id: str
    model: str


@dataclass(frozen=True, slots=True)
class BlockStart:
    """A content block opened; ``kind`` is ``text``, ``thinking``, ``redacted_thinking``,
    ``tool_use`` (a client tool call) or ``other`` (server tools, results, unknown types)."""

    index: int
    kind: str


@dataclass(frozen=True, slots=True)
class BlockStop:
    """A content block closed."""

    index: int
    kind: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A fragment of the answer's text, exactly as the model produced it."""

    text: str


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    """A fragment of the model's visible reasoning."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """Reasoning text bound for the client, in the delta field named ``field``."""

    text: str
    field: str


@dataclass(frozen=True, slots=True)
class ToolUseStart:
    """A client tool call began in block ``index``; ``input`` is what the start block already held."""

    index: int
    id: str
    name: str
    input: Any


@dataclass(frozen=True, slots=True)
class ToolInputDelta:
    """A fragment of a client tool call's JSON arguments, byte for byte as streamed."""

    index: int
    partial_json: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """One client-facing tool-call delta: the first carries ``id`` and ``name``, later ones only
    ``arguments`` fragments. ``index`` counts client tool calls from 0."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class UsageUpdate:
    """Token counts as reported so far; ``None`` means the upstream did not report that field."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    thinking_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Final token usage in the client's terms."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class MessageDelta:
    """The upstream's stop reason (its own vocabulary, e.g. ``end_turn``), once known."""

    stop_reason: str | None
    stop_sequence: str | None = None


@dataclass(frozen=True, slots=True)
class MessageStop:
    """The upstream response ended normally."""


@dataclass(frozen=True, slots=True)
class Finish:
    """The client-facing finish: ``reason`` is a client finish reason; ``usage`` rides along when
    usage is placed on the finish chunk."""

    reason: str
    usage: UsageReport | None = None


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
    """One serialized client chunk (a JSON object, as bytes), not yet framed for the wire."""

    payload: bytes


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
    BlockStart,
    BlockStop,
    Chunk,
    ErrorEvent,
    Finish,
    MessageDelta,
    MessageStart,
    ReasoningDelta,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolInputDelta,
    ToolUseStart,
    UsageReport,
    UsageUpdate,
):
    _fast_init(_event)
del _event
