"""The floor of the Anthropic -> OpenAI Responses conversion: a stage-less hand-written converter.

It does the least any correct converter must do per event: find the frame, ``orjson.loads`` its
data, and for a delta write one Responses event (its ``event:`` line, a precomputed head around
``orjson.dumps(text)``, and the next sequence number). Everything else (item bookkeeping, the
final response object, usage, faults) it leaves out, so it is faster than any real converter.
"""

from __future__ import annotations

import orjson

__all__ = ["responses_floor"]

_HEADS = {
    "text_delta": (
        "text",
        b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":"msg_x_0",'
        b'"output_index":0,"content_index":0,"logprobs":[],"delta":',
    ),
    "thinking_delta": (
        "thinking",
        b"event: response.reasoning_summary_text.delta\n"
        b'data: {"type":"response.reasoning_summary_text.delta","item_id":"rs_x_0","output_index":0,'
        b'"summary_index":0,"delta":',
    ),
    "input_json_delta": (
        "partial_json",
        b"event: response.function_call_arguments.delta\n"
        b'data: {"type":"response.function_call_arguments.delta","item_id":"fc_x_0",'
        b'"output_index":0,"delta":',
    ),
}


def responses_floor(reads: list[bytes]) -> list[bytes]:
    """Convert the reads of one Anthropic stream to Responses delta events, and nothing more."""
    loads, dumps = orjson.loads, orjson.dumps
    heads = _HEADS
    out: list[bytes] = []
    pending = b""
    sequence = 0
    for read in reads:
        frames = (pending + read).split(b"\n\n")
        pending = frames.pop()
        for frame in frames:
            event = loads(frame[frame.index(b"data: ") + 6 :])
            if event["type"] == "content_block_delta":
                delta = event["delta"]
                head = heads.get(delta["type"])
                if head is not None:
                    key, prefix = head
                    out.append(
                        prefix
                        + dumps(delta[key])
                        + b',"sequence_number":'
                        + str(sequence).encode()
                        + b"}\n\n"
                    )
                    sequence += 1
    return out
