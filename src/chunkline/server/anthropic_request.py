"""An Anthropic Messages request -> the Chat Completions request sent to an OpenAI-compatible upstream."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, final

from .errors import InvalidRequest, json_or_400, shown

__all__ = ["ChatRequest", "map_model", "translate_messages_request"]

# Thinking budgets (tokens) -> the reasoning_effort that asks for about as much.
_EFFORT_BY_BUDGET = ((2048, "low"), (8192, "medium"))
# Fields with no OpenAI meaning that Anthropic clients send: accepted, documented, unused.
ACCEPTED_UNUSED = frozenset(
    {"context_management", "output_config", "service_tier", "container", "mcp_servers", "top_k"}
)


@final
@dataclass(frozen=True, slots=True)
class ChatRequest:
    """The chat request body (always streaming, usage included), the model the client named, and
    what the answer needs to know about the request."""

    body: dict[str, Any]
    stream: bool
    model: str
    stop_sequences: tuple[str, ...]


def map_model(model: str, model_map: Mapping[str, str]) -> str:
    """The upstream model for a client's model name: of the ``pattern=model`` pairs whose pattern
    (``*`` and ``?`` wildcards) matches, the most specific one (an exact name, else the pattern
    with the most characters that are not wildcards); unmatched names pass through unchanged."""
    best, best_score = model, -1
    for pattern, target in model_map.items():
        if fnmatch.fnmatchcase(model, pattern):
            score = 1_000_000 if pattern == model else len(pattern.replace("*", "").replace("?", ""))
            if score > best_score:
                best, best_score = target, score
    return best


def translate_messages_request(
    request: Any, model_map: Mapping[str, str], *, reasoning_effort: bool = True
) -> ChatRequest:
    """Translate one Anthropic Messages request; anything that cannot be read raises
    `InvalidRequest` naming the field. ``reasoning_effort=False`` leaves reasoning out: no
    ``reasoning_effort`` for ``thinking``, no ``reasoning_content`` for earlier turns' thinking
    (for upstream models that refuse those fields)."""
    if not isinstance(request, dict):
        raise InvalidRequest("the request body must be a JSON object", None)
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string", "model")
    max_tokens = request.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequest(
            "'max_tokens' is required and must be a whole number of at least 1", "max_tokens"
        )
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", "messages")
    out: list[dict[str, Any]] = []
    system = request.get("system")
    if system is not None:
        text = _text_of(system, "system")
        if text:
            out.append({"role": "system", "content": text})
    for position, message in enumerate(messages):
        out += _message(message, f"messages[{position}]", reasoning_effort)
    body: dict[str, Any] = {
        "model": map_model(model, model_map),
        "messages": out,
        "max_completion_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    for name in ("temperature", "top_p"):
        value = request.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidRequest(f"{name!r} must be a number", name)
            body[name] = value
    stops = request.get("stop_sequences")
    sequences: tuple[str, ...] = ()
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise InvalidRequest("'stop_sequences' must be an array of strings", "stop_sequences")
        sequences = tuple(s for s in stops if s)
        if sequences:
            body["stop"] = list(sequences)
    tools = request.get("tools")
    if tools:
        body["tools"] = _tools(tools)
    choice = request.get("tool_choice")
    if choice is not None:
        _tool_choice(choice, body)
    effort = _reasoning_effort(request.get("thinking"), request.get("output_config"))
    if effort is not None and reasoning_effort:
        body["reasoning_effort"] = effort
    metadata = request.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str) and metadata["user_id"]:
        body["user"] = metadata["user_id"]
    return ChatRequest(body, request.get("stream") is True, model, sequences)


def _text_of(content: Any, where: str, *, image: str | None = None) -> str:
    """A system prompt or tool result as text: a string, or its text blocks joined with blank
    lines (an image block as ``image``, if given; other blocks are left out). A block that is not
    an object, or a text block whose text is not a string, is refused as the API refuses it."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"{where} must be a string or an array of content blocks", where)
    texts = []
    for position, block in enumerate(content):
        here = f"{where}[{position}]"
        if not isinstance(block, dict):
            raise InvalidRequest(f"{here} must be a content block (an object), not {shown(block)}", here)
        kind = block.get("type")
        if kind == "text":
            texts.append(_string(block, "text", here))
        elif kind == "image" and image is not None:
            texts.append(image)
    return "\n\n".join(texts)


def _string(block: dict[str, Any], key: str, where: str, *, required: bool = False) -> str:
    """``block[key]``, which must be a string (non-empty if ``required``); absent is ``""``
    otherwise. Another value is refused rather than written out as its Python repr."""
    value = block.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        wanted = "a non-empty string" if required else "a string"
        raise InvalidRequest(f"{where}.{key} must be {wanted}, not {shown(value)}", f"{where}.{key}")
    return value


def _image(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidRequest(f"{where}: an image block needs a 'source' object", where)
    if source.get("type") == "base64":
        media_type = _string(source, "media_type", f"{where}.source") or "image/png"
        data = _string(source, "data", f"{where}.source", required=True)
        url = f"data:{media_type};base64,{data}"
    elif source.get("type") == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise InvalidRequest(f"{where}: image sources must be 'base64' or 'url'", where)
    return {"type": "image_url", "image_url": {"url": url}}


def _message(message: Any, where: str, reasoning: bool) -> list[dict[str, Any]]:
    if not isinstance(message, dict):
        raise InvalidRequest(f"{where} must be an object", where)
    role = message.get("role")
    content = message.get("content")
    if role == "system":  # Claude Code sends system messages mid-conversation
        return [{"role": "system", "content": _text_of(content, f"{where}.content")}]
    if role not in ("user", "assistant"):
        raise InvalidRequest(
            f"{where}.role must be 'user' or 'assistant', not {shown(role)}", f"{where}.role"
        )
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content must be a string or an array", f"{where}.content")
    if role == "assistant":
        return [_assistant(content, where, reasoning)]
    return _user(content, where)


def _assistant(blocks: list[Any], where: str, reasoning_back: bool) -> dict[str, Any]:
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for position, block in enumerate(blocks):
        here = f"{where}.content[{position}]"
        if not isinstance(block, dict):
            raise InvalidRequest(f"{here} must be an object", here)
        kind = block.get("type")
        if kind == "text":
            texts.append(_string(block, "text", here))
        elif kind == "thinking":
            reasoning.append(_string(block, "thinking", here))
        elif kind == "tool_use":
            calls.append(_tool_call(block, here))
        # redacted_thinking and server-tool blocks mean nothing to another model: left out.
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if reasoning and reasoning_back:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_call(block: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = _string(block, "id", where, required=True)
    name = _string(block, "name", where, required=True)
    tool_input = block.get("input")
    if tool_input is None:
        tool_input = {}
    if not isinstance(tool_input, dict):
        raise InvalidRequest(f"{where}.input must be an object, not {shown(tool_input)}", f"{where}.input")
    message = f"{where}.input nests more than 254 levels deep"
    arguments = json_or_400(tool_input, message, f"{where}.input").decode()
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _user(blocks: list[Any], where: str) -> list[dict[str, Any]]:
    """User content: tool results become ``tool`` messages (first, as OpenAI wants them right
    after the assistant's calls); text and images become one user message."""
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for position, block in enumerate(blocks):
        here = f"{where}.content[{position}]"
        if not isinstance(block, dict):
            raise InvalidRequest(f"{here} must be an object", here)
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": _string(block, "text", here)})
        elif kind == "image":
            parts.append(_image(block, here))
        elif kind == "tool_result":
            tools.append(_tool_result(block, here))
        elif kind == "document":
            source = block.get("source")
            if isinstance(source, dict) and source.get("type") == "text":
                parts.append({"type": "text", "text": _string(source, "data", f"{here}.source")})
    out = list(tools)
    if parts:
        if all(p["type"] == "text" for p in parts):
            out.append({"role": "user", "content": "\n\n".join(p["text"] for p in parts)})
        else:
            out.append({"role": "user", "content": parts})
    return out


def _tool_result(block: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = _string(block, "tool_use_id", where, required=True)
    # Chat tool messages hold text only.
    text = _text_of(block.get("content", ""), f"{where}.content", image="[image]")
    if block.get("is_error"):
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array", "tools")
    out = []
    for position, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise InvalidRequest(f"tools[{position}] must be an object with a 'name'", f"tools[{position}]")
        if "input_schema" not in tool:
            continue  # a server tool (web search, code execution...): nothing an upstream runs
        schema = tool["input_schema"]
        if schema is not None and not isinstance(schema, dict):
            where = f"tools[{position}].input_schema"
            raise InvalidRequest(f"{where} must be a JSON Schema object, not {shown(schema)}", where)
        function: dict[str, Any] = {"name": tool["name"], "parameters": schema or {}}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any, body: dict[str, Any]) -> None:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        body["tool_choice"] = "auto"
    elif kind == "any":
        body["tool_choice"] = "required"
    elif kind == "none":
        body["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        body["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise InvalidRequest("'tool_choice' must be auto, any, tool (with a name) or none", "tool_choice")
    if isinstance(choice, dict) and choice.get("disable_parallel_tool_use") is True and "tools" in body:
        body["parallel_tool_calls"] = False


def _reasoning_effort(thinking: Any, output_config: Any) -> str | None:
    """``thinking`` as a reasoning effort: ``enabled`` by its budget, ``adaptive`` by
    ``output_config.effort`` (medium if none); ``disabled`` or absent asks for none."""
    if not isinstance(thinking, dict):
        return None
    kind = thinking.get("type")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int):
            for ceiling, effort in _EFFORT_BY_BUDGET:
                if budget <= ceiling:
                    return effort
        return "high"
    if kind == "adaptive":
        wanted = output_config.get("effort") if isinstance(output_config, dict) else None
        if wanted in ("low", "medium", "high"):
            return str(wanted)
        return "high" if wanted == "max" else "medium"
    return None
