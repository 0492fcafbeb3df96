"""The upstream client's cost per streamed answer: httpx, httpcore, aiohttp and chunkline's own, one run.

Run with ``make bench-upstream-clients`` (in .venv-peers, which has aiohttp; a client that is not
installed is left out). Each client streams the same answer (``--recording``, default the long
text one) from the fake upstream (tests/server/fake_anthropic.py, in its own process) over one
kept connection, as `chunkline serve` reads it: POST, the head, then the body read by read to
its end. Measured per request, in interleaved rounds (each client once per round), reported
as the best round: this process's CPU time, and the time to the first body bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server_procs import ROOT, start_fake_upstream

HEADERS = {
    "x-api-key": "sk-bench",
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
    "accept": "text/event-stream",
    "accept-encoding": "identity",
}
Client = Callable[[bytes], Awaitable[float]]  # sends a body, reads the answer; the first-byte time
_CLOSE: list[Callable[[], Awaitable[Any]]] = []  # what a client needs closed at the end


async def _httpx(url: str) -> Client:
    import httpx

    client = httpx.AsyncClient(base_url=url, timeout=30)

    async def run(body: bytes) -> float:
        started = time.perf_counter()
        request = client.build_request("POST", "/v1/messages", content=body, headers=HEADERS)
        response = await client.send(request, stream=True)
        first = 0.0
        async for _ in response.aiter_raw():
            first = first or time.perf_counter() - started
        await response.aclose()
        return first

    return run


async def _httpcore(url: str) -> Client:
    import httpcore

    pool = httpcore.AsyncConnectionPool()
    headers = list(HEADERS.items())

    async def run(body: bytes) -> float:
        started = time.perf_counter()
        first = 0.0
        async with pool.stream("POST", f"{url}/v1/messages", headers=headers, content=body) as response:
            async for _ in response.aiter_stream():
                first = first or time.perf_counter() - started
        return first

    return run


async def _aiohttp(url: str) -> Client:
    import aiohttp

    session = aiohttp.ClientSession(base_url=url, auto_decompress=False)
    _CLOSE.append(session.close)

    async def run(body: bytes) -> float:
        started = time.perf_counter()
        first = 0.0
        async with session.post("/v1/messages", data=body, headers=HEADERS) as response:
            async for _ in response.content.iter_any():
                first = first or time.perf_counter() - started
        return first

    return run


async def _chunkline(url: str) -> Client:
    from chunkline.server import http1

    pool = http1.Pool(url, max_connections=10, connect_timeout=10)
    headers = list(HEADERS.items())

    async def run(body: bytes) -> float:
        started = time.perf_counter()
        response = await pool.request("POST", "/v1/messages", headers, body)
        first = 0.0
        async for _ in response.reads():
            first = first or time.perf_counter() - started
        await response.aclose()
        return first

    return run


MAKERS: dict[str, tuple[str, Callable[[str], Awaitable[Client]]]] = {
    "httpx": ("httpx", _httpx),
    "httpcore": ("httpcore", _httpcore),
    "aiohttp": ("aiohttp", _aiohttp),
    "chunkline http1": ("chunkline", _chunkline),
}


async def _main(args: argparse.Namespace, url: str) -> None:
    clients: dict[str, Client] = {}
    for name, (package, make) in MAKERS.items():
        try:
            clients[f"{name} {metadata.version(package)}"] = await make(url)
        except (ImportError, metadata.PackageNotFoundError):
            print(f"({name}: not installed here, left out)")
    body = orjson.dumps({"model": args.recording, "max_tokens": 1024, "stream": True, "messages": []})
    cpu: dict[str, list[float]] = {name: [] for name in clients}
    ttfb: dict[str, list[float]] = {name: [] for name in clients}
    for run in clients.values():  # warm up: the connection, imports, caches
        for _ in range(20):
            await run(body)
    for round_number in range(args.rounds):
        names = list(clients)
        turn = round_number % len(names)
        for name in names[turn:] + names[:turn]:
            run = clients[name]
            firsts = []
            started = time.process_time()
            for _ in range(args.requests):
                firsts.append(await run(body))
            cpu[name].append((time.process_time() - started) / args.requests)
            ttfb[name].append(statistics.median(firsts))
    print(
        f"{args.rounds} interleaved rounds of {args.requests} sequential requests per client; "
        f"{args.recording} from the fake upstream; best round"
    )
    print(f"{'client':28}{'CPU per answer, us':>20}{'first bytes, us (p50)':>24}{'CPU vs chunkline':>18}")
    ours = min(next(v for k, v in cpu.items() if k.startswith("chunkline")))
    for name in clients:
        best = min(cpu[name])
        print(f"{name:28}{best * 1e6:>20.0f}{min(ttfb[name]) * 1e6:>24.0f}{best / ours:>17.1f}x")
    for close in _CLOSE:
        await close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200, help="requests per client per round (200)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument("--recording", default="llm_long_text", help="the recording each answer replays")
    parser.add_argument(
        "--fake-python",
        default=str(ROOT / ".venv" / "bin" / "python"),
        help="the Python that runs the fake upstream (default .venv's, which has the test dependencies)",
    )
    args = parser.parse_args()
    fake = start_fake_upstream(args.fake_python)
    try:
        asyncio.run(_main(args, fake.url))
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
