"""A long, realistic Anthropic stream for the benchmarks, generated the same way every run."""

from __future__ import annotations

import random

import orjson

__all__ = ["anthropic_events", "chat_chunks", "chat_sse_bytes", "sse_bytes"]

_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "this",
    "are",
    "from",
    "or",
    "an",
    "which",
    "at",
    "but",
    "not",
    "have",
    "has",
    "had",
    "were",
    "can",
    "more",
    "one",
    "all",
    "their",
    "also",
    "its",
    "into",
    "only",
    "other",
    "new",
    "some",
    "could",
    "these",
    "two",
    "may",
    "then",
    "first",
    "any",
    "like",
    "now",
    "over",
    "such",
    "our",
    "after",
    "most",
    "made",
    "between",
    "through",
    "being",
    "because",
    "stream",
    "token",
    "converter",
    "client",
    "server",
    "proxy",
    "latency",
    "chunk",
    "delta",
    "message",
    "function",
    "argument",
    "résumé",
    "naïve",
    "café",
    "—",
    "“quoted”",
    "東京",
    "数据",
    "✓",
    "🙂",
]


def anthropic_events(seed: int = 7, text_deltas: int = 1000, tool_calls: int = 4) -> list[dict]:
    """message_start, a thinking block with a signature, ~1000 text deltas, several streamed
    tool calls, pings, and a final message_delta with usage."""
    rng = random.Random(seed)
    events: list[dict] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_01BenchmarkStream0000000",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 1843,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 1024,
                    "output_tokens": 1,
                },
            },
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
    ]

    def phrase(low: int, high: int) -> str:
        return "".join(" " + rng.choice(_WORDS) for _ in range(rng.randint(low, high)))

    for _ in range(60):
        events.append(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": phrase(2, 8)},
            }
        )
    events.append(
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "EqQBCkYIBxgCKkA" * 12},
        }
    )
    events.append({"type": "content_block_stop", "index": 0})
    events.append({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}})
    for i in range(text_deltas):
        if i % 200 == 0:
            events.append({"type": "ping"})
        text = phrase(1, 4)
        if rng.random() < 0.05:
            text += ".\n\n"
        events.append(
            {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": text}}
        )
    events.append({"type": "content_block_stop", "index": 1})
    for call in range(tool_calls):
        index = 2 + call
        events.append(
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {
                    "type": "tool_use",
                    "id": f"toolu_01Bench{call:04d}",
                    "name": "search_docs",
                    "input": {},
                },
            }
        )
        arguments = orjson.dumps(
            {"query": phrase(3, 9).strip(), "limit": rng.randint(1, 50), "filters": {"lang": "en"}}
        ).decode()
        for start in range(0, len(arguments), 12):
            fragment = arguments[start : start + 12]
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": fragment},
                }
            )
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {
            "type": "message_delta",
            "delta": {"type": "message_delta", "stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 2311},
        }
    )
    events.append({"type": "message_stop"})
    return events


def sse_bytes(events: list[dict]) -> bytes:
    """The events framed as Anthropic sends them: ``event: TYPE\\ndata: JSON\\n\\n``."""
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


def chat_chunks(events: list[dict] | None = None) -> list[dict]:
    """The same answer as an OpenAI-compatible server streams it (vLLM's shape): a role chunk,
    ``reasoning_content`` deltas, content deltas, tool calls by index (id and name first, then
    argument fragments), the finish, and usage on a chunk of its own."""
    events = anthropic_events() if events is None else events
    start = events[0]["message"]
    envelope = {"id": "chatcmpl-" + start["id"][4:], "object": "chat.completion.chunk", "created": 1}
    envelope["model"] = start["model"]

    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {
            **envelope,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    calls = 0
    for event in events:
        if event["type"] == "content_block_start" and event["content_block"]["type"] == "tool_use":
            block = event["content_block"]
            function = {"name": block["name"], "arguments": ""}
            call = {"index": calls, "id": block["id"], "type": "function", "function": function}
            chunks.append(chunk({"tool_calls": [call]}))
            calls += 1
        elif event["type"] == "content_block_delta":
            delta = event["delta"]
            if delta["type"] == "text_delta":
                chunks.append(chunk({"content": delta["text"]}))
            elif delta["type"] == "thinking_delta":
                chunks.append(chunk({"reasoning_content": delta["thinking"]}))
            elif delta["type"] == "input_json_delta":
                fragment = {"index": calls - 1, "function": {"arguments": delta["partial_json"]}}
                chunks.append(chunk({"tool_calls": [fragment]}))
    chunks.append(chunk({}, "tool_calls" if calls else "stop"))
    usage = {"prompt_tokens": 2867, "completion_tokens": 2311, "total_tokens": 5178}
    usage["prompt_tokens_details"] = {"cached_tokens": 1024}
    chunks.append({**envelope, "choices": [], "usage": usage})
    return chunks


def chat_sse_bytes(chunks: list[dict]) -> bytes:
    """The chunks framed as OpenAI-compatible servers send them: ``data: JSON\n\n``, then ``[DONE]``."""
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
