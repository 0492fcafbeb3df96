"""Small hand-made Anthropic streams and output readers shared by the plugin-contract tests."""

from __future__ import annotations

import json
from typing import Any


def text_sse(*texts: str, stop_reason: str = "end_turn") -> bytes:
    """A complete Anthropic SSE stream with one text block made of ``texts``."""
    stream: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {"id": "msg_p", "model": "claude-p", "usage": {"input_tokens": 1, "output_tokens": 1}},
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}
            for t in texts
        ),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": {"output_tokens": 2}},
        {"type": "message_stop"},
    ]
    return b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + json.dumps(e).encode() + b"\n\n" for e in stream
    )


def contents(output: list[bytes]) -> list[str]:
    """The content deltas of an OpenAI SSE output, in order."""
    found = []
    for frame in output:
        if frame.startswith(b"data: {"):
            body = json.loads(frame[len(b"data: ") :])
            if body.get("choices") and "content" in body["choices"][0]["delta"]:
                found.append(body["choices"][0]["delta"]["content"])
    return found
