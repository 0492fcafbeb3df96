"""The server benchmark's floor: a minimal asyncio relay, no conversion and no framework, in its own process.

Each client connection gets one upstream connection (kept alive, as a proxy's pool would keep
it); each request is sent upstream byte for byte, and the upstream's response (head and chunked
body) comes back to the client byte for byte, written as each read arrives. What a proxy cannot
avoid spending on one stream (loopback reads and writes, on the same event loop) is what this
spends; the benchmark divides the server's CPU per stream by this one's.

Run as ``python floor_server.py UPSTREAM_PORT``; it prints its own port, then serves.
"""

from __future__ import annotations

import asyncio
import socket
import sys

_END = b"0\r\n\r\n"  # the last chunk of a chunked body (an SSE body never ends its data so)


async def _relay(upstream_port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    up_reader: asyncio.StreamReader | None = None
    up_writer: asyncio.StreamWriter | None = None
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            if up_writer is None:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
            assert up_reader is not None
            up_writer.write(head + body)
            response_head = await up_reader.readuntil(b"\r\n\r\n")
            writer.write(response_head)
            if b"chunked" not in response_head.lower():
                raise ConnectionError("the floor relays chunked streams only")
            tail = b""
            while True:
                data = await up_reader.read(65536)
                if not data:
                    raise ConnectionError("the upstream closed mid-response")
                writer.write(data)
                await writer.drain()
                tail = (tail + data)[-len(_END) :]
                if tail == _END:
                    break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.transport.abort()
        if up_writer is not None:
            up_writer.transport.abort()


async def _serve(upstream_port: int) -> None:
    server = await asyncio.start_server(
        lambda r, w: _relay(upstream_port, r, w), "127.0.0.1", 0, family=socket.AF_INET, backlog=1024
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1])))
