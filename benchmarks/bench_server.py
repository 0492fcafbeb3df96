"""The server under load: streaming clients against ``chunkline serve`` and the fake upstream, on loopback.

Run with ``make bench-server`` (or ``python benchmarks/bench_server.py --help``). One run prints, in
this order:

- memory per open connection: the server's RSS growth with K streams held open by an upstream
  that stalls mid-stream, divided by K;
- time to first byte, one request at a time, straight to the fake upstream and through the server:
  the latency the proxy adds (p50, p99);
- throughput (streams/s, events/s) with N clients streaming back to back from an upstream that
  sends as fast as it can, and the CPU each process spent per stream;
- time to first byte with N streams open at once from an upstream that sends at a model's pace
  (an event every 50 ms), straight and through the server: the latency the proxy adds under load;
- what the metrics and the access line cost: they are recorded once per request (the server's
  ``observe`` stage sees a response's start, usage, block starts and finish, never its deltas),
  measured here per request and set against the server's CPU time per stream.

The fake upstream (tests/server/fake_anthropic.py) and the server run in their own processes, so
their RSS and CPU time come from /proc; the client is a lean raw-socket client in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server_client import Connection, Result
from server_procs import Process, start_fake_upstream, start_server

HEADERS = {"authorization": "Bearer sk-bench", "x-api-key": "sk-bench", "anthropic-version": "2023-06-01"}


class Target:
    """Where a streaming request goes: straight to the fake upstream, or through the server."""

    def __init__(
        self, name: str, process: Process, path: str, body: Callable[[str, int], dict[str, Any]]
    ) -> None:
        self.name = name
        self.process = process
        self.path = path
        self.body = body

    def connection(self) -> Connection:
        return Connection("127.0.0.1", self.process.port)

    def check(self, result: Result) -> int:
        """The number of events in a complete, successful answer."""
        if result.status != 200:
            raise RuntimeError(f"{self.name}: HTTP {result.status}: {result.body[:200]!r}")
        if self.name == "direct":
            if b"event: message_stop" not in result.body:
                raise RuntimeError("direct: the stream did not end with message_stop")
            return result.body.count(b"\nevent: ") + 1
        if not result.body.endswith(b"data: [DONE]\n\n") or b'"error"' in result.body[-400:]:
            raise RuntimeError(f"proxy: the stream did not finish: {result.body[-200:]!r}")
        return result.body.count(b"data: ")


def _direct_body(model: str, n: int) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 1024,
        "stream": True,
        "messages": [{"role": "user", "content": f"#{n}"}],
    }


def _proxy_body(model: str, n: int) -> dict[str, Any]:
    return {"model": model, "stream": True, "messages": [{"role": "user", "content": f"#{n}"}]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def sequential(target: Target, model: str, count: int) -> list[float]:
    """TTFB of ``count`` requests one after another on one keep-alive connection."""
    connection = target.connection()
    ttfbs = []
    try:
        for n in range(count):
            result = await connection.request(target.path, target.body(model, n), HEADERS)
            target.check(result)
            ttfbs.append(result.ttfb)
    finally:
        connection.close()
    return ttfbs


async def load(
    target: Target, model: str, clients: int, seconds: float, *, stagger: float = 0.0
) -> dict[str, Any]:
    """``clients`` concurrent clients, each streaming back to back on its own connection, for
    ``seconds`` (no stream starts after that); with ``stagger``, client k starts
    ``k / clients * stagger`` seconds late, so the streams do not all begin (and end) at the same
    moment. Returns throughput, TTFB and CPU."""
    ttfbs: list[float] = []
    events = 0
    streams = 0
    deadline = time.perf_counter() + max(seconds, stagger)

    async def client(k: int) -> None:
        nonlocal events, streams
        await asyncio.sleep(k / clients * stagger)
        connection = target.connection()
        try:
            n = 0
            while time.perf_counter() < deadline:
                result = await connection.request(target.path, target.body(model, k * 1_000_000 + n), HEADERS)
                events += target.check(result)
                ttfbs.append(result.ttfb)
                streams += 1
                n += 1
        finally:
            connection.close()

    cpu_before = {p.name: p.cpu_seconds() for p in PROCESSES}
    client_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.perf_counter() - started
    cpu = {p.name: p.cpu_seconds() - cpu_before[p.name] for p in PROCESSES}
    cpu["client"] = time.process_time() - client_before
    return {
        "streams": streams,
        "elapsed": elapsed,
        "streams_per_s": streams / elapsed,
        "events_per_s": events / elapsed,
        "ttfb_p50": percentile(ttfbs, 0.5),
        "ttfb_p99": percentile(ttfbs, 0.99),
        "cpu_ms_per_stream": {name: 1000 * seconds / streams for name, seconds in cpu.items()},
    }


async def memory_per_connection(server: Process, held: int) -> tuple[int, int, float]:
    """(RSS before, RSS with ``held`` streams open, bytes per stream). The upstream sends three
    events of each answer, then stalls until the client leaves."""
    target = Target("proxy", server, "/v1/chat/completions", _proxy_body)
    await asyncio.sleep(0.5)
    before = server.rss_bytes()
    connections = [target.connection() for _ in range(held)]
    try:
        await asyncio.gather(
            *(
                c.open_stream(target.path, _proxy_body("stall:3", n), HEADERS)
                for n, c in enumerate(connections)
            )
        )
        await asyncio.sleep(0.5)
        during = server.rss_bytes()
    finally:
        for connection in connections:
            connection.close()
    return before, during, (during - before) / held


PROCESSES: list[Process] = []


def _label(target: Target) -> str:
    return "fake upstream directly" if target.name == "direct" else "through chunkline serve"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=100, help="concurrent streaming clients (default 100)")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each load phase (default 6)")
    parser.add_argument(
        "--pace", type=float, default=50.0, help="ms between upstream events in the paced phase (default 50)"
    )
    parser.add_argument("--sequential", type=int, default=200, help="one-at-a-time requests per path (200)")
    parser.add_argument("--held", type=int, default=500, help="streams held open for the memory figure (500)")
    parser.add_argument(
        "--recording",
        default="llm_long_text",
        help="the recording each stream replays (default llm_long_text)",
    )
    args = parser.parse_args()
    # Every held stream costs the server two descriptors and this process one.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.held + 4 * args.clients + 256)), hard)
    )

    fake = start_fake_upstream()
    PROCESSES.append(fake)
    try:
        server = start_server(fake.url)
        PROCESSES.append(server)
        asyncio.run(_run(args, fake, server))
    finally:
        for process in reversed(PROCESSES):
            process.stop()


async def _run(args: argparse.Namespace, fake: Process, server: Process) -> None:
    direct = Target("direct", fake, "/v1/messages", _direct_body)
    proxy = Target("proxy", server, "/v1/chat/completions", _proxy_body)
    model = args.recording
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("uvicorn", "starlette", "httpx", "h11")
    )
    extras = [name for name in ("uvloop", "httptools") if _installed(name)]
    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"chunkline serve benchmark: {python}, {versions}")
    print(f"uvicorn speedups installed: {', '.join(extras) or 'none (asyncio loop, h11 parser)'}")
    print(f"machine: {_cpu()}, {_cores()} cores; Linux {platform.release()}")
    events = await _event_count(direct, model)
    print(f"each stream replays {model} ({events} upstream events)")
    print()

    for target in (direct, proxy):  # warm up: connections, pools, caches
        await sequential(target, model, 20)

    before, during, per = await memory_per_connection(server, args.held)
    print(f"memory: {args.held} streams held open through the server (the upstream stalls mid-answer):")
    rss = f"{before / 2**20:.1f} MiB -> {during / 2**20:.1f} MiB"
    print(f"  server RSS {rss}: {per / 1024:.1f} KiB per open stream")
    print()

    direct_ttfb = await sequential(direct, model, args.sequential)
    proxy_ttfb = await sequential(proxy, model, args.sequential)
    print(f"time to first byte, one request at a time ({args.sequential} each), ms:")
    print(f"  {'':28} {'p50':>8} {'p99':>8}")
    for target, values in ((direct, direct_ttfb), (proxy, proxy_ttfb)):
        print(f"  {_label(target):28} {_ms(percentile(values, 0.5)):>8} {_ms(percentile(values, 0.99)):>8}")
    added50 = percentile(proxy_ttfb, 0.5) - percentile(direct_ttfb, 0.5)
    added99 = percentile(proxy_ttfb, 0.99) - percentile(direct_ttfb, 0.99)
    print(f"  {'added by the proxy':28} {_ms(added50):>8} {_ms(added99):>8}")
    print()

    phase = (
        f"{args.clients} clients streaming back to back, the upstream as fast as it can, {args.seconds:g} s"
    )
    print(f"throughput: {phase}:")
    print(f"  {'':28} {'streams/s':>10} {'events/s':>10}   CPU ms per stream")
    server_cpu_ms = 0.0
    for target in (direct, proxy):
        result = await load(target, model, args.clients, args.seconds)
        if target is proxy:
            server_cpu_ms = result["cpu_ms_per_stream"].get(server.name, 0.0)
        cpu = ", ".join(f"{name} {ms:.2f}" for name, ms in result["cpu_ms_per_stream"].items() if ms >= 0.005)
        print(
            f"  {_label(target):28} {result['streams_per_s']:>10.0f} {result['events_per_s']:>10.0f}   {cpu}"
        )
    print()

    paced = f"{model}~{args.pace:g}"
    print(
        f"time to first byte with {args.clients} streams open at once, the upstream sending an event "
        f"every {args.pace:g} ms, {args.seconds:g} s, ms:"
    )
    print(f"  {'':28} {'p50':>8} {'p99':>8} {'streams':>8} {'events/s':>9}")
    results = {}
    for target in (direct, proxy):
        # Arrivals spread over one stream's length, as independent users' requests would be.
        stagger = args.pace / 1000 * events
        result = results[target.name] = await load(target, paced, args.clients, args.seconds, stagger=stagger)
        print(
            f"  {_label(target):28} {_ms(result['ttfb_p50']):>8} {_ms(result['ttfb_p99']):>8} "
            f"{result['streams']:>8} {result['events_per_s']:>9.0f}"
        )
    added50 = results["proxy"]["ttfb_p50"] - results["direct"]["ttfb_p50"]
    added99 = results["proxy"]["ttfb_p99"] - results["direct"]["ttfb_p99"]
    print(f"  {'added by the proxy':28} {_ms(added50):>8} {_ms(added99):>8}")
    print()

    per_request = _observation_cost()
    share = (
        f", {per_request * 1000 / server_cpu_ms:.1%} of the server's CPU per stream" if server_cpu_ms else ""
    )
    print("metrics and the access line (recorded once per request; nothing is recorded per event):")
    print(
        f"  {per_request * 1e6:.1f} us per request{share}; "
        f"{per_request * 1e6 / events:.2f} us per upstream event of this stream, spread out"
    )
    print()


def _observation_cost(count: int = 20000) -> float:
    """Seconds per request for what the server records when a request ends: the metrics (label
    lookups and histogram observations) and the access line's fields and text (not its I/O)."""
    from chunkline.server.accesslog import access_fields, access_text
    from chunkline.server.metrics import Metrics
    from chunkline.server.observe import RequestRecord

    metrics = Metrics(lambda: (0, 0), 1000)
    record = RequestRecord(id="req_bench", started=time.perf_counter(), route="/v1/chat/completions")
    record.status, record.stream, record.client_model, record.upstream_model = 200, True, "gpt-4o", "claude"
    record.duration, record.first_byte, record.first_token = 0.5, 0.01, 0.02
    record.input_tokens, record.output_tokens, record.cache_read_tokens = 100, 200, 50
    started = time.perf_counter()
    for _ in range(count):
        metrics.observe(record)
        access_text(access_fields(record))
    return (time.perf_counter() - started) / count


async def _event_count(direct: Target, model: str) -> int:
    connection = direct.connection()
    try:
        return direct.check(await connection.request(direct.path, direct.body(model, 0), HEADERS))
    finally:
        connection.close()


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _cores() -> int:
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
