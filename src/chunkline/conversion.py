"""One conversion: the stages of a pipeline wired together for one upstream response (sans-IO)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from . import events
from .errors import ChunklineError, InternalStageError, StreamError, stream_error_for
from .events import ErrorEvent
from .stage import Options, Stage

__all__ = ["Conversion", "RoutePlan"]

_Emit = Callable[[Any], None]

# The neutral events: fed by a caller (to a stage list that starts after the decoder), they go
# wherever a stage's emitted event of that type would, the final catch-all stage included.
_NEUTRAL = frozenset(
    v for v in vars(events).values() if isinstance(v, type) and v.__module__ == events.__name__
)


def _drop(item: Any) -> None:
    pass


class _RouteTable(dict[type, int]):
    """Where an item of each type goes after stage ``origin``: the index of the first later stage
    that handles it, or ``len(stages)`` (the output). Filled lazily per type and shared by every
    conversion of a pipeline, so routing costs one dict lookup per hop."""

    def __init__(
        self, origin: int, handles: Sequence[tuple[type, ...] | None], *, input_only: bool = False
    ) -> None:
        super().__init__()
        self.origin = origin
        self.handles = handles
        self.input_only = input_only

    def __missing__(self, item_type: type) -> int:
        target = len(self.handles)
        for index in range(self.origin + 1, len(self.handles)):
            wanted = self.handles[index]
            if wanted is None:
                # Caller input may enter a catch-all stage only when it is the first stage;
                # otherwise the default pipeline's final serializer would quietly eat a str.
                if not self.input_only or index == 0 or item_type in _NEUTRAL:
                    target = index
                    break
            elif issubclass(item_type, wanted):
                target = index
                break
        else:
            if self.input_only and self.handles:
                target = -1
        self[item_type] = target
        return target


# The last entry of a conversion's targets drops what it is fed; -1 indexes it.
_DROP_INDEX = -1


class RoutePlan:
    """The stage list compiled once per pipeline: factories, and where each stage's output goes."""

    def __init__(
        self,
        names: Sequence[str],
        factories: Sequence[Callable[[Options], Stage]],
        prototypes: Sequence[Stage],
        options: Options,
    ) -> None:
        self.names = tuple(names)
        self.factories = tuple(factories)
        self.options = options
        self.raise_errors = options.get("on_error") == "raise"
        count = len(names)
        handles = [p.handles for p in prototypes]
        self.entry = _RouteTable(-1, handles, input_only=True)
        self.inject = _RouteTable(-1, handles)
        self.tables = [_RouteTable(i, handles) for i in range(count)]
        # A stage that handles nothing and does nothing at close or connect is never created
        # per conversion (the passthrough chunker, for one): nothing can reach it.
        self.inert = [
            p.handles == () and type(p).close is Stage.close and type(p).connected is Stage.connected
            for p in prototypes
        ]
        # A stage whose output all goes to one place is wired straight to that place's feed:
        # one call per hop instead of a lookup and a call. That is known when the stage declares
        # what it emits, or when whatever it emits has only one place to go.
        self.direct: list[int | None] = []
        for index, (table, prototype) in enumerate(zip(self.tables, prototypes, strict=True)):
            emitted = prototype.emits
            if emitted is not None:
                targets = {table[t] for t in emitted}
                self.direct.append(
                    targets.pop() if len(targets) == 1 else _DROP_INDEX if not targets else None
                )
            elif index == count - 1:
                self.direct.append(count)
            elif handles[index + 1] is None:
                self.direct.append(index + 1)
            else:
                self.direct.append(None)
        # Only stages that override connected() or close() pay for those calls.
        self.connect = [i for i, p in enumerate(prototypes) if type(p).connected is not Stage.connected]
        self.closers = [i for i, p in enumerate(prototypes) if type(p).close is not Stage.close]


class _Sink:
    """Where outputs collect (the last entries of a conversion's targets: output, then drop)."""

    __slots__ = ("feed",)

    def __init__(self, feed: _Emit) -> None:
        self.feed = feed


_DROP = _Sink(_drop)


class _Router:
    """The emit of a stage whose items go to different places, by type."""

    __slots__ = ("table", "targets")

    def __init__(self, table: _RouteTable, targets: list[Any]) -> None:
        self.table = table
        self.targets = targets

    def emit(self, item: Any) -> None:
        self.targets[self.table[item.__class__]].feed(item)


class Conversion:
    """Converts one upstream response. `feed` takes input split anywhere and returns the
    outputs it completes; `close` ends the input and returns the rest."""

    __slots__ = ("_closed", "_out", "_plan", "_targets", "finished")

    def __init__(self, plan: RoutePlan, options: Options | None = None) -> None:
        self._plan = plan
        self.finished = False
        self._closed = False
        out: list[Any] = []
        self._out = out
        options = plan.options if options is None else options
        # targets[i] is stage i, then the output, then the drop; routes are indexes into it.
        targets: list[Any] = [
            _DROP if inert else factory(options)
            for factory, inert in zip(plan.factories, plan.inert, strict=True)
        ]
        targets.append(_Sink(out.append))
        targets.append(_DROP)
        self._targets = targets
        for index, direct in enumerate(plan.direct):
            stage = targets[index]
            if stage is _DROP:
                continue
            stage.conversion = self
            if direct is not None:
                stage.emit = targets[direct].feed
            else:
                stage.emit = _Router(plan.tables[index], targets).emit
        for index in plan.connect:
            targets[index].connected()

    @property
    def stage_names(self) -> tuple[str, ...]:
        return self._plan.names

    def route(self, stage: Stage, item_type: type) -> _Emit:
        """Where ``stage``'s items of ``item_type`` go: the next stage's ``feed`` or the output."""
        # A plain loop: a generator expression here cost more than the rest of a route lookup,
        # and stages look routes up in connected(), once per conversion each.
        for index, found in enumerate(self._targets):  # noqa: B007 (used after the loop)
            if found is stage:
                break
        else:
            raise ChunklineError(
                f"route(): this {type(stage).__name__} is not one of the conversion's stages "
                "(a stage asks for its routes once the conversion has connected it)"
            )
        target: _Emit = self._targets[self._plan.tables[index][item_type]].feed
        return target

    def feed(self, data: Any) -> list[Any]:
        """Take the next piece of input (bytes for the default stages) and return the outputs
        it completes. Input after the stream has finished is ignored."""
        if self._closed:
            raise ChunklineError("feed() called after close(); open a new conversion")
        if self.finished:
            return []
        target = self._plan.entry[data.__class__]
        if target < 0:
            first = self._plan.names[0]
            raise TypeError(
                f"feed() got {type(data).__name__}, which no stage of this pipeline takes "
                f"(it starts with {first!r}); the default pipeline takes bytes or Anthropic event dicts"
            )
        try:
            self._targets[target].feed(data)
        except Exception as exc:
            self._fail(exc)
        return self._take()

    def close(self) -> list[Any]:
        """End of input: flush held-back output, and finish or report a truncated stream."""
        if self._closed:
            return []
        self._closed = True
        try:
            for index in self._plan.closers:
                if self.finished:
                    break
                self._targets[index].close()
        except Exception as exc:
            self._fail(exc)
        self.finished = True
        return self._take()

    def abort(self, type: str, message: str, code: str | None = None) -> list[Any]:
        """End the stream with an error found outside the stages (say, the source failed):
        report it in-band, or raise it with ``on_error="raise"``. Returns the outputs."""
        if self.finished:
            return []
        self._closed = True
        if self._plan.raise_errors:
            self.finished = True
            error = stream_error_for(type, message, code)
            error.output = self._take()
            raise error
        try:
            self._targets[self._plan.inject[ErrorEvent]].feed(ErrorEvent(type, message, code))
        except Exception as exc:
            self._fail(exc)
        self.finished = True
        return self._take()

    def _take(self) -> list[Any]:
        out = self._out
        if not out:
            return []
        taken = out.copy()
        out.clear()
        return taken

    def _fail(self, exc: Exception) -> None:
        """A stage raised. Stream faults raise on to the caller (``on_error="raise"``); anything
        else is a bug that becomes one in-band error, so a client never sees a half-stream."""
        error: Exception | None = None
        try:
            if isinstance(exc, StreamError):
                self.finished = True
                exc.output = self._take()
                raise exc
            stage = _failing_stage(exc.__traceback__, self._targets, self._plan.names)
            message = f"stage {stage!r} failed: {type(exc).__name__}: {exc}"
            if self._plan.raise_errors:
                self.finished = True
                error = InternalStageError(message)
                error.output = self._take()
                raise error from exc
        finally:
            # The raised exception's traceback holds this frame: were the exception still one of
            # its locals, that would be a reference cycle keeping every frame of the traceback
            # (and the input they hold) alive until a full garbage collection.
            del exc, error
        if not self.finished:  # after [DONE] nothing more may be sent, not even an error
            # If even the error path is broken, end the stream quietly rather than crash the caller.
            with contextlib.suppress(Exception):
                self._targets[self._plan.inject[ErrorEvent]].feed(ErrorEvent("internal_error", message))
        self.finished = True


def _failing_stage(tb: TracebackType | None, targets: list[Any], names: tuple[str, ...]) -> str:
    innermost = "unknown"
    # The first entry is the conversion's own frame, which caught the exception and is still
    # running: reading its f_locals would store a snapshot in it that holds the exception (a
    # reference cycle through the traceback). It is never a stage's frame anyway.
    tb = tb.tb_next if tb is not None else None
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        for stage, name in zip(targets, names, strict=False):
            if owner is stage:
                innermost = name
        tb = tb.tb_next
    return innermost
