"""Generated Anthropic streams through the openai-responses route, split anywhere, judged by both SDKs."""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

import chunkline
import harness
import responses_judge as judge
from strategies import CREATED, anthropic_streams, encode_sse, framed_streams, splits

FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = ("text", "thinking", "redacted_thinking", "tool_use", "server_tool")


@functools.cache
def pipeline(**options: Any) -> chunkline.Pipeline:
    return chunkline.Pipeline(target="openai-responses", created=CREATED, **options)


@FEW
@given(st.data(), framed_streams(anthropic_streams(kinds=KINDS)), st.booleans())
def test_generated_streams_read_back_as_the_anthropic_sdk_reads_them(
    data: st.DataObject, stream: tuple[list[dict[str, Any]], bytes], encrypted: bool
) -> None:
    events, sse = stream
    conversion = pipeline(reasoning_encrypted_content=encrypted).open()
    out: list[bytes] = []
    for piece in data.draw(splits(sse)):
        out += conversion.feed(piece)
    out += conversion.close()
    body = b"".join(out)
    assert body == b"".join(pipeline(reasoning_encrypted_content=encrypted).convert(sse))
    judge.check_frames(body)
    tool_ids = [
        e["content_block"]["id"]
        for e in events
        if e.get("type") == "content_block_start" and e["content_block"].get("type") == "tool_use"
    ]
    if len(set(tool_ids)) < len(tool_ids):
        # Anthropic never repeats a tool_use id, and Responses tells calls apart by call_id alone.
        assert b"event: response.failed\n" in body and b"repeats within the message" in body
        assert b"event: response.completed\n" not in body
        return
    reading = judge.read(body)
    try:
        # The events mean the same however they are framed; the anthropic SDK reads them in the
        # API's own framing (its SSE reader takes less than the SSE spec allows).
        truth = harness.anthropic_final_message(encode_sse(events))
    except AttributeError:
        # anthropic's accumulator cannot read a message_delta whose usage is null (a model_dump()
        # style stream); there is no ground truth to compare with, only the checks above.
        reject()
    judge.assert_same(reading, truth, encrypted=encrypted)
