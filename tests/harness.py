"""Test helpers: the recorded fixtures, and the real openai/anthropic SDKs reading streams over mock HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import openai
from openai.lib.streaming.chat import ChatCompletionStreamState

import chunkline

FIXTURES = Path(__file__).parent / "fixtures"
ANTHROPIC_FIXTURES = FIXTURES / "anthropic"
OPENAI_FIXTURES = FIXTURES / "openai"
GOLDEN = Path(__file__).parent / "golden"

#: A fixed ``created`` for outputs compared byte for byte.
CREATED = 1_700_000_000

_MESSAGES = [{"role": "user", "content": "hi"}]


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


def fixture_paths() -> list[Path]:
    """Every Anthropic recording (``.sse`` and ``.jsonl``), sorted by name."""
    return sorted(p for p in ANTHROPIC_FIXTURES.iterdir() if p.suffix in {".sse", ".jsonl"})


#: The one recording a converter rejects: a second message_start spliced into its stream.
SPLICED = "vercel_spliced_message_start_thinking_tool"


def well_formed_paths() -> list[Path]:
    """Every Anthropic recording but `SPLICED`."""
    return [p for p in fixture_paths() if p.stem != SPLICED]


def jsonl_to_sse(data: bytes) -> bytes:
    """vercel/ai chunk files hold one event payload per line; wrap each as a named SSE event."""
    out = bytearray()
    for line in data.splitlines():
        if not line.strip():
            continue
        kind = json.loads(line)["type"]
        out += b"event: " + kind.encode() + b"\ndata: " + line + b"\n\n"
    return bytes(out)


def load_sse(path: Path) -> bytes:
    """The fixture as SSE bytes: ``.sse`` files verbatim, ``.jsonl`` files wrapped event by event."""
    data = path.read_bytes()
    return jsonl_to_sse(data) if path.suffix == ".jsonl" else data


def is_unterminated(sse: bytes) -> bool:
    """True for a recording whose last line has no line break (three anthropic-sdk-python fixture
    files are stored that way). By R51 such a line is cut: the converter reports a truncation."""
    return bool(sse) and not sse.endswith((b"\n", b"\r"))


def load_complete_sse(path: Path) -> bytes:
    """The fixture as the API sent it: a recording stored without the line break and blank line
    that end its last event gets them back (the API ends every event that way). Everything else
    is returned unchanged."""
    sse = load_sse(path)
    if is_unterminated(sse):
        return sse + b"\n\n"
    return sse


@dataclass
class SSEEvent:
    """One parsed input event with its byte span in the input (``end`` is after its blank line)."""

    name: str | None
    data: dict[str, Any]
    start: int
    end: int


def parse_anthropic_sse(sse: bytes) -> list[SSEEvent]:
    """A plain parser for the (well-formed, LF-framed) fixtures, used to find events and their
    byte offsets for the truncation and error-injection tests."""
    events = []
    pos = 0
    for block in sse.split(b"\n\n"):
        start, end = pos, pos + len(block) + 2
        pos = end
        name, data = None, []
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].removeprefix(b" "))
        if data:
            events.append(SSEEvent(name, json.loads(b"\n".join(data)), start, min(end, len(sse))))
    return events


def first_response(sse: bytes) -> bytes:
    """The input up to the end of its first ``message_stop`` event: the one response a converter
    reports (R52 ignores what follows). Inputs without a ``message_stop`` come back whole."""
    for event in parse_anthropic_sse(sse):
        if event.data.get("type") == "message_stop":
            return sse[: event.end]
    return sse


def message_stop_line_end(sse: bytes) -> int:
    """The offset of the line break that ends the first ``message_stop`` data line (the input's
    length if it has none). Every prefix up to this offset lacks a complete ``message_stop``."""
    stop = next(e for e in parse_anthropic_sse(sse) if e.data.get("type") == "message_stop")
    end = sse.find(b"\n", sse.index(b"data:", stop.start))
    return len(sse) if end < 0 else end


# --------------------------------------------------------------------------------------------
# Converting
# --------------------------------------------------------------------------------------------


def convert(sse: bytes, **options: Any) -> bytes:
    """Convert a whole input with a pipeline built from ``options``; the output bytes joined."""
    return b"".join(chunkline.Pipeline(**options).convert(sse))


def split_events(output: bytes) -> list[bytes]:
    """The output split into its SSE events (each without the blank line that ends it)."""
    assert output.endswith(b"\n\n"), f"output does not end with a blank line: {output[-80:]!r}"
    return output[:-2].split(b"\n\n")


def data_payloads(output: bytes) -> list[Any]:
    """The JSON value of each ``data:`` event (``"[DONE]"`` for the end marker); comments skipped."""
    out: list[Any] = []
    for event in split_events(output):
        if event.startswith(b":"):
            continue
        assert event.startswith(b"data: "), event[:80]
        body = event[6:]
        out.append("[DONE]" if body == b"[DONE]" else json.loads(body))
    return out


# --------------------------------------------------------------------------------------------
# Mock HTTP
# --------------------------------------------------------------------------------------------


_SSE_HEADERS = {"content-type": "text/event-stream"}


def _sse_handler(body: bytes) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=_SSE_HEADERS, content=body)

    return handler


def openai_client(body: bytes) -> openai.OpenAI:
    """A strict openai client whose every request is answered with ``body`` as an SSE stream."""
    return openai.OpenAI(
        api_key="test",
        base_url="http://openai.test/v1",
        max_retries=0,
        _strict_response_validation=True,
        http_client=httpx.Client(transport=httpx.MockTransport(_sse_handler(body))),
    )


def anthropic_client(body: bytes) -> anthropic.Anthropic:
    """An anthropic client whose every request is answered with ``body`` as an SSE stream. (anthropic
    2.x takes only an ``httpx2`` client; the openai SDK still accepts a classic ``httpx`` one.)"""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers=_SSE_HEADERS, content=body)

    return anthropic.Anthropic(
        api_key="test",
        base_url="http://anthropic.test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )


# --------------------------------------------------------------------------------------------
# Ground truth: the anthropic SDK
# --------------------------------------------------------------------------------------------


def anthropic_final_message(sse: bytes) -> Any:
    """The anthropic SDK's own accumulation of the stream (``messages.stream().get_final_message()``)."""
    client = anthropic_client(sse)
    with client.messages.stream(model="claude-test", max_tokens=1024, messages=_MESSAGES) as stream:
        return stream.get_final_message()


def final_message_of(stem: str) -> Any:
    """`anthropic_final_message` of the recording named ``stem`` (its first response)."""
    path = next(p for p in fixture_paths() if p.stem == stem)
    return anthropic_final_message(first_response(load_complete_sse(path)))


def anthropic_raw_events(sse: bytes) -> list[Any]:
    """The stream events as the anthropic SDK parses them (``messages.create(stream=True)``)."""
    client = anthropic_client(sse)
    with client.messages.create(
        model="claude-test", max_tokens=1024, messages=_MESSAGES, stream=True
    ) as stream:
        return list(stream)


@dataclass
class AnthropicTruth:
    """What the anthropic SDK says the stream means, in the terms the tests compare."""

    message: Any
    text: str
    thinking: str | None
    tool_calls: list[dict[str, Any]]
    stop_reason: str | None
    signatures: list[str]
    redacted: list[str]
    ping_count: int


def anthropic_truth(sse: bytes) -> AnthropicTruth:
    """The anthropic SDK's reading of the input's first response (what the converter reports)."""
    sse = first_response(sse)
    message = anthropic_final_message(sse)
    events = anthropic_raw_events(sse)
    partial: dict[int, str] = {}
    closed: set[int] = set()
    for event in events:
        if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
            partial[event.index] = partial.get(event.index, "") + event.delta.partial_json
        elif event.type == "content_block_stop":
            closed.add(event.index)
    tool_calls = []
    for index, block in enumerate(message.content):
        if block.type == "tool_use":
            tool_calls.append(
                {
                    "id": block.id,
                    "name": block.name,
                    "input": block.input,
                    "closed": index in closed,
                    "partial_json": partial.get(index, ""),
                }
            )
    thinking = "".join(b.thinking for b in message.content if b.type == "thinking")
    return AnthropicTruth(
        message=message,
        text="".join(b.text for b in message.content if b.type == "text"),
        thinking=thinking or None,
        tool_calls=tool_calls,
        stop_reason=message.stop_reason,
        signatures=[b.signature for b in message.content if b.type == "thinking" and b.signature],
        redacted=[b.data for b in message.content if b.type == "redacted_thinking" and b.data],
        ping_count=sum(1 for e in parse_anthropic_sse(sse) if e.data.get("type") == "ping"),
    )


# --------------------------------------------------------------------------------------------
# The client: the openai SDK, three ways
# --------------------------------------------------------------------------------------------


@dataclass
class ToolCall:
    id: str | None
    type: str | None
    name: str | None
    arguments: str


@dataclass
class Accumulated:
    """The assistant message a client ends up with, whichever way it read the stream."""

    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    #: LengthFinishReasonError / ContentFilterFinishReasonError from get_final_completion() (R23)
    raised: type[Exception] | None = None
    #: event types the ``.stream()`` helper yielded
    events: list[str] = field(default_factory=list)


def _stream_options(include_usage: bool) -> dict[str, Any]:
    return {"stream_options": {"include_usage": True}} if include_usage else {}


def _concat(old: str | None, new: str | None) -> str | None:
    if new is None:
        return old
    return (old or "") + new


def iter_openai_chunks(sse: bytes, *, include_usage: bool = False) -> Iterator[Any]:
    """The chunks of ``client.chat.completions.create(stream=True)`` with strict validation."""
    client = openai_client(sse)
    stream = client.chat.completions.create(
        model="gpt-test", messages=_MESSAGES, stream=True, **_stream_options(include_usage)
    )
    with stream:
        yield from stream


def openai_stream_create(sse: bytes, *, include_usage: bool = False) -> Accumulated:
    """Raw ``create(stream=True)``, accumulated here the way a hand-written client does it."""
    acc = Accumulated()
    calls: dict[int, ToolCall] = {}
    for chunk in iter_openai_chunks(sse, include_usage=include_usage):
        if chunk.usage is not None:
            acc.usage = chunk.usage.model_dump(exclude_none=True)
        for choice in chunk.choices:
            assert choice.index == 0, f"choice index {choice.index}"
            delta = choice.delta
            extra = delta.model_extra or {}
            acc.role = _concat(acc.role, delta.role)
            acc.content = _concat(acc.content, delta.content)
            acc.refusal = _concat(acc.refusal, delta.refusal)
            acc.reasoning_content = _concat(acc.reasoning_content, extra.get("reasoning_content"))
            acc.reasoning = _concat(acc.reasoning, extra.get("reasoning"))
            for tc in delta.tool_calls or []:
                call = calls.setdefault(tc.index, ToolCall(None, None, None, ""))
                call.id = _concat(call.id, tc.id)
                call.type = _concat(call.type, tc.type)
                if tc.function is not None:
                    call.name = _concat(call.name, tc.function.name)
                    call.arguments += tc.function.arguments or ""
            if choice.finish_reason is not None:
                assert acc.finish_reason is None, "a second finish_reason"
                acc.finish_reason = choice.finish_reason
    assert sorted(calls) == list(range(len(calls))), f"tool call indices {sorted(calls)}"
    acc.tool_calls = [calls[i] for i in range(len(calls))]
    return acc


def _from_completion(completion: Any, acc: Accumulated) -> Accumulated:
    assert len(completion.choices) == 1, f"{len(completion.choices)} choices"
    choice = completion.choices[0]
    message = choice.message
    extra = message.model_extra or {}
    acc.role = message.role
    acc.content = message.content
    acc.refusal = message.refusal
    acc.reasoning_content = extra.get("reasoning_content")
    acc.reasoning = extra.get("reasoning")
    acc.tool_calls = [
        ToolCall(tc.id, tc.type, tc.function.name, tc.function.arguments) for tc in message.tool_calls or []
    ]
    acc.finish_reason = choice.finish_reason
    acc.usage = completion.usage.model_dump(exclude_none=True) if completion.usage is not None else None
    return acc


_FINISH_ERRORS = (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError)


def openai_stream_state(sse: bytes, *, include_usage: bool = False) -> Accumulated:
    """``ChatCompletionStreamState`` fed the chunks of a strict ``create(stream=True)``."""
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for chunk in iter_openai_chunks(sse, include_usage=include_usage):
        state.handle_chunk(chunk)
    acc = Accumulated()
    try:
        completion = state.get_final_completion()
    except _FINISH_ERRORS as exc:
        acc.raised = type(exc)
        completion = state.current_completion_snapshot
    return _from_completion(completion, acc)


def openai_stream_helper(sse: bytes, *, include_usage: bool = False) -> Accumulated:
    """``client.chat.completions.stream()`` then ``get_final_completion()``."""
    client = openai_client(sse)
    acc = Accumulated()
    with client.chat.completions.stream(
        model="gpt-test", messages=_MESSAGES, **_stream_options(include_usage)
    ) as stream:
        for event in stream:
            acc.events.append(event.type)
        try:
            completion = stream.get_final_completion()
        except _FINISH_ERRORS as exc:
            acc.raised = type(exc)
            completion = stream.current_completion_snapshot
    return _from_completion(completion, acc)


CONSUMERS: dict[str, Callable[..., Accumulated]] = {
    "create": openai_stream_create,
    "state": openai_stream_state,
    "helper": openai_stream_helper,
}


# --------------------------------------------------------------------------------------------
# Golden files
# --------------------------------------------------------------------------------------------


def golden_path(fixture: Path) -> Path:
    return GOLDEN / f"{fixture.stem}.openai.sse"


def golden_output(fixture: Path) -> bytes:
    """What a golden file holds: the default pipeline's output (with a fixed ``created``) for the
    recording as the API sent it (:func:`load_complete_sse`)."""
    return convert(load_complete_sse(fixture), created=CREATED)
