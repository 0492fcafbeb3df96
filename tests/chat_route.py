"""Helpers for the openai-chat -> anthropic-messages route: the openai SDK's reading of the input,
the anthropic SDK's reading of the output, and generated chat streams (hypothesis)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import openai
from hypothesis import strategies as st

import chunkline
from harness import FIXTURES

OPENAI_FIXTURES = FIXTURES / "openai"
COMPAT_FIXTURES = FIXTURES / "openai_compat"
_MESSAGES = [{"role": "user", "content": "hi"}]

#: Chat finish reasons in neutral terms (an unknown one is ``stop``).
NEUTRAL_FINISH = {
    "stop": "stop",
    "eos": "stop",
    "length": "length",
    "max_tokens": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}

#: Neutral-to-Anthropic stop reasons, as the openai finish reasons read (the route's rule).
STOP_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def chat_fixture_paths() -> list[Path]:
    """Every OpenAI-compatible recording (the openai and openai_compat folders), sorted by name."""
    paths = [p for d in (OPENAI_FIXTURES, COMPAT_FIXTURES) if d.is_dir() for p in d.iterdir()]
    return sorted((p for p in paths if p.suffix in {".sse", ".jsonl"}), key=lambda p: p.name)


def single_choice_paths() -> list[Path]:
    """The OpenAI-compatible recordings of one choice (all but the n=3 one: a converter only ever
    sends one choice)."""
    return [p for p in chat_fixture_paths() if "n3_choices" not in p.name]


def load_chat_sse(path: Path) -> bytes:
    """The recording as SSE bytes (``.jsonl`` chunk files wrapped as ``data:`` lines)."""
    data = path.read_bytes()
    if path.suffix == ".jsonl":
        return b"".join(b"data: " + line + b"\n\n" for line in data.splitlines() if line.strip())
    return data


def route(**options: Any) -> chunkline.Pipeline:
    return chunkline.Pipeline(source="openai-chat", target="anthropic-messages", **options)


def convert(data: bytes, pieces: list[bytes] | None = None, **options: Any) -> bytes:
    """Convert with a fresh conversion; ``pieces`` feeds the input split that way instead."""
    conversion = route(**options).open()
    out: list[bytes] = []
    for piece in pieces if pieces is not None else [data]:
        out += conversion.feed(piece)
    out += conversion.close()
    return b"".join(out)


def finish_line_end(sse: bytes) -> int:
    """The offset of the line break ending the first chunk with a ``finish_reason``: every prefix
    up to it (that line break left out) is a stream cut before its finish."""
    pos = 0
    for line in sse.splitlines(keepends=True):
        body = line.strip()
        if body.startswith(b"data:") and body[5:].strip() not in (b"", b"[DONE]"):
            chunk = json.loads(body[5:])
            if any(c.get("finish_reason") for c in chunk.get("choices") or []):
                return pos + len(line.rstrip(b"\r\n"))
        pos += len(line)
    raise AssertionError("no finish_reason in the stream")


# -- the input, read by the openai SDK ----------------------------------------------------------


@dataclass
class Reading:
    """What a stream means, in the terms both SDKs can be compared in."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[tuple[str, str, Any]] = field(default_factory=list)
    stop_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


def openai_chunks(sse: bytes) -> list[Any]:
    """The chunks of the openai SDK's ``create(stream=True)`` over ``sse`` (not strict: Azure's
    preamble chunk has an empty id and model, which the strict models refuse)."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse)

    client = openai.OpenAI(
        api_key="test",
        base_url="http://openai.test/v1",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    stream = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    with stream:
        return list(stream)


@dataclass
class ChatReading:
    """The input as the openai SDK reads it, in chat terms: text (content and refusal), reasoning,
    tool calls with parsed arguments, the finish in neutral terms, usage and model."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[tuple[str, str, Any]] = field(default_factory=list)
    #: The neutral finish reason (the route's rule: ``stop`` after tool calls is ``tool_calls``,
    #: after refusal text ``content_filter``; an unknown reason is ``stop``).
    finish: str = "stop"
    usage: Any = None
    model: str | None = None
    id: str | None = None


def chat_reading(sse: bytes) -> ChatReading:
    """The openai SDK's chunks of the input, accumulated by choice 0 and tool-call index."""
    reading = ChatReading()
    calls: dict[int, list[Any]] = {}
    finish = None
    refused = False
    for chunk in openai_chunks(sse):
        if chunk.usage is not None:
            reading.usage = chunk.usage
        if chunk.choices and reading.model is None:
            reading.model, reading.id = chunk.model, chunk.id
        for choice in chunk.choices:
            delta = choice.delta
            extra = delta.model_extra or {}
            content = delta.content
            if isinstance(content, list):  # Mistral's content parts: thinking and text
                for part in content:
                    if part.get("type") == "text":
                        reading.text += part.get("text") or ""
                    elif part.get("type") == "thinking":
                        reading.reasoning += "".join(p.get("text") or "" for p in part.get("thinking") or [])
                content = None
            reading.text += (content or "") + (delta.refusal or "")
            refused = refused or bool(delta.refusal)
            reading.reasoning += extra.get("reasoning_content") or extra.get("reasoning") or ""
            for tc in delta.tool_calls or []:
                call = calls.setdefault(tc.index, [tc.id, None, ""])
                if tc.function is not None:
                    call[1] = call[1] or tc.function.name
                    call[2] += tc.function.arguments or ""
            if choice.finish_reason is not None:
                finish = choice.finish_reason
    reading.tool_calls = [(c[0], c[1], json.loads(c[2] or "{}")) for _, c in sorted(calls.items())]
    reading.finish = NEUTRAL_FINISH.get(finish or "", "stop")
    if finish == "stop" and calls:
        reading.finish = "tool_calls"
    elif finish == "stop" and refused:
        reading.finish = "content_filter"
    return reading


def cached_tokens(usage: Any) -> int:
    """The cached part of a chat usage object (OpenAI's ``cached_tokens``, DeepSeek's
    ``prompt_cache_hit_tokens``), 0 when it says none."""
    details = usage.prompt_tokens_details
    cached = details.cached_tokens if details is not None else None
    if cached is None:
        cached = (usage.model_extra or {}).get("prompt_cache_hit_tokens")
    return cached or 0


def openai_reading(sse: bytes) -> Reading:
    """`chat_reading` in Anthropic's terms, as the openai-chat -> anthropic-messages route maps it."""
    chat = chat_reading(sse)
    reading = Reading(chat.text, chat.reasoning, chat.tool_calls, STOP_REASON[chat.finish])
    # Anthropic's usage always has the counts: without a usage chunk they read 0.
    reading.usage = {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0}
    usage = chat.usage
    if usage is not None:
        cached = cached_tokens(usage)
        reading.usage = {
            "input_tokens": usage.prompt_tokens - cached,
            "output_tokens": usage.completion_tokens,
            "cache_read_input_tokens": cached,
        }
    return reading


# -- the output, read by the anthropic SDK ------------------------------------------------------


def anthropic_client(body: bytes) -> anthropic.Anthropic:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return anthropic.Anthropic(
        api_key="test",
        base_url="http://anthropic.test",
        max_retries=0,
        _strict_response_validation=True,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )


def message_reading(message: Any) -> Reading:
    """An anthropic SDK ``Message`` in the terms the tests compare."""
    usage = message.usage
    counts = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    counts["cache_read_input_tokens"] = usage.cache_read_input_tokens or 0
    return Reading(
        text="".join(b.text for b in message.content if b.type == "text"),
        reasoning="".join(b.thinking for b in message.content if b.type == "thinking"),
        tool_calls=[(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"],
        stop_reason=message.stop_reason,
        usage=counts,
    )


def anthropic_message(body: bytes) -> Any:
    """The strict anthropic SDK's ``messages.stream()`` and ``get_final_message()`` over the output."""
    with anthropic_client(body).messages.stream(model="m", max_tokens=1024, messages=_MESSAGES) as stream:
        return stream.get_final_message()


def anthropic_final(body: bytes) -> Reading:
    """`anthropic_message` in the terms the tests compare."""
    return message_reading(anthropic_message(body))


def anthropic_events(body: bytes) -> list[Any]:
    """The events of a strict ``client.messages.create(stream=True)`` over the output."""
    client = anthropic_client(body)
    with client.messages.create(model="m", max_tokens=1024, messages=_MESSAGES, stream=True) as stream:
        return list(stream)


def check_anthropic_order(events: list[Any]) -> None:
    """The Anthropic stream's own rules: message_start first, blocks 0, 1, 2... each started
    before its deltas and stopped before the next starts and before message_delta, then
    message_stop last."""
    assert events[0].type == "message_start"
    assert events[-1].type == "message_stop"
    assert events[-2].type == "message_delta"
    open_index = None
    expected = 0
    for event in events[1:-2]:
        if event.type == "content_block_start":
            assert open_index is None, "a block started while another was open"
            assert event.index == expected
            open_index, expected = event.index, expected + 1
        elif event.type == "content_block_delta":
            assert event.index == open_index
        elif event.type == "content_block_stop":
            assert event.index == open_index
            open_index = None
        else:
            assert event.type == "ping", event.type
    assert open_index is None


def frames(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """``(event name, data)`` of each frame; asserts each frame names its data's type."""
    out = []
    for frame in body.split(b"\n\n"):
        if not frame.strip() or frame.startswith(b":"):
            continue
        head, _, data = frame.partition(b"\ndata: ")
        assert head.startswith(b"event: "), frame
        name = head[len(b"event: ") :].decode()
        payload = json.loads(data)
        assert payload["type"] == name, frame
        out.append((name, payload))
    return out


def chat_sse(chunks: list[dict[str, Any]], done: bool = True) -> bytes:
    """Chunks framed as ``data:`` events, then ``[DONE]`` (unless ``done`` is false)."""
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    return body + (b"data: [DONE]\n\n" if done else b"")


# -- generated chat streams ---------------------------------------------------------------------

_texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)


def chat_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    """One chat.completion.chunk with one choice."""
    return {
        "id": "chatcmpl-gen",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gen-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


@st.composite
def chat_streams(draw: Callable[..., Any]) -> bytes:
    """A well-formed chat stream as some server might send it: reasoning, text and tool calls
    (streamed, or whole in one chunk, the first maybe inside the role chunk; argument fragments
    possibly interleaved across calls; text after them), a finish with or without the last
    content, usage on its own chunk, on the finish chunk or absent, and [DONE] or not."""
    chunks: list[dict[str, Any]] = []
    role: dict[str, Any] = {"role": "assistant"}
    if draw(st.booleans()):
        role["content"] = ""
    chunks.append(chat_chunk(role))
    field_name = draw(st.sampled_from(["reasoning_content", "reasoning"]))
    for piece in draw(st.lists(_texts, max_size=3)):
        chunks.append(chat_chunk({field_name: piece}))
    for piece in draw(st.lists(_texts, max_size=4)):
        chunks.append(chat_chunk({"content": piece}))
    calls = draw(st.integers(0, 3))
    whole = draw(st.booleans())  # each call in one chunk, id, name and arguments together
    fragments: list[tuple[int, str]] = []
    for index in range(calls):
        args = json.dumps({"k": draw(_texts), "n": index})
        cuts = sorted(draw(st.lists(st.integers(0, len(args)), max_size=3)))
        parts = [args[a:b] for a, b in zip([0, *cuts], [*cuts, len(args)], strict=True)]
        function = {"name": f"t{index}", "arguments": args if whole else ""}
        call = {"index": index, "id": f"call_{index}", "type": "function", "function": function}
        if index == 0 and len(chunks) == 1 and draw(st.booleans()):
            chunks[0]["choices"][0]["delta"]["tool_calls"] = [call]  # inside the role chunk
        else:
            chunks.append(chat_chunk({"tool_calls": [call]}))
        if not whole:
            fragments += [(index, p) for p in parts if p]
    if draw(st.booleans()):
        # Interleave the calls' fragments, each call's own fragments still in order.
        order = [index for index, _ in draw(st.permutations(fragments))]
        originals: dict[int, list[str]] = {}
        for index, piece in fragments:
            originals.setdefault(index, []).append(piece)
        fragments = [(index, originals[index].pop(0)) for index in order]
    for index, piece in fragments:
        chunks.append(chat_chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    if calls and draw(st.booleans()):
        chunks.append(chat_chunk({"content": draw(_texts)}))  # text after the calls
    finish = draw(
        st.sampled_from(["stop", "length", "content_filter"] if not calls else ["tool_calls", "stop"])
    )
    usage = {
        "prompt_tokens": 20,
        "completion_tokens": 7,
        "total_tokens": 27,
        "prompt_tokens_details": {"cached_tokens": 5},
    }
    where = draw(st.sampled_from(["own", "finish", "none"]))
    if draw(st.booleans()) and chunks[-1]["choices"][0]["delta"].get("content"):
        chunks[-1]["choices"][0]["finish_reason"] = finish
    else:
        chunks.append(chat_chunk({}, finish))
    if where == "finish":
        chunks[-1]["usage"] = usage
    elif where == "own":
        chunks.append({**chat_chunk({}), "choices": [], "usage": usage})
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    body = b"".join(b"data: " + json.dumps(c).encode() + newline + newline for c in chunks)
    if draw(st.booleans()):
        body = b": keep-alive" + newline + newline + body
    if draw(st.booleans()):
        body += b"data: [DONE]" + newline + newline
    return body
