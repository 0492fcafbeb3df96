"""Generated Anthropic streams through the openai-responses route, split anywhere, judged by both SDKs."""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chunkline
import harness
import responses_judge as judge
from strategies import CREATED, anthropic_streams, framed_streams, splits

FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = ("text", "thinking", "redacted_thinking", "tool_use", "server_tool")


@functools.cache
def pipeline(**options: Any) -> chunkline.Pipeline:
    return chunkline.Pipeline(target="openai-responses", created=CREATED, **options)


@FEW
@given(st.data(), framed_streams(anthropic_streams(kinds=KINDS)), st.booleans())
def test_generated_streams_read_back_as_the_anthropic_sdk_reads_them(
    data: st.DataObject, stream: tuple[list[dict[str, Any]], bytes], encrypted: bool
) -> None:
    _, sse = stream
    conversion = pipeline(reasoning_encrypted_content=encrypted).open()
    out: list[bytes] = []
    for piece in data.draw(splits(sse)):
        out += conversion.feed(piece)
    out += conversion.close()
    body = b"".join(out)
    assert body == b"".join(pipeline(reasoning_encrypted_content=encrypted).convert(sse))
    judge.check_frames(body)
    judge.assert_same(judge.read(body), harness.anthropic_final_message(sse), encrypted=encrypted)
