"""The openai-responses route on every recording: the openai SDK reads what the anthropic SDK reads."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest

import chunkline
import harness
import responses_judge as judge
from chunkline.cli import main
from chunkline.testing import assert_split_invariant
from strategies import block_events, encode_sse, message_delta, message_start

PATHS = {p.name: p for p in harness.fixture_paths()}
#: Recordings that break the Anthropic protocol (see test_conformance.py): they fail the response.
PROTOCOL_VIOLATIONS = {"vercel_spliced_message_start_thinking_tool.jsonl"}
CONFORMING = sorted(name for name in PATHS if name not in PROTOCOL_VIOLATIONS)
TARGET = "openai-responses"
OVERLOADED = (
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
)


@functools.cache
def pipeline(**options: Any) -> chunkline.Pipeline:
    return chunkline.Pipeline(target=TARGET, created=harness.CREATED, **options)


def convert(data: bytes, **options: Any) -> bytes:
    return b"".join(pipeline(**options).convert(data))


@functools.cache
def sse_of(name: str) -> bytes:
    return harness.load_complete_sse(PATHS[name])


@functools.cache
def message_of(name: str) -> Any:
    return harness.anthropic_final_message(harness.first_response(sse_of(name)))


@pytest.mark.parametrize("name", CONFORMING)
@pytest.mark.parametrize(
    "options",
    [{}, {"reasoning_encrypted_content": True}, {"thinking": "reasoning_text"}],
    ids=["summary", "encrypted", "reasoning_text"],
)
def test_recording_reads_back_as_the_anthropic_sdk_reads_it(name: str, options: dict[str, Any]) -> None:
    """RS1 framing, RS2 numbering, RS3 the opening, RS4, RS5, RS6 and RS7 the items, RS8 encrypted_content,
    RS9 server tools left out, RS10 the terminal event, RS11 usage, RS13 the SDKs agree."""
    body = convert(sse_of(name), **options)
    judge.check_frames(body)
    reading = judge.read(body)
    judge.assert_same(
        reading,
        message_of(name),
        reasoning_text=options.get("thinking") == "reasoning_text",
        encrypted=bool(options.get("reasoning_encrypted_content")),
    )


@pytest.mark.parametrize("name", CONFORMING)
def test_recording_split_anywhere_gives_the_same_stream(name: str) -> None:
    """RS13: the input split at any byte."""
    assert_split_invariant(pipeline(), sse_of(name), random_splits=4, two_way=16)


@pytest.mark.parametrize("name", sorted(PROTOCOL_VIOLATIONS))
def test_protocol_violation_fails_the_response(name: str) -> None:
    """RS12."""
    reading = judge.read(convert(sse_of(name)))
    assert reading.terminal == "response.failed"
    assert reading.final.error.type == "invalid_upstream_response"


@pytest.mark.parametrize("name", CONFORMING)
def test_cut_short_fails_the_response(name: str) -> None:
    """RS12: input that ends anywhere before message_stop is a failed response, never a completed one."""
    data = harness.first_response(sse_of(name))
    end = harness.message_stop_line_end(data)
    for cut in sorted({1, end // 3, end // 2, end - 1, end}):
        body = convert(data[:cut])
        judge.check_frames(body)
        reading = judge.read(body)
        assert reading.terminal == "response.failed", cut
        assert b"response.completed" not in body


@pytest.mark.parametrize(
    "name", ["llm_thinking_then_tool_use.sse", "otel_text_then_parallel_tool_use_args.sse"]
)
def test_upstream_error_event_fails_the_response(name: str) -> None:
    """RS12: an error event mid-stream."""
    events = harness.parse_anthropic_sse(sse_of(name))
    data = sse_of(name)[: events[len(events) // 2].end] + OVERLOADED
    reading = judge.read(convert(data))
    assert reading.terminal == "response.failed"
    assert (reading.final.error.type, reading.final.error.code) == ("upstream_error", "server_error")
    assert reading.final.error.message == "Overloaded"


def test_broken_json_fails_the_response() -> None:
    """RS12."""
    data = sse_of("llm_minimal_text.sse")
    cut = data.index(b"content_block_delta")
    broken = data[:cut] + b'content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n'
    reading = judge.read(convert(broken))
    assert reading.terminal == "response.failed"
    assert reading.final.error.type == "invalid_upstream_response"


def test_nothing_at_all_fails_the_response() -> None:
    """RS12: a fault before message_start still opens the response."""
    reading = judge.read(convert(b""))
    assert [e.type for e in reading.events] == ["response.created", "response.in_progress", "response.failed"]


def repeated_tool_use_id() -> bytes:
    call = {"type": "tool_use", "id": "toolu_same", "name": "f", "input": {}}
    return encode_sse(
        [
            message_start(),
            *block_events(0, call),
            *block_events(1, call),
            message_delta("tool_use"),
            {"type": "message_stop"},
        ]
    )


def test_a_repeated_tool_use_id_raises_with_on_error_raise() -> None:
    """RS12 with on_error="raise": the repeat the encoder finds raises like every other fault,
    with what came before as .output, rather than writing response.failed (found while extending
    make fuzz to this route, by its check that on_error="raise" agrees with the in-band error)."""
    data = repeated_tool_use_id()
    in_band = pipeline().convert(data)
    assert in_band[-1].startswith(b"event: response.failed\n")
    with pytest.raises(chunkline.InvalidUpstreamResponse, match="'toolu_same' repeats") as caught:
        pipeline(on_error="raise").convert(data)
    assert caught.value.output == in_band[:-1]


def test_nothing_is_read_after_the_encoder_fails_the_response() -> None:
    """RS12: once the repeat has failed the response, the conversion is finished, so a server
    stops reading the upstream."""
    conversion = pipeline().open()
    data = repeated_tool_use_id()
    out = conversion.feed(data[: data.index(b"message_delta")])
    assert out[-1].startswith(b"event: response.failed\n") and conversion.finished
    assert conversion.feed(b"event: ping\ndata: {}\n\n") == []


def test_cli_converts_to_responses(capsys: pytest.CaptureFixture[str]) -> None:
    """``chunkline convert --to openai-responses``: the same stream as the library's."""
    path = PATHS["llm_thinking_then_tool_use.sse"]
    assert (
        main(["convert", str(path), "--to", "openai-responses", "--option", f"created={harness.CREATED}"])
        == 0
    )
    out = capsys.readouterr().out.encode()
    assert out == convert(sse_of(path.name))
    judge.assert_same(judge.read(out), message_of(path.name))


def test_every_rule_is_checked() -> None:
    """Each rule of docs/responses-rules.md is named by a test that checks it."""
    root = Path(__file__).parent
    rules = re.findall(
        r"^- \*\*(RS\d+)\*\*", (root.parent / "docs" / "responses-rules.md").read_text(), re.MULTILINE
    )
    assert len(rules) == 14
    tests = "".join(
        p.read_text() for p in [*root.glob("test_responses_*.py"), *root.glob("server/test_*.py")]
    )
    assert [rule for rule in rules if not re.search(rf"\b{rule}\b", tests)] == []
