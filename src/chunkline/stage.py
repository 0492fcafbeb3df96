"""What a stage, a stage option and a chunking policy are: the types plugins register."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, final

from .events import Ping, TextDelta, UsageUpdate

if TYPE_CHECKING:
    from .conversion import Conversion
    from .registry import Registry

__all__ = [
    "NOT_BOUNDARIES",
    "ChunkPolicy",
    "ChunkPolicySpec",
    "DecoderSpec",
    "EncoderSpec",
    "Option",
    "Options",
    "Stage",
    "StageSpec",
    "positive_int",
]

Options = Mapping[str, Any]
"""The pipeline's option values, checked and normalised, keyed by option name."""


NOT_BOUNDARIES: tuple[type, ...] = (Ping, UsageUpdate)
"""Items that neither carry text nor mark a place in it (a keep-alive, a running token count). A
stage that holds text back lets them pass without releasing it: a secret or a code span split
around a ping is still one."""


class Stage:
    """One step of a conversion: takes items with `feed`, passes results on with
    `emit`, and flushes with `close` at the end of the input.

    Stages are synchronous and created once per conversion by their `StageSpec`'s
    factory. The defaults pass everything through unchanged.

    ``handles`` lists the item types the stage wants to see (``None``: every item); the
    conversion routes any other item straight past it. ``emits`` lists the types the stage
    can emit (``None``: anything), which lets the conversion wire it straight to the next
    stage that handles them.
    """

    __slots__ = ("conversion", "emit")

    handles: ClassVar[tuple[type, ...] | None] = None
    emits: ClassVar[tuple[type, ...] | None] = None

    emit: Callable[[Any], None]
    """Hand an item to the rest of the pipeline; set by the conversion before the first feed."""

    conversion: Conversion
    """The conversion this stage belongs to; ``conversion.finished`` says the stream has ended."""

    def feed(self, item: Any) -> None:
        """Take one item from the stage before (or from the caller, for the first stage)."""
        self.emit(item)

    def close(self) -> None:
        """The input has ended: emit anything held back."""

    def connected(self) -> None:
        """Called once per conversion after every stage is wired and before the first feed.
        Override it to look up hot routes once (`route`) instead of per item."""

    def route(self, item_type: type) -> Callable[[Any], None]:
        """The callable that this stage's items of ``item_type`` go to (valid once connected)."""
        return self.conversion.route(self, item_type)

    def text_route(self) -> Callable[[int, str], None]:
        """A callable that acts as emitting ``TextDelta(part, text)`` (valid once connected).

        Text deltas are most of a stream. A stage that handles them may define
        ``feed_text(part, text)``, doing exactly what ``feed(TextDelta(part, text))`` would; when
        the next stage for text has one, this returns it and no event object is made per delta.
        """
        target = self.route(TextDelta)
        owner = getattr(target, "__self__", None)
        if isinstance(owner, Stage) and getattr(owner, "feed", None) == target:
            fast: Callable[[int, str], None] | None = getattr(owner, "feed_text", None)
            if fast is not None:
                return fast
        return lambda part, text: target(TextDelta(part, text))


def positive_int(value: Any, registry: Registry) -> Any:
    """An ``Option.check`` for sizes and counts: an int of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be an int of at least 1, not {value!r}")
    return value


@final
@dataclass(frozen=True, slots=True)
class Option:
    """A keyword option of ``Pipeline(...)``, owned by the stage (or policy) that declares it.

    ``check`` receives the value the user gave and the registry, and returns the normalised
    value or raises ``ValueError`` with a message saying what is allowed. An option marked
    ``per_conversion`` may also be given to ``Pipeline.open()`` for one response (it must not
    change which stages run or what they handle: a response id, a model name, a timestamp).
    """

    name: str
    default: Any
    help: str
    check: Callable[[Any, Registry], Any] = field(default=lambda value, registry: value)
    allowed: str = ""
    per_conversion: bool = False

    @classmethod
    def choice(cls, name: str, default: str, choices: Sequence[str], help: str) -> Option:
        """An option whose value is one of a fixed set of strings."""
        allowed = ", ".join(repr(c) for c in choices)

        def check(value: Any, registry: Registry) -> Any:
            if value not in choices:
                raise ValueError(f"must be one of {allowed}, not {value!r}")
            return value

        return cls(name, default, help, check, allowed=f"one of {allowed}")

    @classmethod
    def boolean(cls, name: str, default: bool, help: str) -> Option:
        """An option that is ``True`` or ``False``."""

        def check(value: Any, registry: Registry) -> Any:
            if not isinstance(value, bool):
                raise ValueError(f"must be True or False, not {value!r}")
            return value

        return cls(name, default, help, check, allowed="True or False")

    @classmethod
    def optional_string(cls, name: str, help: str, *, per_conversion: bool = False) -> Option:
        """An option that is a non-empty string, or ``None`` for "not set"."""

        def check(value: Any, registry: Registry) -> Any:
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"must be a non-empty string or None, not {value!r}")
            return value

        return cls(
            name,
            None,
            help,
            check,
            allowed="a non-empty string or None",
            per_conversion=per_conversion,
        )


@final
@dataclass(frozen=True, slots=True)
class StageSpec:
    """A stage as a plugin registers it.

    ``factory(options)`` builds one stage instance per conversion; it should be cheap (do
    expensive set-up in the option checks, which run once per pipeline). ``after`` names the
    stage this one runs right after; it puts a plugin's stage into the default stage list there.
    An ``optional`` stage stays out of the default list and joins a list only when asked for
    (``chunkline.default_stages().add(name)``, or ``--add NAME`` on the command line), at its
    ``after`` place. Without ``after`` a stage runs only where a stage list names it.
    """

    name: str
    factory: Callable[[Options], Stage]
    options: tuple[Option, ...] = ()
    description: str = ""
    after: str | None = None
    optional: bool = False


class ChunkPolicy(Protocol):
    """Decides where content text is cut into deltas. Must be lossless: everything fed comes
    out again, in order, unchanged, across the pieces of `feed` and `flush`."""

    def feed(self, text: str) -> list[str]:
        """Take the next fragment of text; return the pieces ready to send now."""
        ...

    def flush(self) -> list[str]:
        """A boundary (end of a block, of the stream, or an error): return everything held."""
        ...


@final
@dataclass(frozen=True, slots=True)
class ChunkPolicySpec:
    """A chunking policy as a plugin registers it.

    ``factory(arg)`` returns a new policy; ``arg`` is the text after the colon in the option
    value (``"words:3"`` gives ``"3"``), or ``None``. It raises ``ValueError`` for a bad
    argument; it is called when the pipeline is built (to check the argument) and then once
    per conversion, so it should be cheap.
    """

    name: str
    factory: Callable[[str | None], ChunkPolicy]
    description: str = ""


@final
@dataclass(frozen=True, slots=True)
class DecoderSpec:
    """How a plugin reads a source format: ``stages`` (registered stage names, in order) turn
    that format's raw input into the neutral events of `chunkline.events`. ``name`` is the
    format's name, such as ``anthropic-messages``."""

    name: str
    stages: tuple[str, ...]
    description: str = ""


@final
@dataclass(frozen=True, slots=True)
class EncoderSpec:
    """How a plugin writes a target format: ``stages`` (registered stage names, in order) turn
    neutral events into that format's wire bytes. ``thinking_modes`` are the values of the
    ``thinking`` option this target understands beyond ``native``, ``tags`` and ``drop`` (the
    encoder reads ``options["thinking"]`` to choose how reasoning looks)."""

    name: str
    stages: tuple[str, ...]
    description: str = ""
    thinking_modes: tuple[str, ...] = ()
