"""Peer comparison for the openai-responses route: chunkline against ccproxy-api 0.2.10's
AnthropicToOpenAIResponsesStreamAdapter on one stream, one run.

ccproxy-api 0.2.x dropped the 0.1.x adapter that peers.py measures, so this peer gets a venv of its
own (``make bench-peers`` makes both). The adapter is handed the events already parsed into its own
pydantic models (parsing them is not timed), and its output events are left as objects; chunkline
is handed raw bytes and writes framed SSE.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
from collections.abc import AsyncIterator, Callable
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import READ_SIZE, interleaved_best, run_pipeline
from responses_floor import responses_floor
from stream import anthropic_events, sse_bytes

import chunkline

#: What this route must reach against the peer (issue 12).
TARGET_RATIO = 3.0


def ccproxy_adapter(events: list[dict]) -> Callable[[], list[Any]]:
    try:
        from ccproxy.llms.formatters.anthropic_to_openai.streams import (
            AnthropicToOpenAIResponsesStreamAdapter,
        )
        from ccproxy.llms.models import anthropic as models
        from pydantic import TypeAdapter
    except ImportError as exc:
        sys.exit(f"peers_responses.py: {exc}; run `make bench-peers`, which installs ccproxy-api 0.2.10")
    parsed = [TypeAdapter(models.MessageStreamEvent).validate_python(event) for event in events]

    async def source() -> AsyncIterator[Any]:
        for event in parsed:
            yield event

    async def convert() -> list[Any]:
        return [event async for event in AnthropicToOpenAIResponsesStreamAdapter().run(source())]

    return lambda: asyncio.run(convert())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="timing repeats (the best is kept)")
    args = parser.parse_args(argv)
    events = anthropic_events()
    data = sse_bytes(events)
    reads = [data[i : i + READ_SIZE] for i in range(0, len(data), READ_SIZE)]
    n = len(events)
    print(f"chunkline {chunkline.__version__} against ccproxy-api {metadata.version('ccproxy-api')}")
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{platform.system()} {platform.release()}"
    )
    print(f"stream: {n} events, {len(data):,} bytes; best of {args.repeat}; imports are not timed\n")
    rows = [
        ("floor (hand-written, no stages)", "raw bytes", lambda: responses_floor(reads)),
        (
            "chunkline openai-responses",
            "raw bytes",
            run_pipeline(chunkline.Pipeline(target="openai-responses"), reads),
        ),
        ("ccproxy-api Responses adapter", "parsed models, async", ccproxy_adapter(events)),
    ]
    timings = interleaved_best([fn for _, _, fn in rows], args.repeat)
    print(f"{'converter':34} {'fed':22} {'events/s':>10} {'us/event':>9} {'vs floor':>9}")
    for (label, fed, _), seconds in zip(rows, timings, strict=True):
        print(
            f"{label:34} {fed:22} {n / seconds:10,.0f} {seconds / n * 1e6:9.2f} {timings[0] / seconds:9.2f}"
        )
    ratio = timings[2] / timings[1]
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(f"\nchunkline is {ratio:.1f}x ccproxy-api's adapter ({verdict} the target of {TARGET_RATIO:.0f}x)")


if __name__ == "__main__":
    main()
