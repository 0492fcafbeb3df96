"""Generated Anthropic streams through the server: any valid stream, any framing, any write size."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serverkit import ServerThread, sse_events

import harness
from strategies import (
    expected_finish_reason,
    expected_reasoning,
    expected_text,
    expected_tool_calls,
    expected_usage,
    framed_streams,
)

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _request(events_sse: bytes, piece: int | None, **fields: Any) -> dict[str, Any]:
    model = "replay-b64" if piece is None else f"replay-b64:{piece}"
    content = base64.b64encode(events_sse).decode()
    return {"model": model, "messages": [{"role": "user", "content": content}], **fields}


def _post(server: ServerThread, payload: dict[str, Any]) -> Any:
    response = server.post_chat(payload)
    assert response.status_code == 200, response.text
    return response


@SETTINGS
@given(stream=framed_streams(), piece=st.one_of(st.none(), st.integers(1, 97)))
def test_a_generated_stream_comes_out_as_the_pipeline_converts_it(
    proxy: ServerThread, stream: tuple[list[dict[str, Any]], bytes], piece: int | None
) -> None:
    _, sse = stream
    payload = _request(sse, piece, stream=True, stream_options={"include_usage": True})
    body = _post(proxy, payload).content
    # The server sends thinking blocks back whole in reasoning_details (docs/responses-rules.md, RS14).
    assert sse_events(body) == sse_events(harness.convert(sse, include_usage=True, reasoning_details=True))


@SETTINGS
@given(stream=framed_streams(), piece=st.one_of(st.none(), st.integers(1, 97)))
def test_a_generated_stream_as_one_completion(
    proxy: ServerThread, stream: tuple[list[dict[str, Any]], bytes], piece: int | None
) -> None:
    """Checked against what the events mean, worked out without chunkline (tests/strategies.py)."""
    events, sse = stream
    completion = _post(proxy, _request(sse, piece)).json()
    [choice] = completion["choices"]
    message = choice["message"]
    calls = expected_tool_calls(events)
    text = expected_text(events)
    assert message["content"] == (text if text or not calls else None)
    assert message.get("reasoning_content", "") == expected_reasoning(events)
    got_calls = message.get("tool_calls", [])
    assert [(c["id"], c["function"]["name"]) for c in got_calls] == [(c.id, c.name) for c in calls]
    for got, expected in zip(got_calls, calls, strict=True):
        if expected.arguments is not None:
            assert got["function"]["arguments"] == expected.arguments
        else:
            assert json.loads(got["function"]["arguments"]) == expected.input
    assert choice["finish_reason"] == expected_finish_reason(events)
    assert completion["usage"] == expected_usage(events)
    start = next(e for e in events if e["type"] == "message_start")["message"]
    assert completion["id"] == f"chatcmpl-{start['id']}"
    assert completion["model"] == start["model"]
