"""The openai-chat -> openai-chat route, judged by the openai SDK on both sides: every single-choice
recording and generated streams read back (strict create, ChatCompletionStreamState and .stream())
as the openai SDK reads the input; byte splits change nothing; faults end in the chat error form."""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chunkline
import harness
from chat_route import (
    ChatReading,
    cached_tokens,
    chat_reading,
    chat_streams,
    finish_line_end,
    load_chat_sse,
    single_choice_paths,
)
from faults import CHAT_FAULTS, assert_chat_error
from strategies import split_at

SINGLE_CHOICE = single_choice_paths()
FINISH_ERRORS = {
    "length": openai.LengthFinishReasonError,
    "content_filter": openai.ContentFilterFinishReasonError,
}


@functools.cache
def route(**options: Any) -> chunkline.Pipeline:
    return chunkline.Pipeline(source="openai-chat", target="openai-chat", created=harness.CREATED, **options)


def convert(data: bytes, pieces: list[bytes] | None = None, **options: Any) -> list[bytes]:
    """The output frames of a fresh conversion; ``pieces`` feeds the input split that way."""
    conversion = route(**options).open()
    out: list[bytes] = []
    for piece in pieces if pieces is not None else [data]:
        out += conversion.feed(piece)
    return out + conversion.close()


def expected_usage(reading: ChatReading) -> dict[str, Any]:
    """The usage object the client reads: the input's counts (prompt = uncached + cached), 0 where
    the input sent none; reasoning tokens only where the input had them."""
    usage = reading.usage
    if usage is None:
        return {
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "prompt_tokens_details": {"cached_tokens": 0},
        }
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens(usage)},
    }
    details = usage.completion_tokens_details
    if details is not None and details.reasoning_tokens is not None:
        body["completion_tokens_details"] = {"reasoning_tokens": details.reasoning_tokens}
    return body


def assert_same(sse: bytes, out: bytes, include_usage: bool) -> None:
    """Each way the openai SDK reads the output accumulates what it reads from the input."""
    want = chat_reading(sse)
    for consumer, read in harness.CONSUMERS.items():
        got = read(out, include_usage=include_usage)
        assert got.role == "assistant"
        assert (got.content or "") == want.text, consumer
        assert (got.reasoning_content or "") == want.reasoning, consumer
        assert got.reasoning is None
        calls = [(c.id, c.name, json.loads(c.arguments)) for c in got.tool_calls]
        assert calls == want.tool_calls, consumer
        assert all(c.type == "function" for c in got.tool_calls)
        assert got.finish_reason == want.finish, consumer
        if consumer != "create":
            assert got.raised is FINISH_ERRORS.get(want.finish), consumer
        assert got.usage == (expected_usage(want) if include_usage else None), consumer


@pytest.mark.parametrize("include_usage", [False, True], ids=["no_usage", "usage"])
@pytest.mark.parametrize("path", SINGLE_CHOICE, ids=lambda p: p.name)
def test_recordings_read_the_same_through_both_sides(path: Path, include_usage: bool) -> None:
    sse = load_chat_sse(path)
    out = b"".join(convert(sse, include_usage=include_usage))
    assert_same(sse, out, include_usage)
    models = {p["model"] for p in harness.data_payloads(out) if isinstance(p, dict)}
    assert models == {chat_reading(sse).model}


@pytest.mark.parametrize("path", SINGLE_CHOICE, ids=lambda p: p.name)
def test_recordings_split_anywhere(path: Path) -> None:
    sse = load_chat_sse(path)
    whole = b"".join(convert(sse))
    rng = random.Random(path.name)
    for _ in range(5):
        cuts = sorted(rng.randrange(len(sse) + 1) for _ in range(rng.randint(1, 40)))
        assert b"".join(convert(sse, split_at(sse, cuts))) == whole
    assert b"".join(convert(sse, [sse[i : i + 1] for i in range(len(sse))])) == whole


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chat_streams(), st.lists(st.integers(min_value=0), max_size=8), st.booleans())
def test_generated_streams(sse: bytes, cuts: list[int], include_usage: bool) -> None:
    out = b"".join(convert(sse, include_usage=include_usage))
    pieces = split_at(sse, sorted(c % (len(sse) + 1) for c in cuts))
    assert b"".join(convert(sse, pieces, include_usage=include_usage)) == out
    assert_same(sse, out, include_usage)


@pytest.mark.parametrize(("sse", "words"), CHAT_FAULTS.values(), ids=list(CHAT_FAULTS))
def test_faults_end_in_the_chat_error_form_never_a_finish(sse: bytes, words: str) -> None:
    assert_chat_error(convert(sse), words)


def test_a_refusal_arrives_as_content_with_content_filter() -> None:
    """The neutral events have no refusal part: the refusal text is the answer's text, and its
    finish is content_filter (as an Anthropic refusal on the default route)."""
    path = next(p for p in SINGLE_CHOICE if p.name == "oaipy_refusal.sse")
    got = harness.openai_stream_create(b"".join(convert(load_chat_sse(path))))
    assert got.refusal is None and got.content and got.finish_reason == "content_filter"


def test_the_upstream_chunk_id_is_kept() -> None:
    """An id already starting 'chatcmpl-' is not prefixed again (it read 'chatcmpl-chatcmpl-...')."""
    path = next(p for p in SINGLE_CHOICE if p.name == "oaipy_text_basic_usage.sse")
    sse = load_chat_sse(path)
    ids = {p["id"] for p in harness.data_payloads(b"".join(convert(sse))) if isinstance(p, dict)}
    assert ids == {chat_reading(sse).id}


@pytest.mark.parametrize("path", SINGLE_CHOICE, ids=lambda p: p.name)
def test_recording_cut_before_its_finish_is_an_error(path: Path) -> None:
    sse = load_chat_sse(path)
    end = finish_line_end(sse)
    for cut in sorted({1, end // 3, end // 2, end - 1, end}):
        assert_chat_error(convert(sse[:cut]), "")
