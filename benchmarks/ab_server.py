"""Two versions of ``chunkline serve`` side by side in one run: CPU, first byte, memory per stream.

    python benchmarks/ab_server.py --before REV [--after REV]    (or: make bench-ab BEFORE=REV)

``--before`` (and ``--after``, by default the working tree) is any git revision; its ``src`` is
exported to a temporary folder and served from there, with this checkout's environment.
``--before-loop`` and ``--after-loop`` run a version on the event loop named (``--loop``), so
one revision on asyncio's loop and on uvloop compare too. Both
servers run at once in front of one fake upstream, and every measure alternates between them
round by round (A B, then B A, ...), so a machine that gets busier or quieter part way through
weighs on both alike: the figures of one run compare, those of two runs may not. Per round:

- CPU per stream: ``--clients`` clients streaming back to back for ``--seconds``;
- the added time to first byte (p50, p99): ``--sequential`` requests one at a time, minus the same
  straight to the fake upstream in the same round;
- memory per held stream: a fresh server of each version, RSS growth with ``--held`` streams held
  open, divided by ``--held`` (RSS keeps its peak, so each measure needs a new process).

Prints each measure's median over the rounds for both, the ratio after/before, and every round.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_server import (
    Route,
    Target,
    add_measure_options,
    allow_open_files,
    load,
    memory_per_stream,
    percentile,
    route_of,
    sequential,
)
from server_procs import ROOT, Process, start_fake_upstream, start_server

MEASURES = (
    ("server CPU per stream, ms", "cpu_ms", "{:.2f}"),
    ("added TTFB p50, ms", "ttfb_p50", "{:.2f}"),
    ("added TTFB p99, ms", "ttfb_p99", "{:.2f}"),
    ("memory per held stream, KiB", "kib", "{:.2f}"),
)


def export(revision: str, into: Path) -> str:
    """``revision``'s ``src`` folder, written below ``into``; its path."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "src"], capture_output=True)
    if archive.returncode:
        raise SystemExit(f"ab_server: cannot export {revision!r}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return str(into / "src")


async def _rounds(
    args: argparse.Namespace, route: Route, fake: Process, sources: dict[str, str | None]
) -> dict[str, dict[str, list[float]]]:
    loops = {"before": args.before_loop, "after": args.after_loop}

    def serve(name: str) -> Process:
        return start_server(fake.url + route.base, sources[name], route.upstream_format, loops[name])

    servers = {name: serve(name) for name in sources}
    figures: dict[str, dict[str, list[float]]] = {
        name: {key: [] for _, key, _ in MEASURES} for name in sources
    }
    try:
        direct = Target("direct", fake, route.direct_path, route.direct_body, replayed=True)
        targets = {name: Target(name, server, route.path, route.body) for name, server in servers.items()}
        for target in (direct, *targets.values()):
            await sequential(target, args.recording, 10)
        for number in range(args.rounds):
            order = list(targets) if number % 2 == 0 else list(reversed(targets))
            for name in order:
                streams, cpu = await load(targets[name], args.recording, args.clients, args.seconds)
                figures[name]["cpu_ms"].append(1000 * cpu / streams)
            base = await sequential(direct, args.recording, args.sequential)
            for name in order:
                ttfb = await sequential(targets[name], args.recording, args.sequential)
                for q, key in ((0.5, "ttfb_p50"), (0.99, "ttfb_p99")):
                    figures[name][key].append(1000 * (percentile(ttfb, q) - percentile(base, q)))
            for name in order:
                fresh = serve(name)
                try:
                    target = Target(name, fresh, route.path, route.body)
                    await sequential(target, args.recording, 10)
                    figures[name]["kib"].append(await memory_per_stream(target, args.held) / 1024)
                finally:
                    fresh.stop()
            print(f"round {number + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    finally:
        for server in servers.values():
            server.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", required=True, help="the git revision to compare against")
    parser.add_argument("--after", help="the git revision to compare (default: the working tree)")
    for name in ("before", "after"):
        parser.add_argument(
            f"--{name}-loop",
            choices=("auto", "asyncio", "uvloop"),
            help=f"the event loop the {name} version runs on (default: the one chunkline serve chooses)",
        )
    add_measure_options(parser, seconds=3.0, rounds=4)
    args = parser.parse_args()
    route = route_of(args)
    allow_open_files(args)
    with tempfile.TemporaryDirectory(prefix="chunkline-ab-") as folder:
        sources: dict[str, str | None] = {
            "before": export(args.before, Path(folder, "before")),
            "after": export(args.after, Path(folder, "after")) if args.after else None,
        }
        fake = start_fake_upstream(module=route.fake)
        try:
            figures = asyncio.run(_rounds(args, route, fake, sources))
        finally:
            fake.stop()
    after = args.after or "the working tree"
    after += f" (on {args.after_loop})" if args.after_loop else ""
    before = args.before + (f" (on {args.before_loop})" if args.before_loop else "")
    print(
        f"before: {before}; after: {after}; route {args.route}, {args.rounds} rounds, "
        f"{args.recording}, medians"
    )
    print(f"{'measure':32}{'before':>10}{'after':>10}{'after/before':>14}")
    for label, key, form in MEASURES:
        a, b = (statistics.median(figures[name][key]) for name in ("before", "after"))
        ratio = f"{b / a:.2f}" if a > 0 else "-"
        print(f"{label:32}{form.format(a):>10}{form.format(b):>10}{ratio:>14}")
    print()
    for label, key, form in MEASURES:
        for name in ("before", "after"):
            print(f"{label}, {name}: " + " ".join(form.format(v) for v in figures[name][key]))


if __name__ == "__main__":
    main()
