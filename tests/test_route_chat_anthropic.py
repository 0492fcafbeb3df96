"""The openai-chat -> anthropic-messages route, judged by the real SDKs: every single-choice recording and
generated streams read by the strict anthropic SDK equal the openai SDK's reading of the input; byte
splits change nothing; faults end with an error event and never with message_stop."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import anthropic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat_route import (
    anthropic_client,
    anthropic_events,
    anthropic_final,
    chat_chunk,
    chat_sse,
    chat_streams,
    check_anthropic_order,
    convert,
    frames,
    load_chat_sse,
    openai_reading,
    route,
    single_choice_paths,
)
from faults import CHAT_FAULTS

SINGLE_CHOICE = single_choice_paths()


def pieces_at(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@pytest.mark.parametrize("path", SINGLE_CHOICE, ids=lambda p: p.name)
def test_recordings_read_the_same_through_both_sdks(path: Path) -> None:
    sse = load_chat_sse(path)
    out = convert(sse)
    frames(out)  # every frame named after its data's type
    check_anthropic_order(anthropic_events(out))
    assert anthropic_final(out) == openai_reading(sse)


@pytest.mark.parametrize("path", SINGLE_CHOICE, ids=lambda p: p.name)
def test_recordings_split_anywhere(path: Path) -> None:
    sse = load_chat_sse(path)
    whole = convert(sse)
    rng = random.Random(path.name)
    for _ in range(5):
        cuts = [rng.randrange(len(sse) + 1) for _ in range(rng.randint(1, 40))]
        assert convert(sse, pieces_at(sse, cuts)) == whole
    assert convert(sse, [sse[i : i + 1] for i in range(len(sse))]) == whole


def test_jsonl_input_reads_like_sse() -> None:
    path = next(p for p in SINGLE_CHOICE if p.suffix == ".jsonl")
    assert convert(path.read_bytes(), input_format="jsonl") == convert(load_chat_sse(path))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chat_streams(), st.lists(st.integers(min_value=0), max_size=8))
def test_generated_streams(sse: bytes, cuts: list[int]) -> None:
    out = convert(sse)
    assert convert(sse, pieces_at(sse, [c % (len(sse) + 1) for c in cuts])) == out
    check_anthropic_order(anthropic_events(out))
    assert anthropic_final(out) == openai_reading(sse)


# -- stop reasons and usage ------------------------------------------------------------------------


def _stream(*chunks: dict[str, Any], done: bool = True) -> bytes:
    return chat_sse(list(chunks), done=done)


@pytest.mark.parametrize(
    ("finish", "tool_call", "refusal", "expected"),
    [
        ("stop", False, False, "end_turn"),
        ("length", False, False, "max_tokens"),
        ("tool_calls", True, False, "tool_use"),
        ("stop", True, False, "tool_use"),
        ("content_filter", False, False, "refusal"),
        ("stop", False, True, "refusal"),
        ("something_new", False, False, "end_turn"),
    ],
)
def test_stop_reasons(finish: str, tool_call: bool, refusal: bool, expected: str) -> None:
    chunks = [chat_chunk({"role": "assistant", "content": "hi"})]
    if tool_call:
        call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        chunks.append(chat_chunk({"tool_calls": [call]}))
    if refusal:
        chunks.append(chat_chunk({"refusal": "I can't."}))
    chunks.append(chat_chunk({}, finish))
    message = anthropic_final(convert(_stream(*chunks)))
    assert message.stop_reason == expected


def test_a_stop_sequence_vllm_names_is_reported() -> None:
    finish = chat_chunk({}, "stop")
    finish["choices"][0]["stop_reason"] = "END"
    sse = _stream(chat_chunk({"content": "ok"}), finish)
    out = convert(sse, stop_sequences=["END"])
    delta = next(data for name, data in frames(out) if name == "message_delta")
    assert delta["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}
    # A stop string the request did not name is not trusted.
    assert b'"stop_sequence":null' in convert(sse, stop_sequences=["OTHER"])


def test_usage_in_anthropic_terms_on_the_finish_chunk_and_deepseek_cache_hits() -> None:
    finish = chat_chunk({}, "stop")
    finish["usage"] = {"prompt_tokens": 100, "completion_tokens": 9, "prompt_cache_hit_tokens": 60}
    message = anthropic_final(convert(_stream(chat_chunk({"content": "x"}), finish)))
    assert message.usage == {"input_tokens": 40, "output_tokens": 9, "cache_read_input_tokens": 60}


# -- faults ----------------------------------------------------------------------------------------

_TEXT = chat_chunk({"role": "assistant", "content": "partial"})


@pytest.mark.parametrize(("sse", "words"), CHAT_FAULTS.values(), ids=list(CHAT_FAULTS))
def test_faults_end_with_an_error_event_never_message_stop(sse: bytes, words: str) -> None:
    out = convert(sse)
    named = frames(out)
    assert named[-1][0] == "error", named
    assert words in named[-1][1]["error"]["message"]
    assert all(name != "message_stop" for name, _ in named)
    with pytest.raises(anthropic.APIStatusError):
        anthropic_final(out)


def test_missing_done_after_a_finish_is_a_normal_end() -> None:
    sse = _stream(_TEXT, chat_chunk({}, "stop"), done=False).replace(b"\n\n", b"\r\n\r\n")
    assert frames(convert(sse))[-1][0] == "message_stop"


def test_interleaved_tool_call_fragments_stay_per_block_json() -> None:
    calls = [
        {"index": i, "id": f"call_{i}", "type": "function", "function": {"name": f"t{i}", "arguments": ""}}
        for i in range(2)
    ]
    pieces = [(0, '{"a"'), (1, '{"b"'), (0, ": 1}"), (1, ": 2}")]
    sse = _stream(
        *(chat_chunk({"tool_calls": [c]}) for c in calls),
        *(chat_chunk({"tool_calls": [{"index": i, "function": {"arguments": a}}]}) for i, a in pieces),
        chat_chunk({"content": "after"}),
        chat_chunk({}, "tool_calls"),
    )
    message = anthropic_final(convert(sse))
    assert message.tool_calls == [("call_0", "t0", {"a": 1}), ("call_1", "t1", {"b": 2})]
    assert message.text == "after"


def test_the_route_is_named_and_its_options_checked() -> None:
    assert route().stage_names[:2] == ("chat_parse", "chat_decode")
    assert route().stage_names[-2:] == ("anthropic_encode", "serialize")
    with pytest.raises(Exception, match="stop_sequences"):
        route(stop_sequences=[1])


def test_upstream_keep_alives_become_pings() -> None:
    """OpenRouter's ': OPENROUTER PROCESSING' comments: before anything is known, a comment; after the
    role chunk, Anthropic's own ping event (which the anthropic SDK skips); with ping="drop", none."""
    path = next(p for p in SINGLE_CHOICE if "openrouter" in p.name)
    out = convert(load_chat_sse(path))
    assert out.startswith(b": ping\n\n: ping\n\nevent: message_start\n")
    assert [name for name, _ in frames(out)][1:6] == ["ping"] * 5
    quiet = convert(load_chat_sse(path), ping="drop")
    assert b"ping" not in quiet and quiet.startswith(b"event: message_start\n")


def test_reasoning_details_text_signature_and_encrypted() -> None:
    """OpenRouter's reasoning_details: text (also in `reasoning`, not doubled), the signature that
    proves it (a signature_delta on the same thinking block), encrypted reasoning (redacted_thinking)."""
    text_detail = {"type": "reasoning.text", "text": "step one", "signature": None, "index": 0}
    signed = {"type": "reasoning.text", "text": "", "signature": "sig-123", "index": 0}
    encrypted = {"type": "reasoning.encrypted", "data": "opaque==", "index": 1}
    sse = chat_sse(
        [
            chat_chunk({"role": "assistant", "reasoning": "step one", "reasoning_details": [text_detail]}),
            chat_chunk({"reasoning_details": [signed]}),
            chat_chunk({"reasoning_details": [encrypted]}),
            chat_chunk({"content": "answer"}),
            chat_chunk({}, "stop"),
        ]
    )
    with anthropic_client_for(convert(sse)) as stream:
        message = stream.get_final_message()
    kinds = [(b.type, getattr(b, "thinking", None), getattr(b, "signature", None)) for b in message.content]
    assert kinds == [
        ("thinking", "step one", "sig-123"),
        ("redacted_thinking", None, None),
        ("text", None, None),
    ]
    assert message.content[1].data == "opaque=="
    assert message.content[2].text == "answer"


def anthropic_client_for(body: bytes) -> Any:
    messages = [{"role": "user", "content": "x"}]
    return anthropic_client(body).messages.stream(model="m", max_tokens=10, messages=messages)
