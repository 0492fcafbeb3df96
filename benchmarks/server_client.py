"""A lean HTTP/1.1 streaming client for the server benchmark: raw asyncio sockets, keep-alive, chunked bodies.

An SDK client would spend more CPU per event than the server it measures (all three processes
share the machine's cores), so the load comes from this: it writes the request, notes the moment
the first byte of the body arrives, and reads the chunked body to its end.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson


@dataclass
class Result:
    status: int
    ttfb: float  # seconds from writing the request to the first byte of the body
    total: float  # seconds from writing the request to the end of the body
    body: bytes


class ProtocolError(Exception):
    pass


class Connection:
    """One keep-alive connection; :meth:`request` sends a POST and reads the whole response."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.transport.abort()
            self._reader = self._writer = None

    async def _send(
        self, path: str, payload: dict[str, object], headers: dict[str, str]
    ) -> tuple[asyncio.StreamReader, float]:
        reader, writer = await self._connect()
        body = orjson.dumps(payload)
        head = f"POST {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\ncontent-type: application/json\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"content-length: {len(body)}\r\n\r\n"
        started = time.perf_counter()
        writer.write(head.encode() + body)
        return reader, started

    async def request(self, path: str, payload: dict[str, object], headers: dict[str, str]) -> Result:
        reader, started = await self._send(path, payload, headers)
        raw_head = await reader.readuntil(b"\r\n\r\n")
        status, fields = _parse_head(raw_head)
        ttfb = 0.0
        out = bytearray()
        if fields.get("transfer-encoding") == "chunked":
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # the empty trailer
                    break
                data = await reader.readexactly(size + 2)
                if not ttfb:
                    ttfb = time.perf_counter() - started
                out += data[:-2]
        else:
            length = int(fields.get("content-length", "0"))
            out += await reader.readexactly(length)
            ttfb = time.perf_counter() - started
        total = time.perf_counter() - started
        if fields.get("connection") == "close":
            self.close()
        return Result(status, ttfb, total, bytes(out))

    async def open_stream(self, path: str, payload: dict[str, object], headers: dict[str, str]) -> float:
        """Send a streaming request and wait for its first body bytes only; the stream stays open
        (for the memory measurement). Returns the time to first byte."""
        reader, started = await self._send(path, payload, headers)
        status, _ = _parse_head(await reader.readuntil(b"\r\n\r\n"))
        if status != 200:
            raise ProtocolError(f"HTTP {status}")
        size_line = await reader.readuntil(b"\r\n")
        await reader.readexactly(int(size_line.split(b";")[0], 16) + 2)
        return time.perf_counter() - started


def _parse_head(raw: bytes) -> tuple[int, dict[str, str]]:
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ProtocolError(f"not an HTTP response: {lines[0]!r}")
    fields = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip().lower()] = value.strip().lower()
    return int(parts[1]), fields
