"""Hypothesis properties of the default pipeline: robustness, validity, losslessness, invariance."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chunkline
from strategies import (
    CREATED,
    anthropic_streams,
    expected_finish_reason,
    expected_reasoning,
    expected_text,
    expected_tool_calls,
    expected_usage,
    framed_streams,
    read_openai_stream,
    splits,
)

POLICIES = (
    "passthrough",
    *(f"words:{n}" for n in range(1, 6)),
    *(f"chars:{n}" for n in range(1, 8)),
    "sentences",
)

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def _pipeline(**options: Any) -> chunkline.Pipeline:
    return chunkline.Pipeline(created=CREATED, **options)


def pipeline(**options: Any) -> chunkline.Pipeline:
    """A pipeline with a fixed ``created`` (so runs compare byte for byte), built once per options."""
    return _pipeline(**options)


def convert(data: bytes, pieces: list[bytes] | None = None, **options: Any) -> list[bytes]:
    conversion = pipeline(**options).open()
    out: list[bytes] = []
    for piece in [data] if pieces is None else pieces:
        out += conversion.feed(piece)
    out += conversion.close()
    return out


# -- robustness ------------------------------------------------------------------------------------


@PROPERTY
@given(framed_streams())
def test_valid_streams_convert_to_a_valid_finished_openai_stream(
    framed: tuple[list[dict[str, Any]], bytes],
) -> None:
    events, data = framed
    stream = read_openai_stream(convert(data))
    assert stream.error is None, stream.error
    assert stream.finish_reason == expected_finish_reason(events)
    assert stream.text == expected_text(events)
    assert "".join(stream.reasoning.get("reasoning_content", [])) == expected_reasoning(events)
    assert "reasoning" not in stream.reasoning


@PROPERTY
@given(st.binary(max_size=400))
def test_junk_bytes_never_raise_and_end_in_one_error(data: bytes) -> None:
    stream = read_openai_stream(convert(data))
    assert stream.error is not None
    assert stream.finish_chunks == []


@PROPERTY
@given(st.data())
def test_mutated_streams_never_raise(data: st.DataObject) -> None:
    _, raw = data.draw(framed_streams())
    mutated = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        how = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        position = data.draw(st.integers(0, max(len(mutated) - 1, 0)))
        if how == "flip" and mutated:
            mutated[position] = data.draw(st.integers(0, 255))
        elif how == "delete" and mutated:
            del mutated[position : position + data.draw(st.integers(1, 20))]
        else:
            mutated[position:position] = data.draw(st.binary(min_size=1, max_size=10))
    pieces = data.draw(splits(bytes(mutated)))
    # A mutation may leave the stream valid; either way the output is one valid OpenAI stream.
    read_openai_stream(convert(bytes(mutated), pieces))


@PROPERTY
@given(st.data())
def test_input_cut_before_message_stop_is_reported_never_finished(data: st.DataObject) -> None:
    _, raw = data.draw(framed_streams())
    # Up to and including the last "}" of message_stop's JSON (but not its line break), the
    # final event is incomplete: R43/R51 forbid a finish.
    cut = data.draw(st.integers(0, raw.rindex(b"}") + 1))
    stream = read_openai_stream(convert(raw[:cut]))
    assert stream.finish_chunks == []
    assert stream.error is not None
    assert stream.error["type"] in {"upstream_truncated", "invalid_upstream_response"}


# -- losslessness ----------------------------------------------------------------------------------


@FEW
@given(framed_streams())
def test_text_is_lossless_under_every_chunking_policy(framed: tuple[list[dict[str, Any]], bytes]) -> None:
    events, data = framed
    text = expected_text(events)
    for policy in POLICIES:
        stream = read_openai_stream(convert(data, chunking=policy))
        assert stream.error is None
        assert stream.text == text, policy
        assert all(stream.content), "no empty content deltas"
        if policy.startswith("chars:"):
            size = int(policy.split(":")[1])
            # Pieces are N code points, shorter only where a boundary flushed the rest.
            assert all(len(piece) <= size for piece in stream.content), policy


@PROPERTY
@given(framed_streams(), st.sampled_from(POLICIES))
def test_tool_arguments_are_the_partial_json_byte_for_byte(
    framed: tuple[list[dict[str, Any]], bytes], policy: str
) -> None:
    events, data = framed
    stream = read_openai_stream(convert(data, chunking=policy))
    expected = expected_tool_calls(events)
    assert sorted(stream.tool_calls) == list(range(len(expected)))
    for index, call in enumerate(expected):
        got = stream.tool_calls[index]
        assert (got["id"], got["name"], got["type"]) == (call.id, call.name, "function")
        if call.arguments is not None:
            assert got["arguments"] == call.arguments
        else:
            assert json.loads(got["arguments"]) == call.input
        assert isinstance(json.loads(got["arguments"]), dict)
        assert stream.tool_fragments[index][0] == "", "the first delta carries id and name, arguments ''"


@PROPERTY
@given(framed_streams(anthropic_streams(kinds=("text", "thinking", "redacted_thinking", "tool_use"))))
def test_reasoning_is_lossless_in_every_mode(framed: tuple[list[dict[str, Any]], bytes]) -> None:
    events, data = framed
    reasoning = expected_reasoning(events)
    for field in ("reasoning_content", "reasoning"):
        stream = read_openai_stream(convert(data, thinking=field))
        assert "".join(stream.reasoning.get(field, [])) == reasoning
        assert stream.text == expected_text(events)
    dropped = read_openai_stream(convert(data, thinking="drop"))
    assert dropped.reasoning == {} and dropped.text == expected_text(events)
    tagged = read_openai_stream(convert(data, thinking="tags"))
    assert tagged.reasoning == {}
    assert tagged.text == _tagged_text(events)
    for mode in ("reasoning_content", "reasoning", "tags", "drop"):
        wire = b"".join(convert(data, thinking=mode))
        assert b"SIGNATURE_" not in wire and b"REDACTED_" not in wire, "R30"


def _tagged_text(events: list[dict[str, Any]]) -> str:
    """Content with thinking inline as <think>...</think>, one pair per thinking block with text."""
    out = []
    current: dict[int, list[str]] = {}
    kinds: dict[int, str] = {}
    for event in events:
        if event["type"] == "content_block_start":
            kinds[event["index"]] = event["content_block"]["type"]
            block = event["content_block"]
            current[event["index"]] = [block.get("text") or block.get("thinking") or ""]
        elif event["type"] == "content_block_delta":
            delta = event["delta"]
            if delta["type"] in ("text_delta", "thinking_delta"):
                current[event["index"]].append(delta.get("text") or delta.get("thinking") or "")
        elif event["type"] == "content_block_stop":
            text = "".join(current.pop(event["index"], []))
            kind = kinds[event["index"]]
            if kind == "text":
                out.append(text)
            elif kind == "thinking" and text:
                out.append(f"<think>{text}</think>")
    return "".join(out)


@PROPERTY
@given(framed_streams(), st.sampled_from(["chunk", "final"]))
def test_usage_is_the_final_cumulative_count(framed: tuple[list[dict[str, Any]], bytes], where: str) -> None:
    events, data = framed
    stream = read_openai_stream(convert(data, include_usage=True, usage=where))
    expected = expected_usage(events)
    if where == "chunk":
        (chunk,) = stream.usage_chunks
        assert chunk["usage"] == expected
        assert all(c["usage"] is None for c in stream.chunks if c is not chunk)
    else:
        assert stream.usage_chunks == []
        assert stream.finish_chunks[0]["usage"] == expected
        assert all(c["usage"] is None for c in stream.chunks if c is not stream.finish_chunks[0])
    assert all("usage" not in c for c in read_openai_stream(convert(data)).chunks)


# -- invariance ------------------------------------------------------------------------------------


@PROPERTY
@given(st.data(), st.sampled_from(["passthrough", "words:2", "chars:3", "sentences"]))
def test_output_is_the_same_for_any_split_of_the_input(data: st.DataObject, policy: str) -> None:
    _, raw = data.draw(framed_streams())
    pieces = data.draw(splits(raw))
    assert b"".join(pieces) == raw
    whole = convert(raw, chunking=policy)
    assert convert(raw, pieces, chunking=policy) == whole


@PROPERTY
@given(st.data())
def test_junk_output_is_the_same_for_any_split(data: st.DataObject) -> None:
    raw = data.draw(st.binary(max_size=300))
    assert convert(raw, data.draw(splits(raw))) == convert(raw)


async def _collect_async(pieces: list[bytes], **options: Any) -> list[bytes]:
    async def source() -> Any:
        for piece in pieces:
            yield piece

    return [out async for out in pipeline(**options).transform(source())]


@FEW
@given(st.data())
def test_sync_asyncio_and_trio_transforms_agree(data: st.DataObject) -> None:
    _, raw = data.draw(framed_streams())
    pieces = data.draw(splits(raw))
    options = {"include_usage": data.draw(st.booleans())}
    sync = list(pipeline(**options).transform_sync(pieces))
    assert sync == convert(raw, **options)
    for backend in ("asyncio", "trio"):
        assert anyio.run(lambda: _collect_async(pieces, **options), backend=backend) == sync, backend


@FEW
@given(st.binary(max_size=200), st.data())
def test_sync_and_async_agree_on_junk(raw: bytes, data: st.DataObject) -> None:
    pieces = data.draw(splits(raw))
    sync = list(pipeline().transform_sync(pieces))
    for backend in ("asyncio", "trio"):
        assert anyio.run(lambda: _collect_async(pieces), backend=backend) == sync, backend


def _convert_raising(pieces: list[bytes]) -> tuple[list[bytes], chunkline.StreamError | None]:
    """Outputs with on_error="raise", as a caller that keeps every list it was given sees them."""
    conversion = pipeline(on_error="raise").open()
    out: list[bytes] = []
    try:
        for piece in pieces:
            out += conversion.feed(piece)
        out += conversion.close()
    except chunkline.StreamError as exc:
        return out + exc.output, exc
    return out, None


@PROPERTY
@given(st.one_of(st.binary(max_size=300), framed_streams().map(lambda f: f[1][: len(f[1]) // 2])), st.data())
def test_on_error_raise_agrees_with_the_in_band_error(raw: bytes, data: st.DataObject) -> None:
    pieces = data.draw(splits(raw))
    inband = convert(raw, pieces)
    error = read_openai_stream(inband).error
    assert error is not None
    before, exc = _convert_raising(pieces)
    assert exc is not None, "a fault reported in-band is raised with on_error='raise'"
    assert (exc.type, exc.message, exc.code or exc.type) == (error["type"], error["message"], error["code"])
    assert before == inband[:-2], "output before the fault is the same either way"


@PROPERTY
@given(framed_streams())
def test_on_error_raise_never_raises_for_valid_streams(framed: tuple[list[dict[str, Any]], bytes]) -> None:
    _, raw = framed
    out, exc = _convert_raising([raw])
    assert exc is None and out == convert(raw)
