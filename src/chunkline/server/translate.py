"""An OpenAI Chat Completions request -> the Anthropic Messages request the server sends upstream."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, final

from .errors import InvalidRequest, shown
from .messages import translate_messages
from .request_common import apply_sampling, effort_budget, user_of
from .settings import Settings
from .tools import response_format_instruction, translate_tools

__all__ = ["Translated", "translate_request"]

# Every field the Chat Completions API defines. Anything else is refused, as OpenAI's API does
# ("Unrecognized request argument supplied"), so a typo or a newer feature never passes silently.
_HANDLED = frozenset(
    {
        "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
        "temperature", "top_p", "stop", "tools", "tool_choice", "functions", "function_call",
        "parallel_tool_calls", "reasoning_effort", "response_format", "user", "safety_identifier",
    }
)  # fmt: skip
# Fields with no effect on what the model writes, or nothing Claude can do with: accepted, unused.
_IGNORED = frozenset(
    {
        "metadata", "store", "service_tier", "seed", "prompt_cache_key", "prompt_cache_options",
        "prompt_cache_retention", "prediction",
    }
)  # fmt: skip
# Fields that change the answer in ways Claude cannot: refused when set to anything but their default.
_UNSUPPORTED: Mapping[str, tuple[tuple[Any, ...], str]] = {
    "n": ((None, 1), "Claude returns one choice per request"),
    "logprobs": ((None, False), "Claude does not return log probabilities"),
    "top_logprobs": ((None,), "Claude does not return log probabilities"),
    "logit_bias": ((None, {}), "Claude has no logit bias"),
    "frequency_penalty": ((None, 0), "Claude has no frequency penalty"),
    "presence_penalty": ((None, 0), "Claude has no presence penalty"),
    "audio": ((None,), "Claude does not produce audio"),
    "modalities": ((None, ["text"]), "Claude answers in text only"),
    "web_search_options": ((None,), "this server does not offer web search"),
    "moderation": ((None,), "this server does not run moderation"),
    "verbosity": ((None, "medium"), "Claude has no verbosity setting"),
}
_KNOWN = _HANDLED | _IGNORED | set(_UNSUPPORTED)


@final
@dataclass(frozen=True, slots=True)
class Translated:
    """The Anthropic request body (always streaming), and how the client wants the answer."""

    body: dict[str, Any]
    stream: bool
    include_usage: bool


def translate_request(request: Any, settings: Settings) -> Translated:
    """Translate one OpenAI chat request; anything that cannot be mapped raises
    `InvalidRequest` naming the field (a 400 for the client)."""
    if not isinstance(request, dict):
        raise InvalidRequest("the request body must be a JSON object", None)
    for name in request:
        if name not in _KNOWN:
            raise InvalidRequest(f"Unrecognized request argument supplied: {name}", name)
    for name, (defaults, reason) in _UNSUPPORTED.items():
        if not _is_default(request.get(name), defaults):
            raise InvalidRequest(f"'{name}' is not supported: {reason}", name)

    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' must be a non-empty string", "model")
    stream = request.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be true or false", "stream")

    system, turns = translate_messages(request.get("messages"))
    body: dict[str, Any] = {"model": settings.model_aliases.get(model, model)}
    max_tokens = _max_tokens(request, settings)
    body["messages"] = turns

    instruction = response_format_instruction(request.get("response_format"))
    if instruction is not None:
        system.append({"type": "text", "text": instruction})
    if system:
        body["system"] = system

    tools, tool_choice = translate_tools(request)
    if tools is not None:
        body["tools"] = tools
    if tool_choice is not None:
        body["tool_choice"] = tool_choice

    budget = effort_budget(request.get("reasoning_effort"), "reasoning_effort", settings, turns)
    if budget is not None:
        if tool_choice is not None and tool_choice["type"] in ("any", "tool"):
            param = "function_call" if request.get("function_call") is not None else "tool_choice"
            raise InvalidRequest(
                "Claude cannot be made to call a tool while it is thinking; with reasoning_effort "
                f"{shown(request['reasoning_effort'])}, use tool_choice 'auto' "
                "(or leave out reasoning_effort)",
                param,
            )
        # Claude's max_tokens bounds thinking and answer together, as OpenAI's bounds reasoning and
        # answer. Claude refuses one not above the budget: that one gets the budget added, so the
        # answer keeps what was asked for.
        if max_tokens <= budget:
            max_tokens += budget
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    body["max_tokens"] = max_tokens

    apply_sampling(request, body, settings, thinking_field=None if budget is None else "reasoning_effort")
    stop = _stop(request.get("stop"))
    if stop:
        body["stop_sequences"] = stop
    user = user_of(request)
    if user:
        body["metadata"] = {"user_id": user}
    body["stream"] = True
    return Translated(body, bool(stream), _include_usage(request.get("stream_options")))


def _is_default(value: Any, defaults: tuple[Any, ...]) -> bool:
    for default in defaults:
        if isinstance(value, bool) or isinstance(default, bool):
            if value is default:  # False is a default; 0 is not False here, nor 1 True
                return True
        elif value == default:
            return True
    return False


def _max_tokens(request: dict[str, Any], settings: Settings) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = request.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"'{name}' must be a whole number of at least 1", name)
        return value
    return settings.default_max_tokens


def _stop(stop: Any) -> list[str]:
    if stop is None:
        return []
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
        raise InvalidRequest("'stop' must be a string or an array of strings", "stop")
    # An empty stop sequence stops nothing (and Claude refuses it).
    return [s for s in sequences if s]


def _include_usage(options: Any) -> bool:
    if options is None:
        return False
    if not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object", "stream_options")
    include = options.get("include_usage")
    if include is not None and not isinstance(include, bool):
        raise InvalidRequest(
            "'stream_options.include_usage' must be true or false", "stream_options.include_usage"
        )
    return bool(include)
