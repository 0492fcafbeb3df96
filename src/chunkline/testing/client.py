"""Reading a converted stream back as a client does: plainly, or with the official openai SDK."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClientMessage", "ToolCallView", "read_openai_stream", "read_with_openai_sdk"]


@dataclass
class ToolCallView:
    """One tool call as a client assembles it from its deltas."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class ClientMessage:
    """The assistant message a client ends up with after reading a stream."""

    role: str | None = None
    content: str | None = None
    reasoning: str | None = None
    """``reasoning_content`` or ``reasoning``, whichever field the stream used."""
    tool_calls: list[ToolCallView] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    """The in-band error object (``message``, ``type``, ``param``, ``code``), if the stream ended in one."""
    done: bool = False
    """Whether ``data: [DONE]`` ended the stream."""
    chunks: list[dict[str, Any]] = field(default_factory=list)
    """Every ``chat.completion.chunk`` object, in order."""


def _join(old: str | None, new: Any) -> str | None:
    if new is None:
        return old
    return (old or "") + str(new)


class _Assembler:
    def __init__(self) -> None:
        self.message = ClientMessage()
        self.calls: dict[int, ToolCallView] = {}

    def delta(self, delta: dict[str, Any], finish_reason: Any) -> None:
        message = self.message
        message.role = _join(message.role, delta.get("role"))
        message.content = _join(message.content, delta.get("content"))
        message.reasoning = _join(message.reasoning, delta.get("reasoning_content"))
        message.reasoning = _join(message.reasoning, delta.get("reasoning"))
        for call in delta.get("tool_calls") or []:
            view = self.calls.setdefault(call["index"], ToolCallView(call["index"]))
            view.id = _join(view.id, call.get("id"))
            function = call.get("function") or {}
            view.name = _join(view.name, function.get("name"))
            view.arguments += function.get("arguments") or ""
        if finish_reason is not None:
            if message.finish_reason is not None:
                raise AssertionError(f"a second finish_reason: {finish_reason!r}")
            message.finish_reason = finish_reason

    def result(self) -> ClientMessage:
        self.message.tool_calls = [self.calls[index] for index in sorted(self.calls)]
        return self.message


def read_openai_stream(output: bytes | Iterable[bytes]) -> ClientMessage:
    """Read an OpenAI chat-completions SSE stream (a pipeline's output: the list of frames, or
    the bytes joined) the way a client does, checking its framing as it goes: every event is a
    ``data:`` line or a comment, every payload a JSON object, nothing after ``[DONE]``."""
    data = output if isinstance(output, bytes) else b"".join(output)
    assembler = _Assembler()
    message = assembler.message
    for event in data.split(b"\n\n"):
        if not event:
            continue
        if message.done:
            raise AssertionError(f"an event after [DONE]: {event[:80]!r}")
        if event.startswith(b":"):
            continue  # a comment (keep-alive)
        if not event.startswith(b"data: ") or b"\n" in event:
            raise AssertionError(f"not a single 'data: ' line: {event[:80]!r}")
        body = event[len(b"data: ") :]
        if body == b"[DONE]":
            message.done = True
            continue
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise AssertionError(f"a payload that is not a JSON object: {body[:80]!r}")
        if "error" in payload:
            message.error = payload["error"]
            continue
        message.chunks.append(payload)
        if payload.get("usage") is not None:
            message.usage = payload["usage"]
        for choice in payload.get("choices") or []:
            assembler.delta(choice.get("delta") or {}, choice.get("finish_reason"))
    return assembler.result()


def read_with_openai_sdk(output: bytes | Iterable[bytes], *, include_usage: bool = False) -> ClientMessage:
    """Read a converted stream with the official ``openai`` SDK (strict response validation,
    over a mock HTTP transport: nothing leaves the process), as
    ``client.chat.completions.create(stream=True)`` hands it to an application. An in-band error
    raises ``openai.APIError``, as it does in an application. Needs the ``openai`` SDK
    installed (it is not a chunkline dependency)."""
    import httpx2  # the HTTP client the openai SDK is built on
    import openai

    body = output if isinstance(output, bytes) else b"".join(output)

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    client = openai.OpenAI(
        api_key="test",
        base_url="http://chunkline.test/v1",
        max_retries=0,
        _strict_response_validation=True,
        http_client=httpx2.Client(transport=httpx2.MockTransport(answer)),
    )
    extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
    assembler = _Assembler()
    with client.chat.completions.create(
        model="chunkline-test", messages=[{"role": "user", "content": "hi"}], stream=True, **extra
    ) as stream:
        for chunk in stream:
            payload = chunk.model_dump(exclude_unset=True)
            assembler.message.chunks.append(payload)
            if chunk.usage is not None:
                assembler.message.usage = chunk.usage.model_dump(exclude_none=True)
            for choice in payload.get("choices") or []:
                assembler.delta(choice.get("delta") or {}, choice.get("finish_reason"))
    # The SDK stops reading at [DONE] without saying whether it saw one.
    assembler.message.done = body.endswith(b"data: [DONE]\n\n")
    return assembler.result()
