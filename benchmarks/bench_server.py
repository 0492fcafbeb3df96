"""The server's cost beside its floor (and, with ``--peers``, the LiteLLM proxy's), one run on loopback.

Run with ``make bench-server`` (``make bench-server PEERS=1`` adds the LiteLLM proxy), or
``python benchmarks/bench_server.py --help``. Every process serves the same fake upstream replaying
one recording; each is its own process, so its CPU time and RSS come from /proc. The route
(``--route``, ``make bench-server ROUTE=messages``) is ``chat``, chat completions before a fake
Anthropic API (tests/server/fake_anthropic.py), ``responses``, Codex's Responses API before the
same, or ``messages``, Claude Code's Anthropic Messages before a fake OpenAI-compatible API
(tests/server/fake_openai_chat.py):

- **floor**: floor_server.py, a bare asyncio relay of the upstream's bytes (no conversion, no
  framework): what any proxy spends to move one stream over loopback;
- **chunkline**: ``chunkline serve``, one worker;
- **litellm** (``--peers``): the LiteLLM proxy, one worker, an ``anthropic/`` model per recording.

The measures, taken in rounds (each target once per round, the order turning round by round, so
no target gains from running later), reported as the median over rounds:

- server CPU per stream: ``--clients`` clients streaming back to back for ``--seconds``;
- added time to first byte, p50 and p99: ``--sequential`` requests one at a time, minus the same
  percentiles straight to the fake upstream;
- memory per held-open stream (once per target, before the rounds): RSS growth with ``--held``
  streams open on an upstream that stalls mid-answer, divided by ``--held``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server_client import Connection, Result
from server_procs import LITELLM_KEY, Process, start_fake_upstream, start_floor, start_litellm, start_server

HEADERS = {"authorization": "Bearer sk-bench", "x-api-key": "sk-bench", "anthropic-version": "2023-06-01"}
LITELLM_HEADERS = {**HEADERS, "authorization": f"Bearer {LITELLM_KEY}"}
TARGETS = {"cpu_ms": "<= 3", "floor_ratio": "<= 4", "ttfb_p50": "<= 0.5", "ttfb_p99": "<= 2", "kib": "<= 16"}


def _messages_body(model: str, n: int) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 1024,
        "stream": True,
        "messages": [{"role": "user", "content": f"#{n}"}],
    }


def _chat_body(model: str, n: int) -> dict[str, Any]:
    return {"model": model, "stream": True, "messages": [{"role": "user", "content": f"#{n}"}]}


def _responses_body(model: str, n: int) -> dict[str, Any]:
    return {"model": model, "stream": True, "input": f"#{n}"}


@dataclass(frozen=True)
class Route:
    """What a run serves: the fake upstream (a module of tests/server), chunkline in front of it
    (``--upstream`` is the fake's URL and ``base``), and the requests. The direct requests, and
    the floor's, take the fake upstream's own route."""

    fake: str
    upstream_format: str | None
    base: str
    path: str
    body: Callable[[str, int], dict[str, Any]]
    direct_path: str
    direct_body: Callable[[str, int], dict[str, Any]]
    recording: str


ROUTES = {
    # The OpenAI SDK and Codex in front of Claude: chat completions out of Anthropic Messages.
    "chat": Route(
        fake="fake_anthropic",
        upstream_format=None,
        base="",
        path="/v1/chat/completions",
        body=_chat_body,
        direct_path="/v1/messages",
        direct_body=_messages_body,
        recording="llm_long_text",
    ),
    # Codex in front of Claude: Responses API events out of Anthropic Messages.
    "responses": Route(
        fake="fake_anthropic",
        upstream_format=None,
        base="",
        path="/v1/responses",
        body=_responses_body,
        direct_path="/v1/messages",
        direct_body=_messages_body,
        recording="llm_long_text",
    ),
    # Claude Code in front of an OpenAI-compatible model: Anthropic Messages out of chat completions.
    "messages": Route(
        fake="fake_openai_chat",
        upstream_format="openai-chat",
        base="/v1",
        path="/v1/messages",
        body=_messages_body,
        direct_path="/v1/chat/completions",
        direct_body=_chat_body,
        recording="vercel_openai_text_include_usage@events",
    ),
}


class Target:
    """Where a streaming request goes, and how a complete answer from there looks."""

    def __init__(
        self,
        name: str,
        process: Process,
        path: str,
        body: Callable[[str, int], dict[str, Any]],
        headers: dict[str, str] = HEADERS,
        *,
        replayed: bool = False,
    ) -> None:
        self.name = name
        self.process = process
        self.path = path
        self.body = body
        self.headers = headers
        #: The fake upstream's recording as it is, which may not end as a client's stream does
        #: (an OpenAI recording without ``[DONE]``): only a whole 200 body is checked.
        self.replayed = replayed

    def connection(self) -> Connection:
        return Connection("127.0.0.1", self.process.port)

    def check(self, result: Result) -> None:
        if result.status != 200:
            raise RuntimeError(f"{self.name}: HTTP {result.status}: {result.body[:200]!r}")
        if self.replayed:
            return
        if self.path == "/v1/messages":
            if b"event: message_stop" not in result.body:
                raise RuntimeError(f"{self.name}: the stream did not end with message_stop")
        elif self.path == "/v1/responses":
            if b"event: response.completed" not in result.body[-100_000:]:
                raise RuntimeError(f"{self.name}: the stream did not end with response.completed")
        elif not result.body.rstrip().endswith(b"data: [DONE]") or b'"error"' in result.body[-400:]:
            raise RuntimeError(f"{self.name}: the stream did not finish: {result.body[-200:]!r}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def sequential(target: Target, model: str, count: int) -> list[float]:
    """TTFB of ``count`` requests one after another on one keep-alive connection."""
    connection = target.connection()
    ttfbs = []
    try:
        for n in range(count):
            result = await connection.request(target.path, target.body(model, n), target.headers)
            target.check(result)
            ttfbs.append(result.ttfb)
    finally:
        connection.close()
    return ttfbs


async def load(target: Target, model: str, clients: int, seconds: float) -> tuple[int, float]:
    """``clients`` clients streaming back to back, each on its own connection, for ``seconds``
    (no stream starts after that). Returns (streams, the target's CPU seconds)."""
    streams = 0
    deadline = time.perf_counter() + seconds

    async def client(k: int) -> None:
        nonlocal streams
        connection = target.connection()
        try:
            n = 0
            while time.perf_counter() < deadline:
                result = await connection.request(
                    target.path, target.body(model, k * 1_000_000 + n), target.headers
                )
                target.check(result)
                streams += 1
                n += 1
        finally:
            connection.close()

    before = target.process.cpu_seconds()
    await asyncio.gather(*(client(k) for k in range(clients)))
    return streams, target.process.cpu_seconds() - before


async def memory_per_stream(target: Target, held: int) -> float:
    """Bytes of RSS per stream with ``held`` streams open; the upstream sends three events of
    each answer, then stalls until the client leaves."""
    await asyncio.sleep(0.5)
    before = target.process.rss_bytes()
    connections = [target.connection() for _ in range(held)]
    try:
        await asyncio.gather(
            *(
                c.open_stream(target.path, target.body("stall:3", n), target.headers)
                for n, c in enumerate(connections)
            )
        )
        await asyncio.sleep(0.5)
        during = target.process.rss_bytes()
    finally:
        for connection in connections:
            connection.close()
    return (during - before) / held


def add_measure_options(parser: argparse.ArgumentParser, *, seconds: float, rounds: int) -> None:
    """The options of the measures (this script's and ab_server.py's)."""
    parser.add_argument("--clients", type=int, default=50, help="concurrent streaming clients (default 50)")
    parser.add_argument(
        "--seconds", type=float, default=seconds, help=f"length of each load phase (default {seconds:g})"
    )
    parser.add_argument("--rounds", type=int, default=rounds, help=f"interleaved rounds (default {rounds})")
    parser.add_argument("--sequential", type=int, default=100, help="one-at-a-time requests per round (100)")
    parser.add_argument("--held", type=int, default=200, help="streams held open for the memory figure (200)")
    parser.add_argument(
        "--route",
        choices=sorted(ROUTES),
        default="chat",
        help="chat: /v1/chat/completions before a fake Anthropic API (default); responses: "
        "/v1/responses before it; messages: /v1/messages before a fake OpenAI-compatible one "
        "(--upstream-format openai-chat)",
    )
    parser.add_argument(
        "--recording",
        help="the recording each stream replays (llm_long_text; messages: the longest OpenAI one)",
    )


def route_of(args: argparse.Namespace) -> Route:
    """The route the options chose; ``args.recording`` is set to its default when not given."""
    route = ROUTES[args.route]
    args.recording = args.recording or route.recording
    return route


def allow_open_files(args: argparse.Namespace) -> None:
    """Raise the soft limit on open files to what the held streams and the clients need."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * args.held + 4 * args.clients + 256
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, wanted)), hard))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_measure_options(parser, seconds=4.0, rounds=3)
    parser.add_argument(
        "--peers",
        metavar="LITELLM",
        help="the litellm command (of .venv-peers) to run the LiteLLM proxy beside",
    )
    args = parser.parse_args()
    route = route_of(args)
    if args.peers and args.route != "chat":
        parser.error("--peers runs the LiteLLM proxy on the chat route only")
    allow_open_files(args)

    processes: list[Process] = []
    try:
        fake = start_fake_upstream(module=route.fake)
        processes.append(fake)
        processes.append(start_floor(fake.port))
        processes.append(start_server(fake.url + route.base, upstream_format=route.upstream_format))
        if args.peers:
            workdir = Path(tempfile.mkdtemp(prefix="chunkline-bench-"))
            processes.append(
                start_litellm(os.path.abspath(args.peers), fake.url, [args.recording, "stall:3"], workdir)
            )
        asyncio.run(_run(args, route, processes))
    finally:
        for process in reversed(processes):
            process.stop()


async def _run(args: argparse.Namespace, route: Route, processes: list[Process]) -> None:
    fake, floor, server, *peers = processes
    direct = Target("direct", fake, route.direct_path, route.direct_body, replayed=True)
    targets = [
        Target("floor", floor, route.direct_path, route.direct_body, replayed=True),
        Target("chunkline", server, route.path, route.body),
        *(Target("litellm", peer, "/v1/chat/completions", _chat_body, LITELLM_HEADERS) for peer in peers),
    ]
    _print_machine(args, peers)
    model = args.recording
    for target in (direct, *targets):  # warm up: connections, pools, caches
        await sequential(target, model, 10)

    figures: dict[str, dict[str, list[float]]] = {t.name: {} for t in targets}
    for target in targets:
        figures[target.name]["kib"] = [await memory_per_stream(target, args.held) / 1024]
    for round_number in range(args.rounds):
        turn = round_number % len(targets)
        for target in targets[turn:] + targets[:turn]:
            started = time.perf_counter()
            streams, cpu = await load(target, model, args.clients, args.seconds)
            elapsed = time.perf_counter() - started
            own = figures[target.name]
            own.setdefault("cpu_ms", []).append(1000 * cpu / streams)
            own.setdefault("streams_s", []).append(streams / elapsed)
        base = await sequential(direct, model, args.sequential)
        for target in targets[turn:] + targets[:turn]:
            ttfb = await sequential(target, model, args.sequential)
            for q, key in ((0.5, "ttfb_p50"), (0.99, "ttfb_p99")):
                figures[target.name].setdefault(key, []).append(
                    1000 * (percentile(ttfb, q) - percentile(base, q))
                )
    _print_table(figures, args)
    per_request = _observation_cost()
    server_cpu_ms = statistics.median(figures["chunkline"]["cpu_ms"])
    print()
    print("metrics and the access line (recorded once per request; nothing is recorded per event):")
    print(
        f"  {per_request * 1e6:.1f} us per request, {per_request * 1000 / server_cpu_ms:.1%} of the "
        "server's CPU per stream"
    )


def _print_machine(args: argparse.Namespace, peers: list[Process]) -> None:
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("uvicorn", "starlette", "httpx", "h11")
    )
    extras = [name for name in ("uvloop", "httptools") if _installed(name)]
    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"chunkline serve benchmark: {python}, {versions}")
    print(f"uvicorn speedups installed: {', '.join(extras) or 'none (asyncio loop, h11 parser)'}")
    if peers:
        print(f"peer: the LiteLLM proxy ({args.peers}), one worker")
    print(f"machine: {_cpu()}, {_cores()} cores; Linux {platform.release()}")
    print(
        f"route: {args.route} ({ROUTES[args.route].path}); {args.rounds} interleaved rounds; each: "
        f"{args.clients} clients streaming {args.recording} "
        f"back to back for {args.seconds:g} s per target, then {args.sequential} sequential requests each; "
        f"memory with {args.held} streams held open; medians over rounds"
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


def _print_table(figures: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> None:
    names = list(figures)
    median = {
        name: {key: statistics.median(values) for key, values in own.items()} for name, own in figures.items()
    }
    floor_cpu = median["floor"]["cpu_ms"]
    for own in median.values():
        own["floor_ratio"] = own["cpu_ms"] / floor_cpu
    rows = [
        ("server CPU per stream, ms", "cpu_ms", "{:.2f}"),
        ("  ÷ the floor's", "floor_ratio", "{:.1f}"),
        (f"streams/s ({args.clients} clients, one worker)", "streams_s", "{:.0f}"),
        ("added TTFB p50, ms (sequential)", "ttfb_p50", "{:.2f}"),
        ("added TTFB p99, ms (sequential)", "ttfb_p99", "{:.2f}"),
        ("memory per held-open stream, KiB", "kib", "{:.1f}"),
    ]
    width = 42
    print(f"{'measure':{width}}" + "".join(f"{name:>12}" for name in names) + f"{'target':>10}")
    for label, key, form in rows:
        cells = "".join(f"{form.format(median[name][key]):>12}" for name in names)
        print(f"{label:{width}}{cells}{TARGETS.get(key, ''):>10}")
    if "litellm" in median:
        ratios = {
            "CPU per stream": median["litellm"]["cpu_ms"] / median["chunkline"]["cpu_ms"],
            "memory per stream": median["litellm"]["kib"] / max(median["chunkline"]["kib"], 0.1),
        }
        print()
        for what, ratio in ratios.items():
            target = "  (target >= 40x)" if what == "CPU per stream" else ""
            print(f"LiteLLM ÷ chunkline, {what}: {ratio:.1f}x{target}")
        added = median["litellm"]["ttfb_p50"] - median["chunkline"]["ttfb_p50"]
        print(f"LiteLLM adds {added:.2f} ms more to the first byte (p50) than chunkline")
    spread = {name: (min(figures[name]["cpu_ms"]), max(figures[name]["cpu_ms"])) for name in names}
    print()
    print(
        "CPU per stream over the rounds (min-max, ms): "
        + ", ".join(f"{n} {a:.2f}-{b:.2f}" for n, (a, b) in spread.items())
    )


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
