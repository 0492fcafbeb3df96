"""Peer comparison: the floor, chunkline, ccproxy-api's and LiteLLM's converters on one stream, one run."""

from __future__ import annotations

import argparse
import asyncio
import codecs
import datetime
import os
import platform
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import READ_SIZE, best_seconds, floor, interleaved_best, run_pipeline
from stream import anthropic_events, sse_bytes

import chunkline
from chunkline.compat.ccproxy import OpenAIStreamProcessor as FacadeProcessor

MODEL = "claude-sonnet-4-5-20250929"
# What ccproxy-api's own OpenAIAdapter.adapt_stream passes (and so what its proxy runs).
CCPROXY_ADAPTER_ARGS = {"enable_usage": True, "enable_tool_calls": True, "enable_text_chunking": False}


def import_peers() -> SimpleNamespace:
    """Import the peers (heavy, so before any timing). LiteLLM is told to use its bundled price map
    instead of fetching one at import."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        from ccproxy.adapters.openai.streaming import OpenAIStreamProcessor
        from litellm import CustomStreamWrapper
        from litellm.litellm_core_utils.litellm_logging import Logging
        from litellm.llms.anthropic.chat.handler import ModelResponseIterator
        from litellm.llms.custom_httpx.sse_lines import aiter_sse_lines
    except ImportError as exc:
        sys.exit(f"peers.py: {exc}; run `make bench-peers`, which installs the peers into .venv-peers")
    return SimpleNamespace(
        ccproxy_processor=OpenAIStreamProcessor,
        stream_wrapper=CustomStreamWrapper,
        logging=Logging,
        response_iterator=ModelResponseIterator,
        aiter_sse_lines=aiter_sse_lines,
    )


async def aiter_list(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


def ccproxy_style(processor_cls: Any, events: list[dict], **kwargs: Any) -> Callable[[], list[str]]:
    """ccproxy's API: ``process_stream`` over an async iterator of event dicts, one ``asyncio.run``."""

    async def convert() -> list[str]:
        processor = processor_cls(**kwargs)
        return [piece async for piece in processor.process_stream(aiter_list(events))]

    return lambda: asyncio.run(convert())


def litellm_parser(peers: SimpleNamespace, events: list[dict]) -> Callable[[], list[Any]]:
    """LiteLLM's bare per-event Anthropic parser, called synchronously: dicts in, ModelResponseStream out."""

    def convert() -> list[Any]:
        parse = peers.response_iterator(streaming_response=None, sync_stream=True).chunk_parser
        return [parse(event) for event in events]

    return convert


def litellm_wrapper(
    peers: SimpleNamespace, reads: list[bytes], serialize: bool, last: list[Any] | None = None
) -> Callable[[], list[Any]]:
    """What ``litellm.acompletion(model="anthropic/...", stream=True)`` hands back, built as its Anthropic
    handler builds it: the body decoded as httpx's ``aiter_text`` does, split by ``aiter_sse_lines``, parsed
    by ``ModelResponseIterator`` and wrapped in ``CustomStreamWrapper`` (with a fresh per-request Logging
    object, ~25 us). With ``serialize``, each chunk is then written as the LiteLLM proxy writes it. The
    wrapper of the latest run is kept in ``last`` when given."""

    async def body() -> AsyncIterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for read in reads:
            text = decoder.decode(read)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    async def convert() -> list[Any]:
        logging_obj = peers.logging(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            call_type="acompletion",
            start_time=datetime.datetime.now(),
            litellm_call_id=str(uuid.uuid4()),
            function_id="bench",
        )
        logging_obj.update_environment_variables(
            litellm_params={"custom_llm_provider": "anthropic"}, optional_params={}, model=MODEL
        )
        iterator = peers.response_iterator(
            streaming_response=peers.aiter_sse_lines(body()), sync_stream=False
        )
        stream = peers.stream_wrapper(
            completion_stream=iterator, model=MODEL, custom_llm_provider="anthropic", logging_obj=logging_obj
        )
        if last is not None:
            last[:] = [stream]
        if not serialize:
            return [chunk async for chunk in stream]
        out = [
            b"data: " + chunk.model_dump_json(exclude_none=True, exclude_unset=True).encode() + b"\n\n"
            async for chunk in stream
        ]
        out.append(b"data: [DONE]\n\n")
        return out

    return lambda: asyncio.run(convert())


def sse_chunks(pieces: Iterable[bytes | str]) -> list[dict]:
    """The JSON objects of an OpenAI SSE stream (``[DONE]`` left out)."""
    blob = b"".join(p.encode() if isinstance(p, str) else p for p in pieces)
    chunks = []
    for frame in blob.split(b"\n\n"):
        for line in frame.split(b"\n"):
            if line.startswith(b"data: ") and line != b"data: [DONE]":
                chunks.append(orjson.loads(line[6:]))
    return chunks


def observe(chunks: list[dict], events: list[dict]) -> str:
    """Merge the deltas as the openai SDK does (strings concatenated per tool-call index) and compare
    with what the Anthropic stream said."""
    want_text = want_thinking = ""
    want_calls: list[dict[str, str]] = []
    for event in events:
        if event["type"] == "content_block_start" and event["content_block"]["type"] == "tool_use":
            block = event["content_block"]
            want_calls.append({"id": block["id"], "name": block["name"], "arguments": ""})
        elif event["type"] == "content_block_delta":
            delta = event["delta"]
            want_text += delta.get("text", "")
            want_thinking += delta.get("thinking", "")
            if "partial_json" in delta:
                want_calls[-1]["arguments"] += delta["partial_json"]
    start_usage = events[0]["message"]["usage"]
    want_prompt = sum(start_usage[k] for k in start_usage if k != "output_tokens")

    text = thinking = ""
    calls: dict[int, dict[str, str]] = {}
    call_deltas = 0
    finishes: list[str] = []
    usage = None
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            thinking += delta.get("reasoning_content") or delta.get("reasoning") or ""
            for call in delta.get("tool_calls") or ():
                call_deltas += 1
                merged = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                function = call.get("function") or {}
                merged["id"] += call.get("id") or ""
                merged["name"] += function.get("name") or ""
                merged["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                finishes.append(choice["finish_reason"])

    notes = []
    if [calls[i] for i in sorted(calls)] == want_calls:
        notes.append(f"tool calls OK (indices 0-{len(want_calls) - 1})")
    elif sorted(calls) != list(range(len(want_calls))):
        notes.append(
            f"tool calls WRONG: indices {sorted(calls)}, {call_deltas} deltas for {len(want_calls)} calls"
        )
    else:
        notes.append("tool calls WRONG: ids/names/arguments differ once merged")
    notes.append("finish tool_calls OK" if finishes == ["tool_calls"] else f"finish WRONG: {finishes}")
    thinking_in_content = bool(want_thinking) and want_thinking in text
    if text == want_text:
        notes.append("text OK")
    elif text.endswith(want_text):
        notes.append("text OK after the thinking" if thinking_in_content else "text OK after extra content")
    elif "".join(text.split()).endswith("".join(want_text.split())):
        notes.append("text WRONG (whitespace lost)")
    else:
        notes.append("text WRONG")
    if thinking == want_thinking:
        notes.append("thinking as reasoning_content")
    else:
        notes.append("thinking in content" if thinking_in_content else "thinking lost")
    if usage is None:
        notes.append("no usage chunk")
    else:
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        ok = prompt == want_prompt and completion == events[-2]["usage"]["output_tokens"]
        notes.append(f"usage {prompt}/{completion} {'OK' if ok else f'WRONG (want prompt {want_prompt})'}")
    return "; ".join(notes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="timing repeats (the best is kept)")
    args = parser.parse_args(argv)

    peers = import_peers()
    events = anthropic_events()
    data = sse_bytes(events)
    reads = [data[i : i + READ_SIZE] for i in range(0, len(data), READ_SIZE)]
    n = len(events)
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("ccproxy-api", "litellm", "pydantic")
    )
    last_stream: list[Any] = []
    print(f"chunkline {chunkline.__version__} against {versions}")
    print(
        f"python {platform.python_version()} on {platform.machine()} ({platform.processor() or 'cpu'}), "
        f"{platform.system()} {platform.release()}"
    )
    print(f"stream: {n} events, {len(data):,} bytes; best of {args.repeat}; imports are not timed\n")

    default = chunkline.Pipeline()
    after_parse = chunkline.Pipeline(stages=list(default.stage_names[1:]))
    bytes_in = f"raw bytes, {READ_SIZE} B reads"
    # (label, fed, function, outputs for the correctness note: None for none)
    rows: list[tuple[str, str, Callable[[], list[Any]], Callable[[list[Any]], list[dict]] | None]] = [
        ("floor (hand-written, no stages)", bytes_in, lambda: floor(reads), None),
        ("chunkline default", bytes_in, run_pipeline(default, reads), sse_chunks),
        (
            "chunkline default, after parse",
            "event dicts, sync",
            run_pipeline(after_parse, events),
            sse_chunks,
        ),
        (
            "chunkline ccproxy facade [a]",
            "event dicts, async",
            ccproxy_style(FacadeProcessor, events, **CCPROXY_ADAPTER_ARGS),
            sse_chunks,
        ),
        (
            "ccproxy-api OpenAIStreamProcessor [a]",
            "event dicts, async",
            ccproxy_style(peers.ccproxy_processor, events, **CCPROXY_ADAPTER_ARGS),
            sse_chunks,
        ),
        (
            "ccproxy-api, constructor defaults [b]",
            "event dicts, async",
            ccproxy_style(peers.ccproxy_processor, events),
            sse_chunks,
        ),
        (
            "LiteLLM chunk_parser (bare) [c]",
            "event dicts, sync",
            litellm_parser(peers, events),
            lambda out: [chunk.model_dump(exclude_none=True) for chunk in out],
        ),
        (
            "LiteLLM CustomStreamWrapper [d]",
            f"{bytes_in}, async",
            litellm_wrapper(peers, reads, False, last_stream),
            None,
        ),
        (
            "LiteLLM wrapper + proxy SSE [e]",
            f"{bytes_in}, async",
            litellm_wrapper(peers, reads, True),
            sse_chunks,
        ),
    ]

    timings = interleaved_best([fn for _, _, fn, _ in rows], args.repeat)
    floor_s = timings[0]
    print(f"{'converter':38} {'fed':30} {'events/s':>10} {'us/event':>9} {'vs floor':>9}")
    for (label, fed, _, _), seconds in zip(rows, timings, strict=True):
        ratio = floor_s / seconds
        print(
            f"{label:38} {fed:30} {n / seconds:10,.0f} {seconds / n * 1e6:9.2f} "
            f"{ratio:9.{2 if ratio >= 0.1 else 4}f}"
        )
    # The end-of-stream step in [d] and [e]: the whole response rebuilt from the chunks (for logging,
    # cost and caching), in a worker thread that the stream awaits before it ends.
    stream = last_stream[0]
    builder_s = best_seconds(stream._build_complete_streaming_response, args.repeat)
    legend = [
        "vs floor = floor time / its time, as in bench.py. Async rows run one asyncio.run per conversion,",
        "loop start-up and the async source included (nothing subtracted).",
        "[a] ccproxy's API with enable_text_chunking=False, as ccproxy's own adapter constructs it; SSE",
        "    strings out.",
        "[b] OpenAIStreamProcessor() as constructed bare: text re-chunked into 3-word pieces.",
        "[c] ModelResponseIterator.chunk_parser per event: ModelResponseStream objects, no SSE framing,",
        "    no wrapper, not serialized.",
        "[d] the user-facing async stream: bytes decoded as httpx's aiter_text, aiter_sse_lines,",
        "    ModelResponseIterator, CustomStreamWrapper(custom_llm_provider='anthropic'); chunk objects",
        "    out. End-of-stream bookkeeping included: stream_chunk_builder, which rebuilds the response",
        f"    from its {len(stream.chunks)} chunks in an AnyIO worker thread that the stream awaits, alone "
        f"takes {builder_s * 1e3:.1f} ms",
        f"    ({builder_s / n * 1e6:.1f} us/event).",
        "[e] [d], each chunk then written as the LiteLLM proxy writes it: model_dump_json(exclude_none=True,",
        "    exclude_unset=True) in an SSE data frame, then [DONE].",
    ]
    print("", *legend, sep="\n")

    print("\ncorrectness on this stream (deltas merged as the openai SDK merges them):")
    for label, _, fn, decode in rows:
        if decode is not None:
            note = f"{label.split(' [')[0]}: {observe(decode(fn()), events)}"
            print(textwrap.fill(note, width=104, initial_indent="  ", subsequent_indent="      "))
    if events != anthropic_events():
        print("warning: a converter modified the input event dicts")


if __name__ == "__main__":
    main()
