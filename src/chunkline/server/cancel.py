"""A cancel scope for one asyncio task: one slotted object, where anyio's is an object and two sets."""

from __future__ import annotations

import asyncio
import contextvars
import math
from types import TracebackType

__all__ = ["TIMER_CONTEXT", "TaskScope"]

#: The context the server's own timers run their callbacks in, which read no context variable:
#: a timer given none copies the current context, a 64-byte object kept for as long as the timer
#: is set (the idle watch and the stream's time limit are set for a stream's whole life).
TIMER_CONTEXT = contextvars.Context()


class TaskScope:
    """A region of the current task that `cancel` ends with a ``CancelledError`` the scope itself
    catches (``cancelled_caught`` then says so), as `asyncio.timeout` does. The server runs on
    asyncio only (under uvicorn), and a held stream kept three anyio cancel scopes open, each an
    object with two sets, and an entry in anyio's per-task table: 1.1 KiB of RSS per held
    stream (`make bench-server`).

    Cancellation is delivered once, and only while the task waits inside the scope (from the
    task itself, it waits for the task's next suspension), so a scope that has been left is never
    cancelled; anyio re-delivers it at each wait instead. So work that must finish in spite of a
    cancellation needs no shield, unless the cancel may come while it runs: ``shield`` holds
    back a cancel until the scope ends (it is then not delivered at all). Scopes nest as
    `asyncio.timeout` does: an inner scope passes on a cancellation an outer one also asked for.
    `at` sets a deadline at which the scope cancels itself."""

    __slots__ = (
        "_cancelling",
        "_delivered",
        "_task",
        "_timer",
        "cancel_called",
        "cancelled_caught",
        "deadline",
        "shield",
    )

    def __init__(self) -> None:
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._delivered = False
        self._timer: asyncio.TimerHandle | None = None
        self.cancel_called = False
        self.cancelled_caught = False
        self.shield = False
        #: When `at` set the scope to cancel itself (the event loop's clock), else infinity.
        self.deadline = math.inf

    def __enter__(self) -> TaskScope:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a TaskScope is entered in an asyncio task")
        self._task = task
        self._cancelling = task.cancelling()
        if self.cancel_called:
            self._deliver()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> bool:
        task, self._task = self._task, None  # not kept: the task holds this scope's frame
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._delivered or task is None:
            return False
        # Another cancellation asked for meanwhile (an outer scope's, the task's own) goes on.
        ours = task.uncancel() <= self._cancelling
        if ours and kind is not None and issubclass(kind, asyncio.CancelledError):
            self.cancelled_caught = True
            return True
        return False

    def cancel(self) -> None:
        """End the scope: at once if its task waits inside it, else when it next waits there."""
        if not self.cancel_called:
            self.cancel_called = True
            if self._task is not None:
                self._deliver()

    def at(self, when: float) -> None:
        """Cancel the scope at ``when`` (the event loop's clock), unless it has ended by then."""
        task = self._task
        if task is None:
            raise RuntimeError("a TaskScope's deadline is set inside it")
        if self._timer is not None:
            self._timer.cancel()
        self.deadline = when
        self._timer = task.get_loop().call_at(when, self.cancel, context=TIMER_CONTEXT)

    def _deliver(self) -> None:
        task = self._task
        if task is None or self._delivered or self.shield:
            return
        loop = task.get_loop()
        if asyncio.current_task(loop) is task:
            # Running now, so not waiting: cancelled at its next wait, if still in the scope.
            loop.call_soon(self._deliver)
            return
        self._delivered = True
        task.cancel()
