"""The openai-chat -> openai-responses route, judged by the openai SDK on both sides: every single-choice
recording and generated streams, read as a Responses stream (strict create and .stream()), hold what the
openai SDK reads from the chat input; byte splits change nothing; faults fail the response."""

from __future__ import annotations

import functools
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chunkline
import harness
import responses_judge as judge
from chat_route import (
    STOP_REASON,
    ChatReading,
    cached_tokens,
    chat_chunk,
    chat_reading,
    chat_sse,
    chat_streams,
    finish_line_end,
    load_chat_sse,
    single_choice_paths,
)
from faults import CHAT_FAULTS
from strategies import split_at

SINGLE_CHOICE = single_choice_paths()
MODES = {
    "summary": {},
    "reasoning_text": {"thinking": "reasoning_text"},
    "encrypted": {"reasoning_encrypted_content": True},
}


@functools.cache
def route(**options: Any) -> chunkline.Pipeline:
    return chunkline.Pipeline(
        source="openai-chat", target="openai-responses", created=harness.CREATED, **options
    )


def convert(data: bytes, pieces: list[bytes] | None = None, **options: Any) -> bytes:
    """A fresh conversion's output; ``pieces`` feeds the input split that way."""
    conversion = route(**options).open()
    out: list[bytes] = []
    for piece in pieces if pieces is not None else [data]:
        out += conversion.feed(piece)
    return b"".join(out + conversion.close())


def expected_usage(reading: ChatReading) -> dict[str, int]:
    """Chat usage in Responses terms (the route's rule): the prompt is ``input_tokens`` and its
    cached part ``cached_tokens``; ``reasoning_tokens`` from ``completion_tokens_details``; 0 for
    what the input never said."""
    usage = reading.usage
    if usage is None:
        return dict.fromkeys(
            ("input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens"), 0
        ) | {"total_tokens": 0}
    details = usage.completion_tokens_details
    return {
        "input_tokens": usage.prompt_tokens,
        "cached_tokens": cached_tokens(usage),
        "cache_write_tokens": 0,
        "output_tokens": usage.completion_tokens,
        "reasoning_tokens": (details.reasoning_tokens or 0) if details is not None else 0,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def assert_same(sse: bytes, body: bytes, *, reasoning_text: bool = False) -> judge.Reading:
    """The Responses client's final response says what the chat input says: the texts, the calls
    with their arguments, the status from the finish, the usage and the model."""
    want = chat_reading(sse)
    judge.check_frames(body)
    reading = judge.read(body)
    final = reading.final
    status, reason = judge.STATUS[STOP_REASON[want.finish]]
    assert (reading.terminal, final.status) == (f"response.{status}", status), want.finish
    assert (final.incomplete_details and final.incomplete_details.reason) == reason
    items = judge.got_items(final, reasoning_text=reasoning_text)
    assert "".join(i["text"] for i in items if i["type"] == "message") == want.text
    assert "".join(i["text"] for i in items if i["type"] == "reasoning") == want.reasoning
    calls = [(i["call_id"], i["name"], i["input"]) for i in items if i["type"] == "function_call"]
    assert calls == want.tool_calls
    assert all(i["text"] for i in items if i["type"] == "message")
    assert judge.got_usage(final) == expected_usage(want)
    assert final.model == want.model
    return reading


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("path", SINGLE_CHOICE, ids=lambda p: p.name)
def test_recordings_read_the_same_through_both_sdks(path: Path, mode: str) -> None:
    sse = load_chat_sse(path)
    assert_same(sse, convert(sse, **MODES[mode]), reasoning_text=mode == "reasoning_text")


@pytest.mark.parametrize("path", SINGLE_CHOICE, ids=lambda p: p.name)
def test_recordings_split_anywhere(path: Path) -> None:
    sse = load_chat_sse(path)
    whole = convert(sse)
    rng = random.Random(path.name)
    for _ in range(5):
        cuts = sorted(rng.randrange(len(sse) + 1) for _ in range(rng.randint(1, 40)))
        assert convert(sse, split_at(sse, cuts)) == whole
    assert convert(sse, [sse[i : i + 1] for i in range(len(sse))]) == whole


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chat_streams(), st.lists(st.integers(min_value=0), max_size=8))
def test_generated_streams(sse: bytes, cuts: list[int]) -> None:
    out = convert(sse)
    assert convert(sse, split_at(sse, sorted(c % (len(sse) + 1) for c in cuts))) == out
    assert_same(sse, out)


@pytest.mark.parametrize(("sse", "words"), CHAT_FAULTS.values(), ids=list(CHAT_FAULTS))
def test_faults_fail_the_response_never_complete_it(sse: bytes, words: str) -> None:
    body = convert(sse)
    judge.check_frames(body)
    reading = judge.read(body)
    assert reading.terminal == "response.failed" and reading.final.status == "failed"
    assert words in reading.final.error.message
    assert b"response.completed" not in body and b"response.incomplete" not in body


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("rate_limit_exceeded", "rate_limit_exceeded"),
        ("insufficient_quota", "rate_limit_exceeded"),
        ("context_length_exceeded", "invalid_prompt"),
        ("something_else", "server_error"),
    ],
)
def test_an_upstream_error_code_keeps_its_meaning(code: str, expected: str) -> None:
    """RS12 on this route: an OpenAI-compatible upstream's rate limit is a rate limit (it was
    server_error before), a too-long prompt an invalid prompt."""
    error = {"error": {"message": "no", "type": "requests", "code": code}}
    reading = judge.read(convert(chat_sse([chat_chunk({"content": "x"}), error], done=False)))
    assert reading.final.error.code == expected


@pytest.mark.parametrize("path", SINGLE_CHOICE, ids=lambda p: p.name)
def test_recording_cut_before_its_finish_fails_the_response(path: Path) -> None:
    sse = load_chat_sse(path)
    end = finish_line_end(sse)
    for cut in sorted({1, end // 3, end // 2, end - 1, end}):
        body = convert(sse[:cut])
        judge.check_frames(body)
        assert judge.read(body).terminal == "response.failed", cut
        assert b"response.completed" not in body and b"response.incomplete" not in body
