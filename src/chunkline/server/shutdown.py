"""Graceful shutdown: on SIGTERM open answers get a grace period to finish, then end with an in-band error."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType, TracebackType
from typing import Any

from .cancel import TaskScope

__all__ = ["SHUTDOWN_ERROR", "UVICORN_MARGIN", "Shutdown"]

#: The error type an answer cut off by the end of the grace period carries.
SHUTDOWN_ERROR = "server_shutting_down"
#: Seconds uvicorn waits beyond the grace period before it cancels what is left, so that the
#: in-band errors are written first.
UVICORN_MARGIN = 5.0

logger = logging.getLogger("chunkline.server")


class Shutdown:
    """Counts the grace period from the first SIGTERM (or SIGINT) and, when it runs out, cancels
    the cut-off scope of every answer still open, which then ends with `SHUTDOWN_ERROR`.

    uvicorn itself stops accepting connections and closes idle ones on the same signal; its own
    timeout (``timeout_graceful_shutdown``) is set `UVICORN_MARGIN` seconds longer than ours.
    """

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.draining = False
        self.expired = False
        self._open: set[TaskScope] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def message(self) -> str:
        return (
            f"the server is shutting down and the answer did not finish within its grace period of "
            f"{self.grace:g} seconds (CHUNKLINE_SHUTDOWN_TIMEOUT)"
        )

    def install(self) -> None:
        """Watch SIGTERM and SIGINT, keeping the handlers already there (uvicorn's). Call it from
        the serving event loop; off the main thread (where no signal handler can be set) it does
        nothing, and `begin` starts the shutdown by hand."""
        self._loop = asyncio.get_running_loop()
        if threading.current_thread() is not threading.main_thread():
            return
        for number in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(number)
            signal.signal(number, self._chain(previous))

    def _chain(self, previous: Any) -> Any:
        def handler(number: int, frame: FrameType | None) -> None:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self.begin)
            if callable(previous):
                previous(number, frame)

        return handler

    def begin(self) -> None:
        """Start the grace period (once); call it on the serving event loop."""
        if self.draining:
            return
        self.draining = True
        logger.info(
            "shutting down: %d answer(s) open get up to %g seconds to finish", len(self._open), self.grace
        )
        loop = self._loop or asyncio.get_running_loop()
        loop.call_later(self.grace, self._expire)

    def _expire(self) -> None:
        self.expired = True
        if self._open:
            logger.warning("grace period over: ending %d open answer(s) in-band", len(self._open))
        for scope in list(self._open):
            scope.cancel()

    def guard(self) -> TaskScope:
        """A cancel scope around one answer's sending, cancelled when the grace period ends
        (``scope.cancelled_caught`` then says the answer was cut off)."""
        return _Guard(self)


class _Guard(TaskScope):
    """`Shutdown.guard`'s scope: while it is open, the shutdown's end of grace cancels it."""

    __slots__ = ("_shutdown",)

    def __init__(self, shutdown: Shutdown) -> None:
        super().__init__()
        self._shutdown = shutdown

    def __enter__(self) -> TaskScope:
        super().__enter__()
        if self._shutdown.expired:
            self.cancel()
        self._shutdown._open.add(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> bool:
        self._shutdown._open.discard(self)
        return super().__exit__(kind, error, trace)
