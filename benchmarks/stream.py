"""A long, realistic Anthropic stream for the benchmarks, generated the same way every run."""

from __future__ import annotations

import random

import orjson

__all__ = ["anthropic_events", "sse_bytes"]

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
