"""chunkline.server.protocol's own parts: one send per loop turn, and the disconnect hook."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chunkline.server.protocol import Disconnect, _OneWritePerTurn


class _Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str) -> Any:
        return f"info:{name}"


@pytest.mark.asyncio
async def test_the_writes_of_one_turn_leave_together_at_its_end() -> None:
    real = _Transport()
    transport = _OneWritePerTurn(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"head ")
    transport.write(b"")
    transport.write(b"body")
    assert real.sent == []
    assert transport.get_write_buffer_size() == 7 + 9
    await asyncio.sleep(0)
    assert real.sent == [b"head body"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert real.sent == [b"head body", b"next"]
    assert transport.get_extra_info("peername") == "info:peername"


@pytest.mark.asyncio
async def test_close_sends_what_is_held_and_abort_drops_it() -> None:
    loop = asyncio.get_running_loop()
    real = _Transport()
    transport = _OneWritePerTurn(real, loop)  # type: ignore[arg-type]
    transport.write(b"last words")
    transport.close()
    assert real.sent == [b"last words"] and real.closed
    await asyncio.sleep(0)
    assert real.sent == [b"last words"]

    real = _Transport()
    transport = _OneWritePerTurn(real, loop)  # type: ignore[arg-type]
    transport.write(b"never")
    transport.abort()
    await asyncio.sleep(0)
    assert real.sent == [] and real.aborted


def test_a_disconnect_calls_back_once_and_is_remembered() -> None:
    calls: list[int] = []
    hook = Disconnect()
    hook.callback = lambda: calls.append(1)
    hook.fire()
    hook.fire()
    assert calls == [1] and hook.gone
