"""The chat_decode stage: OpenAI-compatible chat.completion.chunk dicts in, neutral events out."""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import describe
from ..events import (
    ErrorEvent,
    Finish,
    Ping,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningStart,
    ResponseStart,
    TextDelta,
    TextEnd,
    TextStart,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)
from ..hookspecs import hookimpl
from ..stage import DecoderSpec, Option, Options, Stage, StageSpec
from .chat_fields import (
    CHAT_FINISH_REASONS,
    REASONING_KIND,
    TEXT_KIND,
    Malformed,
    choice_index,
    content_parts,
    stop_sequences_option,
    string,
    text_of,
    upstream_error,
    usage_update,
)
from .chat_parse import StreamDone

__all__ = ["ChatDecoder", "register_formats", "register_stages"]


class ChatDecoder(Stage):
    """Turns chat chunks into neutral events: text, reasoning (``reasoning_content``,
    ``reasoning`` or ``reasoning_details``), tool calls by ``index``, usage (on any chunk) and
    one `Finish` once the stream is complete (``[DONE]``, or the input ending after a
    ``finish_reason``). Faults end the stream with an `ErrorEvent`: an error object, more than
    one choice, a tool-call fragment for a call that never started, a stream that ends before
    its ``finish_reason``."""

    __slots__ = (
        "_calls",
        "_finish",
        "_next_part",
        "_open",
        "_open_kind",
        "_order",
        "_refused",
        "_send_text",
        "_signature",
        "_started",
        "_stop_sequences",
        "_stopped",
        "_text_part",
        "_tools_sent",
    )

    handles = (dict, StreamDone, ErrorEvent, Ping)

    def __init__(self, options: Options) -> None:
        self._started = False
        self._stopped = False
        self._next_part = 0
        # The open text or reasoning part (at most one at a time) and its kind.
        self._open: int | None = None
        self._open_kind = TEXT_KIND
        # The open text part while nothing else is pending (the fast path's condition).
        self._text_part: int | None = None
        self._send_text: Any = None
        self._signature: str | None = None
        # Tool-call index -> part id, for calls started and not yet ended; and every part still
        # open in the order it opened (closed in that order at the finish).
        self._calls: dict[int, int] = {}
        self._order: list[int] = []
        self._tools_sent = False
        self._refused = False
        self._finish: Finish | None = None
        sequences = options.get("stop_sequences")
        self._stop_sequences: frozenset[str] | None = frozenset(sequences) if sequences else None

    def connected(self) -> None:
        self._send_text = self.text_route()

    def feed(self, item: Any) -> None:
        # The fast path: mid-text, a chunk with one choice whose delta holds only content (most
        # chunks). Plain subscripts in one try (free when nothing raises); anything unexpected
        # falls through to the full path, which finds and reports it. Sending happens outside
        # the try, so a later stage's exception never passes for a malformed chunk.
        part = self._text_part
        if part is not None:
            text = None
            try:
                (choice,) = item["choices"]
                delta = choice["delta"]
                if (
                    choice["finish_reason"] is None
                    and len(delta) == 1
                    and choice.get("index", 0) == 0
                    and item.get("usage") is None
                ):
                    text = delta["content"]
            except (KeyError, TypeError, ValueError, AttributeError):
                pass
            if text.__class__ is str:
                if text:
                    self._send_text(part, text)
                return
        if self._stopped:
            return
        cls = item.__class__
        if cls is not dict:
            if cls is StreamDone:
                self._done()
            elif cls is Ping:
                self.emit(item)  # an upstream keep-alive, for the encoder
            else:
                self._stop()
                self.emit(item)
            return
        out: list[Any] = []
        try:
            self._chunk(item, out)
        except Malformed as exc:
            out.append(self._fail("invalid_upstream_response", f"invalid upstream stream: {exc}"))
        except (TypeError, AttributeError, KeyError, ValueError, RecursionError) as exc:
            out.append(
                self._fail(
                    "invalid_upstream_response",
                    f"invalid upstream stream: a malformed chunk ({type(exc).__name__}): {describe(item)}",
                )
            )
        for event in out:
            self.emit(event)

    def _stop(self) -> None:
        self._stopped = True
        self._text_part = None

    def _fail(self, type_: str, message: str, code: str | None = None) -> ErrorEvent:
        self._stop()
        return ErrorEvent(type_, message, code)

    def _chunk(self, chunk: dict[str, Any], out: list[Any]) -> None:
        if "error" in chunk or chunk.get("object") == "error":
            out.append(upstream_error(chunk))
            self._stop()
            return
        choices = chunk.get("choices")
        if choices is None:
            choices = []
        if type(choices) is not list:
            raise Malformed(f"'choices' must be an array, not {describe(choices)}")
        usage = chunk.get("usage")
        if not self._started:
            if not choices and usage is None:
                return  # an Azure prompt_filter_results chunk, or another preamble
            self._started = True
            out.append(ResponseStart(text_of(chunk.get("id")), text_of(chunk.get("model"))))
        if len(choices) > 1 or (choices and choice_index(choices[0]) != 0):
            self._stop()
            out.append(
                ErrorEvent(
                    "invalid_upstream_response",
                    "the upstream sent more than one choice (was n > 1 requested?); an Anthropic "
                    "message has exactly one",
                )
            )
            return
        if choices:
            choice = choices[0]
            if type(choice) is not dict:
                raise Malformed(f"a choice must be an object, not {describe(choice)}")
            if self._finish is None:
                delta = choice.get("delta")
                if delta is not None:
                    if type(delta) is not dict:
                        raise Malformed(f"'delta' must be an object, not {describe(delta)}")
                    self._delta(delta, out)
                reason = choice.get("finish_reason")
                if reason is not None:
                    self._finished(choice, reason, out)
        if usage is not None:
            update = usage_update(usage)
            if update is not None:
                out.append(update)

    def _delta(self, delta: dict[str, Any], out: list[Any]) -> None:
        reasoning = delta.get("reasoning_content")
        if reasoning is None:
            reasoning = delta.get("reasoning")
        details = delta.get("reasoning_details")
        if details:
            self._reasoning_details(details, reasoning, out)
        elif reasoning:
            self._reasoning(string(reasoning, "reasoning"), out)
        content = delta.get("content")
        if content:
            if type(content) is list:
                for kind, text in content_parts(content):
                    if kind is TEXT_KIND:
                        self._text(text, out)
                    else:
                        self._reasoning(text, out)
            else:
                self._text(string(content, "content"), out)
        refusal = delta.get("refusal")
        if refusal:
            self._refused = True
            self._text(string(refusal, "refusal"), out)
        calls = delta.get("tool_calls")
        if calls:
            if type(calls) is not list:
                raise Malformed(f"'tool_calls' must be an array, not {describe(calls)}")
            for call in calls:
                self._tool_call(call, out)

    def _open_part(self, kind: int, out: list[Any]) -> int:
        if self._open is not None:
            if self._open_kind == kind:
                return self._open
            self._close_open(out)
        part = self._next_part
        self._next_part += 1
        self._open, self._open_kind = part, kind
        if kind == TEXT_KIND:
            self._text_part = part
        out.append(TextStart(part) if kind == TEXT_KIND else ReasoningStart(part))
        return part

    def _close_open(self, out: list[Any]) -> None:
        part = self._open
        if part is None:
            return
        if self._open_kind == TEXT_KIND:
            out.append(TextEnd(part))
        else:
            out.append(ReasoningEnd(part, self._signature))
            self._signature = None
        self._open = None
        self._text_part = None
        self._open_kind = TEXT_KIND

    def _text(self, text: str, out: list[Any]) -> None:
        out.append(TextDelta(self._open_part(TEXT_KIND, out), text))

    def _reasoning(self, text: str, out: list[Any]) -> None:
        out.append(ReasoningDelta(self._open_part(REASONING_KIND, out), text))

    def _reasoning_details(self, details: Any, reasoning: Any, out: list[Any]) -> None:
        """OpenRouter's ``reasoning_details``: text (often repeated in ``reasoning``), the
        signature that proves it, and encrypted reasoning (a redacted reasoning part)."""
        if type(details) is not list:
            raise Malformed(f"'reasoning_details' must be an array, not {describe(details)}")
        if reasoning:
            self._reasoning(string(reasoning, "reasoning"), out)
        for detail in details:
            if type(detail) is not dict:
                raise Malformed(f"a reasoning detail must be an object, not {describe(detail)}")
            kind = detail.get("type")
            if kind == "reasoning.encrypted":
                data = detail.get("data")
                if isinstance(data, str) and data:
                    self._close_open(out)
                    part = self._next_part
                    self._next_part += 1
                    out.append(ReasoningStart(part, redacted=data))
                    out.append(ReasoningEnd(part))
                continue
            text = detail.get("text") if kind == "reasoning.text" else detail.get("summary")
            if not reasoning and isinstance(text, str) and text:
                self._reasoning(text, out)
            signature = detail.get("signature")
            if isinstance(signature, str) and signature:
                if self._open is None or self._open_kind != REASONING_KIND:
                    self._open_part(REASONING_KIND, out)
                self._signature = signature

    def _tool_call(self, call: Any, out: list[Any]) -> None:
        if type(call) is not dict:
            raise Malformed(f"a tool call must be an object, not {describe(call)}")
        index = call.get("index")
        call_id = call.get("id")
        function = call.get("function") or {}
        if type(function) is not dict:
            raise Malformed(f"a tool call's 'function' must be an object, not {describe(function)}")
        name = function.get("name")
        if index is None:
            # Some servers (Gemini's, older Ollama) leave out the index: a call with an id is a
            # new one, anything else continues the last call.
            index = max(self._calls, default=-1) + (1 if call_id or name else 0)
        if type(index) is not int or index < 0:
            raise Malformed(f"a tool call's 'index' must be a whole number, not {describe(index)}")
        part = self._calls.get(index)
        if part is None:
            if not name:
                raise Malformed(
                    f"a tool-call fragment for index {index}, a call that never started "
                    "(no id and function name came first)"
                )
            self._close_open(out)
            part = self._next_part
            self._next_part += 1
            self._calls[index] = part
            self._order.append(part)
            self._tools_sent = True
            if not call_id or type(call_id) is not str:
                call_id = f"call_{part}"
            out.append(ToolCallStart(part, call_id, string(name, "name")))
        arguments = function.get("arguments")
        if arguments:
            if type(arguments) is dict:  # a whole call as an object (some servers do that)
                arguments = orjson.dumps(arguments).decode()
            out.append(ToolCallDelta(part, string(arguments, "arguments")))

    def _finished(self, choice: dict[str, Any], reason: Any, out: list[Any]) -> None:
        raw = string(reason, "finish_reason")
        neutral = CHAT_FINISH_REASONS.get(raw, "stop")
        if neutral == "stop" and self._tools_sent:
            neutral = "tool_calls"  # some servers say "stop" after tool calls
        elif neutral == "stop" and self._refused:
            neutral = "content_filter"
        sequence = None
        matched = choice.get("stop_reason")  # vLLM names the stop string that matched
        known = self._stop_sequences
        if neutral == "stop" and isinstance(matched, str) and matched and (known is None or matched in known):
            sequence = matched
        self._close_open(out)
        for part in self._order:
            out.append(ToolCallEnd(part))
        self._order.clear()
        self._finish = Finish(neutral, raw, sequence)

    def _done(self) -> None:
        self._end("the upstream sent [DONE]")

    def close(self) -> None:
        if not self._stopped:
            self._end("the upstream stream ended")  # a finished stream whose [DONE] never came ends too

    def _end(self, how: str) -> None:
        """The finish, or where none came (``how`` the stream ended) a truncation fault."""
        if self._finish is not None:
            self._stop()
            self.emit(self._finish)
            return
        what = "before its first chunk" if not self._started else "before a 'finish_reason'"
        self.emit(self._fail("upstream_truncated", f"{how} {what}: the response is incomplete"))


@hookimpl
def register_stages(register: Any) -> None:
    register(
        StageSpec(
            "chat_decode",
            ChatDecoder,
            options=(
                Option(
                    "stop_sequences",
                    None,
                    "The request's stop sequences; a finish the upstream says one of them caused "
                    "(vLLM's 'stop_reason') reports it as the stop sequence.",
                    stop_sequences_option,
                    allowed="a list of non-empty strings, or None",
                    per_conversion=True,
                ),
            ),
            description="OpenAI-compatible chat chunk dicts to neutral events; checks the protocol.",
        )
    )


@hookimpl
def register_formats(register: Any) -> None:
    register(
        DecoderSpec(
            "openai-chat",
            ("chat_parse", "chat_decode"),
            description="An OpenAI-compatible Chat Completions stream (vLLM, Ollama, DeepSeek, OpenRouter).",
        )
    )
