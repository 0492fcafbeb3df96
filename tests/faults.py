"""Helpers for the fault tests: building raw SSE input, and what the openai SDK makes of a failed stream."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import openai
import orjson
import pytest

import harness
from chat_route import chat_chunk, chat_sse

DONE = b"data: [DONE]\n\n"
PING_OUT = b": ping\n\n"


def sse(name: bytes | str, data: bytes | str | dict[str, Any]) -> bytes:
    """One SSE event, framed the way the API frames it; ``data`` as raw bytes, text or a dict."""
    if isinstance(name, str):
        name = name.encode()
    if isinstance(data, dict):
        data = json.dumps(data, ensure_ascii=False)
    if isinstance(data, str):
        data = data.encode()
    return b"event: " + name + b"\ndata: " + data + b"\n\n"


def events(*items: dict[str, Any]) -> bytes:
    """Each event dict framed under its own ``type`` as the name."""
    return b"".join(sse(item["type"], item) for item in items)


def error_body(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    """The ``error`` object of an in-band error event (R41)."""
    return {"message": message, "type": type_, "param": None, "code": code or type_}


def orjson_error(payload: bytes) -> str:
    """orjson's own message for a payload it rejects (the parse stage quotes it)."""
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return str(exc)
    raise AssertionError(f"orjson accepts {payload[:80]!r}")


def split_output(out: list[bytes]) -> tuple[list[bytes], dict[str, Any]]:
    """The outputs before the terminal error, and the error object. Asserts the stream ends with
    exactly one error event then ``[DONE]``, and that nothing before it is a finish or an error."""
    assert out and out[-1] == DONE, out[-2:]
    assert out.count(DONE) == 1
    assert len(out) >= 2 and out[-2].startswith(b'data: {"error":'), out[-2:]
    error = json.loads(out[-2][6:])
    assert set(error) == {"error"}, error
    body = out[:-2]
    for item in body:
        assert not item.startswith(b'data: {"error":'), item
        if item.startswith(b"data: "):
            for choice in json.loads(item[6:])["choices"]:
                assert choice["finish_reason"] is None, f"a finish before the error: {item[:200]!r}"
    return body, error["error"]


@dataclass
class ClientView:
    """What a client reading ``create(stream=True)`` chunk by chunk saw before the stream ended."""

    content: str = ""
    reasoning: str = ""
    arguments: dict[int, str] = field(default_factory=dict)
    finish_reasons: list[str] = field(default_factory=list)
    error: openai.APIError | None = None


def client_view(output: bytes, *, include_usage: bool = False) -> ClientView:
    """Read ``output`` with the strict openai client, keeping what arrived before any APIError."""
    view = ClientView()
    try:
        for chunk in harness.iter_openai_chunks(output, include_usage=include_usage):
            for choice in chunk.choices:
                delta = choice.delta
                view.content += delta.content or ""
                view.reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
                for call in delta.tool_calls or []:
                    arguments = call.function.arguments if call.function else ""
                    view.arguments[call.index] = view.arguments.get(call.index, "") + (arguments or "")
                if choice.finish_reason is not None:
                    view.finish_reasons.append(choice.finish_reason)
    except openai.APIError as exc:
        view.error = exc
    return view


def assert_client_error(
    output: bytes, error: dict[str, Any], *, content: str = "", arguments: dict[int, str] | None = None
) -> ClientView:
    """The openai SDK raises ``openai.APIError`` with the error's message and body, after exactly the
    given content, never reporting a finish; its ``.stream()`` helper and ChatCompletionStreamState
    raise the same."""
    view = client_view(output)
    assert view.error is not None, "the client did not see an error"
    assert type(view.error) is openai.APIError
    assert view.error.message == error["message"]
    assert view.error.body == error
    assert view.finish_reasons == [], "the client saw a finish for a failed stream"
    assert view.content == content
    if arguments is not None:
        assert view.arguments == arguments
    for consumer in ("state", "helper"):
        with pytest.raises(openai.APIError) as caught:
            harness.CONSUMERS[consumer](output)
        assert type(caught.value) is openai.APIError and caught.value.message == error["message"], consumer
    return view


# -- faults of an openai-chat source, for every route from it ----------------------------------------

_TEXT = chat_chunk({"role": "assistant", "content": "partial"})
_LINE = b"data: " + json.dumps(_TEXT).encode() + b"\n\n"
_N2 = {**_TEXT, "choices": [*_TEXT["choices"], {**_TEXT["choices"][0], "index": 1}]}
_ORPHAN = chat_chunk({"tool_calls": [{"index": 3, "function": {"arguments": "{}"}}]})

#: Faulty chat streams by name: (input, words the error message holds). Each must end in the
#: target's error form, never a finish.
CHAT_FAULTS: dict[str, tuple[bytes, str]] = {
    "error-object": (
        chat_sse([_TEXT, {"error": {"message": "boom", "type": "server_error"}}], False),
        "boom",
    ),
    "vllm-error": (
        chat_sse([_TEXT, {"object": "error", "message": "vllm says no", "code": 400}], False),
        "vllm says no",
    ),
    "broken-json": (_LINE + b"data: {not json\n\n", "malformed JSON"),
    "cut": (chat_sse([_TEXT], False), "before a 'finish_reason'"),
    "done-early": (chat_sse([_TEXT]), "[DONE] before a 'finish_reason'"),
    "empty": (b"", "before its first chunk"),
    "n2": (chat_sse([_N2]), "more than one choice"),
    "orphan-call": (chat_sse([_TEXT, _ORPHAN]), "never started"),
    "late": (chat_sse([_TEXT, chat_chunk({}, "stop"), {"error": {"message": "late fault"}}]), "late fault"),
}


def assert_chat_error(out: list[bytes], words: str) -> dict[str, Any]:
    """An openai-chat output that ends in its error form (`split_output`), whose message holds
    ``words``, on which every way the openai SDK reads a stream raises ``openai.APIError``."""
    _, error = split_output(out)
    assert words in error["message"], error
    for consumer, read in harness.CONSUMERS.items():
        with pytest.raises(openai.APIError) as caught:
            read(b"".join(out))
        assert type(caught.value) is openai.APIError and caught.value.message == error["message"], consumer
    return error
