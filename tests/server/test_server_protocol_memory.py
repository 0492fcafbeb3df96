"""What a guarded protocol keeps per held-open stream: an instance dict whose keys are shared."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from serverkit import PROTOCOLS
from test_server_protocol_guards import _connect, _post, _turns

from chunkline.server.protocol import ConnectionGuards

pytestmark = pytest.mark.asyncio

# CPython (3.11 to 3.13) shares an instance dict's keys between the instances of a class up to 29
# keys; past that each instance's dict has its own table: 1584 bytes against 296.
SHARED_KEYS_MAX = 29


async def _held(cls: type[ConnectionGuards]) -> tuple[Any, asyncio.Event]:
    """A protocol whose request has its answer begun and held open, and the event that ends it."""
    done = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await done.wait()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    protocol, _ = _connect(cls, app)
    protocol.data_received(_post("/held", b"a body"))
    await _turns()
    assert protocol.cycle.response_started and not protocol.cycle.response_complete
    return protocol, done


@pytest.mark.parametrize("cls", PROTOCOLS)
async def test_a_held_streams_protocol_keeps_a_shared_key_dict(cls: type[ConnectionGuards]) -> None:
    protocols = [await _held(cls) for _ in range(3)]  # the first instances set the shared keys
    protocol, _ = protocols[-1]
    assert len(vars(protocol)) <= SHARED_KEYS_MAX, sorted(vars(protocol))
    assert sys.getsizeof(vars(protocol)) < 1024
    for _, done in protocols:
        done.set()
    await _turns()
    assert all(p.cycle.response_complete for p, _ in protocols)
