"""Where the added time to first byte goes: one-at-a-time requests, timed in the client and the server.

    python benchmarks/first_byte.py [--requests N] [--rounds R]    (or: make bench-first-byte)

``chunkline serve`` runs with first_byte_probe.py loaded, which notes when each request's bytes
were read, when its app began, when the upstream request was written and first answered, and
when the first bytes left for the client. The client notes when it wrote the request and when the
body's first bytes arrived. Both use CLOCK_MONOTONIC, so the moments line up into one timeline per
request, and each segment's median is printed. In the same rounds, and alternating with it, the
same requests go straight to the fake upstream and through the floor (floor_server.py), so the
figures say how much of chunkline's added first byte is its own work and how much is the trips
over loopback that any proxy makes (`make bench-server` reports the added first byte itself).
The server runs on asyncio's loop here, where the probe can wrap the transport, even where
uvloop is installed (and `chunkline serve` would run on it).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server_client
from bench_server import ROUTES, Target, percentile, sequential
from first_byte_probe import MOMENTS
from server_procs import Process, start_fake_upstream, start_floor, start_server

SEGMENTS = (
    ("the client writes the request -> the server has read it", "sent", "read"),
    ("-> the app begins (parsed, a task started)", "read", "app"),
    ("-> the upstream request is written (auth, JSON, translation)", "app", "upstream_write"),
    ("-> the upstream's first bytes (the fake upstream's own time)", "upstream_write", "upstream_read"),
    ("-> the first bytes leave for the client (head, conversion)", "upstream_read", "client_write"),
    ("-> the client has the body's first bytes", "client_write", "first_byte"),
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=100, help="one-at-a-time requests per round (100)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds, the order of targets turning (4)")
    parser.add_argument("--recording", default="llm_long_text", help="the recording (llm_long_text)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        trace = Path(folder, "moments")
        Path(folder, "sitecustomize.py").write_text(
            f"import sys\nsys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
            f"import first_byte_probe\nfirst_byte_probe.install({str(trace)!r})\n"
        )
        fake = start_fake_upstream()
        started = [fake]
        try:
            started.append(floor := start_floor(fake.port))
            # On asyncio's loop: the probe wraps its socket transport's write (uvloop's, in C,
            # cannot be wrapped).
            started.append(server := start_server(fake.url, first_on_path=folder, loop="asyncio"))
            asyncio.run(_measure(args, fake, floor, server, trace))
        finally:
            for process in reversed(started):
                process.stop()


async def _measure(
    args: argparse.Namespace, fake: Process, floor: Process, server: Process, trace: Path
) -> None:
    route = ROUTES["chat"]
    direct = Target("direct", fake, route.direct_path, route.direct_body, replayed=True)
    through_floor = Target("floor", floor, route.direct_path, route.direct_body, replayed=True)
    chunkline = Target("chunkline", server, route.path, route.body)
    client_moments: list[tuple[float, float]] = []  # (request written, first body bytes)
    send, request = server_client.Connection._send, server_client.Connection.request
    writes: list[float] = []

    async def sent(self: server_client.Connection, *given: Any) -> tuple[asyncio.StreamReader, float]:
        reader, started = await send(self, *given)
        writes.append(started)  # the client's own clock reading, which its ttfb counts from
        return reader, started

    async def timed(self: server_client.Connection, *given: Any) -> server_client.Result:
        result = await request(self, *given)
        if self.port == server.port:
            client_moments.append((writes[-1], writes[-1] + result.ttfb))
        return result

    server_client.Connection._send = sent  # type: ignore[method-assign]
    server_client.Connection.request = timed  # type: ignore[method-assign]
    for target in (direct, through_floor, chunkline):  # warm up
        await sequential(target, args.recording, 10)
    client_moments.clear()
    trace.write_text("")
    ttfb: dict[str, list[float]] = {"direct": [], "floor": [], "chunkline": []}
    for round_number in range(args.rounds):
        order = [direct, through_floor, chunkline]
        order = order[round_number % 3 :] + order[: round_number % 3]
        for target in order:
            ttfb[target.name] += await sequential(target, args.recording, args.requests)
    server_side = [[float(x) for x in line.split()] for line in trace.read_text().splitlines()]
    if len(server_side) != len(client_moments):
        raise SystemExit(f"{len(server_side)} server timelines for {len(client_moments)} requests")
    timelines = [
        dict(zip(("sent", *MOMENTS, "first_byte"), (sent, *moments, first), strict=True))
        for (sent, first), moments in zip(client_moments, server_side, strict=True)
    ]
    print(f"{len(timelines)} requests one at a time ({args.rounds} rounds), {args.recording}; medians, ms")
    for label, start, end in SEGMENTS:
        print(f"  {label:66}{statistics.median(t[end] - t[start] for t in timelines) * 1000:7.3f}")
    total = statistics.median(t["first_byte"] - t["sent"] for t in timelines) * 1000
    print(f"  {'time to first byte through chunkline':66}{total:7.3f}")
    own = statistics.median(
        (t["upstream_write"] - t["read"]) + (t["client_write"] - t["upstream_read"]) for t in timelines
    )
    print(f"  {'of which chunkline works (read -> upstream, upstream -> client)':66}{own * 1000:7.3f}")
    print()
    base = percentile(ttfb["direct"], 0.5)
    print(f"time to first byte, p50 (ms): straight to the fake upstream {base * 1000:.3f}")
    for name in ("floor", "chunkline"):
        p50 = percentile(ttfb[name], 0.5)
        added = (p50 - base) * 1000
        added99 = (percentile(ttfb[name], 0.99) - percentile(ttfb["direct"], 0.99)) * 1000
        print(f"  {name:10} {p50 * 1000:.3f}, added {added:+.3f} (p99 added {added99:+.3f})")


if __name__ == "__main__":
    main()
