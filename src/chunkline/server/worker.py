"""The gunicorn worker for chunkline's app: uvicorn's worker, serving with the guarded protocol."""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]  # it ships no types

from .config import settings_from
from .protocol import guard

__all__ = ["GuardedWorker"]


class GuardedWorker(UvicornWorker):  # type: ignore[misc]
    """`uvicorn_worker.UvicornWorker` with what `chunkline serve` adds to uvicorn: the guarded
    protocol (connection cap, request deadlines, write timeout, head-size and pipelining limits)
    and the limits of the settings in the environment. uvicorn's own protocols have none of
    them; run ``gunicorn -k chunkline.server.worker.GuardedWorker``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        guard(self.config, settings_from())
