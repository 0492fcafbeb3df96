"""A drop-in for ccproxy-api's ``ccproxy.adapters.openai.streaming`` (0.1.x), backed by the pipeline."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import orjson

from ..aio import transform
from ..builtins.envelope import error_object
from ..events import ErrorEvent, ToolCallDelta, ToolCallEnd, ToolCallStart
from ..pipeline import DEFAULT_STAGES, Pipeline
from ..stage import Stage, StageSpec

__all__ = ["OpenAISSEFormatter", "OpenAIStreamProcessor"]


def _chunk(
    message_id: str, model: str, created: int, delta: dict[str, Any], finish: str | None, index: int
) -> dict[str, Any]:
    return {
        "id": message_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


class OpenAISSEFormatter:
    """Formats OpenAI chat.completion.chunk server-sent events, with the same static methods and
    chunk shapes as ccproxy-api's formatter. Unlike the original, an error is the in-band error
    OpenAI clients understand (``data: {"error": {...}}``), not ``finish_reason: "error"``."""

    @staticmethod
    def format_data_event(data: dict[str, Any]) -> str:
        """``data: <compact JSON>\\n\\n``."""
        return f"data: {orjson.dumps(data).decode()}\n\n"

    @staticmethod
    def format_first_chunk(message_id: str, model: str, created: int, role: str = "assistant") -> str:
        """The first chunk: the role."""
        return OpenAISSEFormatter.format_data_event(
            _chunk(message_id, model, created, {"role": role}, None, 0)
        )

    @staticmethod
    def format_content_chunk(
        message_id: str, model: str, created: int, content: str, choice_index: int = 0
    ) -> str:
        """A content delta."""
        return OpenAISSEFormatter.format_data_event(
            _chunk(message_id, model, created, {"content": content}, None, choice_index)
        )

    @staticmethod
    def format_tool_call_chunk(
        message_id: str,
        model: str,
        created: int,
        tool_call_id: str,
        function_name: str | None = None,
        function_arguments: str | None = None,
        tool_call_index: int = 0,
        choice_index: int = 0,
    ) -> str:
        """A tool-call delta carrying the call's id, and its name and arguments when given."""
        function: dict[str, Any] = {}
        if function_name is not None:
            function["name"] = function_name
        if function_arguments is not None:
            function["arguments"] = function_arguments
        call = {"index": tool_call_index, "id": tool_call_id, "type": "function", "function": function}
        return OpenAISSEFormatter.format_data_event(
            _chunk(message_id, model, created, {"tool_calls": [call]}, None, choice_index)
        )

    @staticmethod
    def format_final_chunk(
        message_id: str,
        model: str,
        created: int,
        finish_reason: str = "stop",
        choice_index: int = 0,
        usage: dict[str, int] | None = None,
    ) -> str:
        """The finish chunk, with usage when given."""
        data = _chunk(message_id, model, created, {}, finish_reason, choice_index)
        if usage:
            data["usage"] = usage
        return OpenAISSEFormatter.format_data_event(data)

    @staticmethod
    def format_error_chunk(
        message_id: str, model: str, created: int, error_type: str, error_message: str
    ) -> str:
        """An in-band error (R41 in docs/conformance-rules.md): the openai SDK raises ``APIError`` with this
        message. The id, model and created arguments are kept for compatibility; an error event
        carries none of them."""
        return OpenAISSEFormatter.format_data_event(
            error_object(ErrorEvent(error_type, error_message, error_type))
        )

    @staticmethod
    def format_done() -> str:
        """The end of the stream."""
        return "data: [DONE]\n\n"


class _NoToolCalls(Stage):
    """ccproxy-api's ``enable_tool_calls=False``: tool calls never reach the client (and so the
    finish stage reports ``stop``, not ``tool_calls``)."""

    __slots__ = ()

    handles = (ToolCallStart, ToolCallDelta, ToolCallEnd)
    emits = ()

    def feed(self, item: Any) -> None:
        pass


_NO_TOOL_CALLS = StageSpec("no_tool_calls", lambda options: _NoToolCalls())


@functools.lru_cache(maxsize=16)
def _pipeline(chunking: str, include_usage: bool, tool_calls: bool) -> Pipeline:
    # Built once per configuration and shared: building loads plugins, opening is cheap.
    stages: list[str | StageSpec] = [name for name in DEFAULT_STAGES if name != "parse"]
    if not tool_calls:
        stages[stages.index("tool_calls")] = _NO_TOOL_CALLS
    return Pipeline(stages, chunking=chunking, include_usage=include_usage, usage="final")


class OpenAIStreamProcessor:
    """Converts an async stream of Anthropic event dicts into OpenAI SSE strings, with
    ccproxy-api's constructor. The conversion is chunkline's default pipeline: tool calls
    stream with correct indices, finish_reason follows the stop reason, prompt tokens include
    cached ones, word chunking keeps whitespace, thinking goes to ``reasoning_content``, and an
    upstream error ends the stream with an in-band error instead of a normal finish.

    ``message_id``, ``model`` and ``created`` override the stream's own values when given.
    """

    def __init__(
        self,
        message_id: str | None = None,
        model: str | None = None,
        created: int | None = None,
        enable_usage: bool = True,
        enable_tool_calls: bool = True,
        enable_text_chunking: bool = True,
        chunk_size_words: int = 3,
    ) -> None:
        if isinstance(chunk_size_words, bool) or not isinstance(chunk_size_words, int):
            raise TypeError(f"chunk_size_words must be an int, not {chunk_size_words!r}")
        if chunk_size_words < 1:
            raise ValueError(f"chunk_size_words must be at least 1, not {chunk_size_words}")
        self.message_id = message_id
        self.model = model
        self.created = created
        self.enable_usage = enable_usage
        self.enable_tool_calls = enable_tool_calls
        self.enable_text_chunking = enable_text_chunking
        self.chunk_size_words = chunk_size_words
        self.formatter = OpenAISSEFormatter()
        chunking = f"words:{chunk_size_words}" if enable_text_chunking else "passthrough"
        self._pipeline = _pipeline(chunking, enable_usage, enable_tool_calls)
        overrides: dict[str, Any] = {"response_id": message_id, "model": model, "created": created}
        self._overrides: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        self._pipeline.open(**self._overrides)  # checks the overrides now, not mid-stream

    async def process_stream(self, claude_stream: AsyncIterable[Any]) -> AsyncIterator[str]:
        """Yield the OpenAI SSE events for a stream of Anthropic events (dicts, or the anthropic
        SDK's event objects)."""
        async for piece in transform(self._pipeline, _as_dicts(claude_stream), **self._overrides):
            yield piece.decode() if isinstance(piece, bytes) else str(piece)


async def _as_dicts(stream: AsyncIterable[Any]) -> AsyncIterator[Any]:
    async for event in stream:
        dump = getattr(event, "model_dump", None)
        yield dump() if dump is not None and not isinstance(event, dict) else event
