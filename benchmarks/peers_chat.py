"""Peer comparison, OpenAI chat -> Anthropic Messages: chunkline, ccproxy-api 0.2.10 and LiteLLM, one stream.

Run with ``make bench-peers`` (the peers live in their own venv, ``.venv-peers-chat``). The stream is
bench.py's answer as an OpenAI-compatible server sends it (stream.chat_chunks). Each converter's output
is read back as Anthropic events and checked against the input (text, thinking, tool calls, stop
reason, usage), so a fast but wrong converter shows as such.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import threading
from collections.abc import AsyncIterator, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import READ_SIZE, chat_floor, interleaved_best, run_pipeline
from stream import anthropic_events, chat_chunks, chat_sse_bytes

import chunkline


def frames_of(reads: list[bytes]) -> list[dict[str, Any]]:
    """The chunks of the SSE bytes, split and parsed as a proxy in front of the adapter does."""
    out = []
    pending = b""
    for read in reads:
        frames = (pending + read).split(b"\n\n")
        pending = frames.pop()
        for frame in frames:
            payload = frame[6:]
            if payload != b"[DONE]":
                out.append(orjson.loads(payload))
    return out


def ccproxy_adapter(reads: list[bytes]) -> Callable[[], list[bytes]]:
    """ccproxy-api 0.2.10's ``OpenAIChatToAnthropicStreamAdapter``: the body split into chunk dicts,
    the adapter run over them (one ``asyncio.run``), each event written as an SSE frame."""
    from ccproxy.llms.formatters.openai_to_anthropic.streams import OpenAIChatToAnthropicStreamAdapter

    async def source() -> AsyncIterator[dict[str, Any]]:
        for chunk in frames_of(reads):
            yield chunk

    async def convert() -> list[bytes]:
        adapter = OpenAIChatToAnthropicStreamAdapter()
        return [
            b"event: " + event.type.encode() + b"\ndata: " + event.model_dump_json().encode() + b"\n\n"
            async for event in adapter.run(source())
        ]

    return lambda: asyncio.run(convert())


class _Upstream(BaseHTTPRequestHandler):
    body = b""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


def litellm_messages(url: str) -> Callable[[], list[bytes]]:
    """LiteLLM's Anthropic-messages adapter as its proxy runs it: ``litellm.anthropic.messages.acreate``
    with an ``openai/`` model and ``use_chat_completions_url_for_anthropic_messages``, against a
    loopback server that answers with the stream (so its HTTP client and parsing are included)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.use_chat_completions_url_for_anthropic_messages = True
    litellm.suppress_debug_info = True

    async def convert() -> list[bytes]:
        stream = await litellm.anthropic.messages.acreate(
            model="openai/bench-model",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=4096,
            stream=True,
            api_base=url,
            api_key="bench",
        )
        return [piece async for piece in stream]  # type: ignore[union-attr]

    return lambda: asyncio.run(convert())


def anthropic_reading(out: list[Any]) -> dict[str, Any]:
    """Text, thinking, tool calls, stop reason and usage of an Anthropic SSE stream."""
    blob = b"".join(p if isinstance(p, bytes) else str(p).encode() for p in out)
    text = thinking = ""
    calls: list[list[str]] = []
    stop = None
    usage: dict[str, Any] = {}
    for frame in blob.split(b"\n\n"):
        data = next((line[6:] for line in frame.split(b"\n") if line.startswith(b"data: ")), None)
        if not data:
            continue
        event = orjson.loads(data)
        kind = event.get("type")
        if kind == "content_block_start" and event["content_block"]["type"] == "tool_use":
            calls.append([event["content_block"]["id"], event["content_block"]["name"], ""])
        elif kind == "content_block_delta":
            delta = event["delta"]
            text += delta.get("text", "")
            thinking += delta.get("thinking", "")
            if "partial_json" in delta:
                calls[-1][2] += delta["partial_json"]
        elif kind == "message_start":
            usage.update(event["message"].get("usage") or {})
        elif kind == "message_delta":
            stop = event["delta"].get("stop_reason")
            usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
    return {"text": text, "thinking": thinking, "calls": calls, "stop": stop, "usage": usage}


def check(out: list[Any], chunks: list[dict[str, Any]]) -> str:
    got = anthropic_reading(out)
    want_text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    want_thinking = "".join(
        c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks if c["choices"]
    )
    want_calls: list[list[str]] = []
    for chunk in chunks:
        for call in (chunk["choices"] or [{}])[0].get("delta", {}).get("tool_calls") or ():
            if "id" in call:
                want_calls.append([call["id"], call["function"]["name"], ""])
            want_calls[call["index"]][2] += call["function"].get("arguments") or ""
    usage = chunks[-1]["usage"]
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    notes = [
        "text OK" if got["text"] == want_text else "text WRONG",
        "thinking OK" if got["thinking"] == want_thinking else "thinking lost",
        "tool calls OK" if got["calls"] == want_calls else "tool calls WRONG",
        f"stop_reason {got['stop']}" + (" OK" if got["stop"] == "tool_use" else " WRONG"),
    ]
    u = got["usage"]
    ok = (
        u.get("input_tokens") == usage["prompt_tokens"] - cached
        and u.get("cache_read_input_tokens") == cached
        and u.get("output_tokens") == usage["completion_tokens"]
    )
    notes.append(
        f"usage in {u.get('input_tokens')}/cache {u.get('cache_read_input_tokens')}/out "
        f"{u.get('output_tokens')} {'OK' if ok else 'WRONG'}"
    )
    return "; ".join(notes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="timing repeats (the best is kept)")
    args = parser.parse_args(argv)

    chunks = chat_chunks(anthropic_events())
    data = chat_sse_bytes(chunks)
    reads = [data[i : i + READ_SIZE] for i in range(0, len(data), READ_SIZE)]
    n = len(chunks)
    _Upstream.body = data
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"

    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("ccproxy-api", "litellm"))
    print(f"chunkline {chunkline.__version__} against {versions}")
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{platform.system()} {platform.release()}"
    )
    print(f"openai-chat -> anthropic-messages: {n} chunks, {len(data):,} bytes; best of {args.repeat}\n")

    route = chunkline.Pipeline(source="openai-chat", target="anthropic-messages")
    rows: list[tuple[str, Callable[[], list[Any]], bool]] = [
        ("floor (hand-written, no stages)", lambda: chat_floor(reads), False),
        ("chunkline openai-chat -> anthropic", run_pipeline(route, reads), True),
        ("ccproxy-api 0.2.10 adapter [a]", ccproxy_adapter(reads), True),
        ("LiteLLM anthropic.messages [b]", litellm_messages(url), True),
    ]
    timings = interleaved_best([fn for _, fn, _ in rows], args.repeat)
    ours = timings[1]
    print(f"{'converter':38} {'chunks/s':>10} {'us/chunk':>9} {'vs floor':>9} {'chunkline x':>12}")
    for (label, _, _), seconds in zip(rows, timings, strict=True):
        print(
            f"{label:38} {n / seconds:10,.0f} {seconds / n * 1e6:9.2f} {timings[0] / seconds:9.2f} "
            f"{seconds / ours:12.2f}"
        )
    print(
        "\nchunkline x = that converter's time / chunkline's (issue 13: ccproxy >= 3, LiteLLM >= 5)."
        "\n[a] OpenAIChatToAnthropicStreamAdapter.run over the chunk dicts (split and parsed here), one"
        "\n    asyncio.run; each event written as an SSE frame with model_dump_json."
        "\n[b] litellm.anthropic.messages.acreate(model='openai/...', stream=True) with"
        "\n    use_chat_completions_url_for_anthropic_messages, against a loopback server sending the stream;"
        "\n    its Anthropic SSE bytes out (its HTTP client and per-request set-up included)."
    )
    print("\ncorrectness on this stream:")
    for label, fn, checked in rows:
        if checked:
            print(f"  {label.split(' [')[0]}: {check(fn(), chunks)}")

    # A stream cut before its first chunk (the upstream answered 200 and closed the body): a
    # client must see a fault, never a clean message_stop.
    _Upstream.body = b""
    cut = [
        ("chunkline", run_pipeline(route, [])),
        ("ccproxy-api 0.2.10", ccproxy_adapter([])),
        ("LiteLLM", litellm_messages(url)),
    ]
    print("\na stream cut before its first chunk:")
    for label, fn in cut:
        try:
            blob = b"".join(p if isinstance(p, bytes) else str(p).encode() for p in fn())
            ending = "event: error (a fault)" if b"event: error" in blob else "nothing"
            if b"message_stop" in blob:
                ending = "message_stop (a clean end: WRONG)"
        except Exception as exc:  # a peer that raises reports the fault its own way
            ending = f"raised {type(exc).__name__}"
        print(f"  {label}: {ending}")
    server.shutdown()


if __name__ == "__main__":
    main()
