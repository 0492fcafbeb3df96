"""An OpenAI Responses request -> the Anthropic Messages request the server sends upstream."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, final

from ..errors import InvalidRequest
from ..request_common import apply_sampling, effort_budget, user_of
from ..settings import Settings
from .items import translate_input
from .tools import text_format_instruction, translate_choice, translate_tools

__all__ = ["ENCRYPTED_INCLUDE", "ResponsesRequest", "translate_responses_request"]

#: The ``include`` value that asks for reasoning items' ``encrypted_content``.
ENCRYPTED_INCLUDE = "reasoning.encrypted_content"

_HANDLED = frozenset(
    {
        "model", "input", "instructions", "stream", "tools", "tool_choice", "parallel_tool_calls",
        "max_output_tokens", "temperature", "top_p", "reasoning", "text", "include", "user",
        "safety_identifier", "previous_response_id",
    }
)  # fmt: skip
# Accepted and unused: nothing Claude's answer depends on. `store` is accepted, but nothing is
# stored (the server is stateless).
_IGNORED = frozenset(
    {
        "metadata", "store", "prompt_cache_key", "prompt_cache_retention", "client_metadata",
        "service_tier", "stream_options", "truncation",
    }
)  # fmt: skip
_UNSUPPORTED: Mapping[str, tuple[tuple[Any, ...], str]] = {
    "background": ((None, False), "this server answers in the foreground only"),
    "conversation": ((None,), "this server keeps no conversations (it is stateless); send the whole input"),
    "prompt": ((None,), "this server has no stored prompts"),
    "top_logprobs": ((None, 0), "Claude does not return log probabilities"),
    "max_tool_calls": ((None,), "Claude has no limit on tool calls"),
}
_KNOWN = _HANDLED | _IGNORED | set(_UNSUPPORTED)


@final
@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    """The Anthropic request body (always streaming) and what the answer needs: streaming or
    not, ``encrypted_content`` on reasoning items, the namespaced tool names to map back, and the
    hosted tools that were dropped."""

    body: dict[str, Any]
    stream: bool
    encrypted: bool
    namespaces: dict[str, tuple[str, str]] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()


def translate_responses_request(request: Any, settings: Settings) -> ResponsesRequest:
    """Translate one Responses request; anything that cannot be mapped raises `InvalidRequest`
    naming the field (a 400 for the client)."""
    if not isinstance(request, dict):
        raise InvalidRequest("the request body must be a JSON object", None)
    for name in request:
        if name not in _KNOWN:
            raise InvalidRequest(f"Unrecognized request argument supplied: {name}", name)
    for name, (defaults, reason) in _UNSUPPORTED.items():
        value = request.get(name)
        if not any(value is d if isinstance(d, bool) or d is None else value == d for d in defaults):
            raise InvalidRequest(f"'{name}' is not supported: {reason}", name)
    if request.get("previous_response_id") is not None:
        raise InvalidRequest(
            "'previous_response_id' is not supported: this server is stateless and stores no responses; "
            "send the whole conversation in 'input' (with store: false, as Codex does)",
            "previous_response_id",
        )
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' must be a non-empty string", "model")
    stream = request.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be true or false", "stream")

    system, turns = translate_input(request.get("input"))
    instructions = request.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise InvalidRequest("'instructions' must be a string", "instructions")
    if instructions and instructions.strip():
        system.insert(0, {"type": "text", "text": instructions})
    format_instruction = text_format_instruction(request.get("text"))
    if format_instruction is not None:
        system.append({"type": "text", "text": format_instruction})

    body: dict[str, Any] = {"model": settings.model_aliases.get(model, model), "messages": turns}
    if system:
        body["system"] = system
    tools = translate_tools(request.get("tools"), settings.hosted_tools)
    if tools.tools:
        body["tools"] = tools.tools
    choice = translate_choice(request.get("tool_choice"), tools, request.get("parallel_tool_calls"))
    if choice is not None:
        body["tool_choice"] = choice

    max_tokens = _max_tokens(request.get("max_output_tokens"), settings)
    budget = _thinking_budget(request.get("reasoning"), settings, turns)
    if budget is not None:
        if choice is not None and choice["type"] in ("any", "tool"):
            raise InvalidRequest(
                "Claude cannot be made to call a tool while it is thinking; with reasoning.effort, use "
                "tool_choice 'auto' (or leave out reasoning.effort)",
                "tool_choice",
            )
        if max_tokens <= budget:
            max_tokens += budget
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    body["max_tokens"] = max_tokens
    apply_sampling(request, body, settings, thinking_field=None if budget is None else "reasoning.effort")
    user = user_of(request)
    if user:
        body["metadata"] = {"user_id": user}
    body["stream"] = True
    return ResponsesRequest(
        body, bool(stream), _encrypted(request.get("include")), tools.namespaces, tuple(tools.dropped)
    )


def _encrypted(include: Any) -> bool:
    if include is None:
        return False
    if not isinstance(include, list) or not all(isinstance(v, str) for v in include):
        raise InvalidRequest("'include' must be an array of strings", "include")
    return ENCRYPTED_INCLUDE in include


def _max_tokens(value: Any, settings: Settings) -> int:
    if value is None:
        return settings.default_max_tokens
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequest("'max_output_tokens' must be a whole number of at least 1", "max_output_tokens")
    return value


def _thinking_budget(reasoning: Any, settings: Settings, turns: list[dict[str, Any]]) -> int | None:
    if reasoning is None:
        return None
    if not isinstance(reasoning, dict):
        raise InvalidRequest("'reasoning' must be an object", "reasoning")
    return effort_budget(reasoning.get("effort"), "reasoning.effort", settings, turns)
