"""OpenAI chat messages -> Anthropic ``system`` text blocks and alternating user/assistant turns."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson

from .errors import InvalidRequest, shown

__all__ = ["translate_messages"]

_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_DATA_URL = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+)(?P<params>(;[^;,]*)*),(?P<data>.*)", re.DOTALL)


def translate_messages(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Returns ``(system, turns)``: the text blocks of every system and developer message (Claude
    takes them once, at the top, wherever they stood), and the other messages as Anthropic turns.

    Tool and function results become ``tool_result`` blocks in a user turn; consecutive messages
    that land on the same role are merged into one turn (Claude requires alternating roles), tool
    results first. Text that is empty or only whitespace is dropped (Claude refuses such a block); an
    assistant message with nothing left is left out, a user message with nothing in it is an error,
    and an empty tool result is sent without content. A final assistant turn (a prefill) loses its
    trailing whitespace, which Claude rejects there.
    """
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array of messages", "messages")
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    legacy_calls: list[tuple[str, str]] = []  # (name, id) of function_calls awaiting a result
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{where} must be an object", where)
        role = message.get("role")
        if role in ("system", "developer"):
            system += _text_blocks(message.get("content"), f"{where}.content")
        elif role == "user":
            blocks = _user_content(message.get("content"), f"{where}.content")
            if not blocks:
                raise InvalidRequest(
                    f"{where}.content is empty or only whitespace; a user message needs content", where
                )
            _add(turns, "user", blocks)
        elif role == "assistant":
            _add(turns, "assistant", _assistant(message, where, legacy_calls))
        elif role == "tool":
            _add(turns, "user", [_tool_result(message, where)])
        elif role == "function":
            _add(turns, "user", [_function_result(message, where, legacy_calls)])
        else:
            raise InvalidRequest(
                f"{where}.role must be system, developer, user, assistant, tool or function, "
                f"not {shown(role)}",
                f"{where}.role",
            )
    for turn in turns:
        # Claude wants a user turn's tool results before anything else in it.
        turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    if turns and turns[-1]["role"] == "assistant":
        # A prefill: Claude rejects trailing whitespace there. Blank blocks are gone, so the text stays.
        last = turns[-1]["content"][-1]
        if last["type"] == "text":
            last["text"] = last["text"].rstrip()
    if not turns:
        raise InvalidRequest("'messages' holds no user or assistant message with content", "messages")
    return system, turns


def _add(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _text(text: str) -> list[dict[str, Any]]:
    """A text block, or none for text that is empty or only whitespace: Claude refuses those ("text
    content blocks must contain non-whitespace text")."""
    return [{"type": "text", "text": text}] if text.strip() else []


def _text_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    """A string or an array of text parts (system, developer and tool messages)."""
    if content is None:
        return []
    if isinstance(content, str):
        return _text(content)
    if not isinstance(content, list):
        raise InvalidRequest(f"{where} must be a string or an array of text parts", where)
    blocks = []
    for j, part in enumerate(content):
        block = _text_part(part, f"{where}[{j}]", allow=("text",))
        if block is not None:
            blocks.append(block)
    return blocks


def _text_part(part: Any, where: str, *, allow: tuple[str, ...]) -> dict[str, Any] | None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind not in allow:
        allowed = " or ".join(repr(a) for a in allow)
        raise InvalidRequest(
            f"{where} must be a content part of type {allowed}, not {shown(kind)}", f"{where}.type"
        )
    key = "text" if kind == "text" else "refusal"
    text = part.get(key)
    if not isinstance(text, str):
        raise InvalidRequest(f"{where}.{key} must be a string", f"{where}.{key}")
    return _cached({"type": "text", "text": text}, part, where) if text.strip() else None


def _cached(block: dict[str, Any], part: dict[str, Any], where: str) -> dict[str, Any]:
    """An OpenAI ``prompt_cache_breakpoint`` becomes Anthropic's ``cache_control`` (Claude caches
    only where asked). Its ttl is a minimum lifetime: 30m and up get Claude's longest, 1h."""
    breakpoint = part.get("prompt_cache_breakpoint")
    if breakpoint is None:
        return block
    if not isinstance(breakpoint, dict) or breakpoint.get("mode") != "explicit":
        raise InvalidRequest(
            f"{where}.prompt_cache_breakpoint must be {{'mode': 'explicit'}}",
            f"{where}.prompt_cache_breakpoint",
        )
    control: dict[str, Any] = {"type": "ephemeral"}
    if breakpoint.get("ttl") is not None:
        control["ttl"] = "1h"
    block["cache_control"] = control
    return block


def _user_content(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return _text(content)
    if not isinstance(content, list):
        raise InvalidRequest(f"{where} must be a string or an array of content parts", where)
    blocks = []
    for j, part in enumerate(content):
        here = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            block = _text_part(part, here, allow=("text",))
            if block is not None:
                blocks.append(block)
        elif kind == "image_url":
            blocks.append(_cached(_image(part.get("image_url"), f"{here}.image_url"), part, here))
        elif kind == "file":
            blocks.append(_cached(_file(part.get("file"), f"{here}.file"), part, here))
        elif kind == "input_audio":
            raise InvalidRequest(f"{here}: Claude does not take audio input", f"{here}.type")
        else:
            raise InvalidRequest(
                f"{here} must be a content part of type 'text', 'image_url' or 'file', not {shown(kind)}",
                f"{here}.type",
            )
    return blocks


def _image(image: Any, where: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise InvalidRequest(f"{where}.url must be an http(s) URL or a data: URL", f"{where}.url")
    if url.startswith("data:"):
        media_type, data = _data_url(url, f"{where}.url")
        if media_type not in _IMAGE_TYPES:
            allowed = ", ".join(sorted(_IMAGE_TYPES))
            raise InvalidRequest(
                f"{where}.url is a {media_type} data URL; Claude takes images as {allowed}", f"{where}.url"
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest(f"{where}.url must be an http(s) URL or a data: URL", f"{where}.url")


def _file(file: Any, where: str) -> dict[str, Any]:
    """A file part with inline data: a PDF or plain text becomes a ``document`` block."""
    if not isinstance(file, dict):
        raise InvalidRequest(f"{where} must be an object", where)
    data_url = file.get("file_data")
    if not isinstance(data_url, str):
        what = "a file_id of an uploaded file, which" if file.get("file_id") is not None else "no file_data,"
        raise InvalidRequest(
            f"{where} has {what} this server cannot read; send the file inline as file_data "
            "(a data: URL with base64 content)",
            f"{where}.file_data",
        )
    media_type, data = _data_url(data_url, f"{where}.file_data")
    if media_type == "application/pdf":
        source = {"type": "base64", "media_type": media_type, "data": data}
    elif media_type == "text/plain":
        try:
            text = base64.b64decode(data).decode()
        except UnicodeDecodeError:
            raise InvalidRequest(
                f"{where}.file_data is text/plain but not UTF-8", f"{where}.file_data"
            ) from None
        source = {"type": "text", "media_type": media_type, "data": text}
    else:
        raise InvalidRequest(
            f"{where}.file_data is {media_type}; Claude takes documents as application/pdf or text/plain",
            f"{where}.file_data",
        )
    block: dict[str, Any] = {"type": "document", "source": source}
    if isinstance(file.get("filename"), str) and file["filename"]:
        block["title"] = file["filename"]
    return block


def _data_url(url: str, where: str) -> tuple[str, str]:
    """(media type, base64 data) of a ``data:TYPE;base64,DATA`` URL."""
    match = _DATA_URL.fullmatch(url)
    if match is None or ";base64" not in match["params"].lower():
        raise InvalidRequest(f"{where} must be a base64 data URL (data:TYPE;base64,DATA)", where)
    data = match["data"]
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{where} holds data that is not valid base64", where) from None
    return match["type"].lower(), data


def _assistant(
    message: dict[str, Any], where: str, legacy_calls: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    if message.get("audio") is not None:
        raise InvalidRequest(f"{where}.audio: Claude cannot be sent earlier audio answers", f"{where}.audio")
    content = message.get("content")
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str):
        blocks += _text(content)
    elif isinstance(content, list):
        for j, part in enumerate(content):
            block = _text_part(part, f"{where}.content[{j}]", allow=("text", "refusal"))
            if block is not None:
                blocks.append(block)
    elif content is not None:
        raise InvalidRequest(
            f"{where}.content must be a string, an array of parts or null", f"{where}.content"
        )
    refusal = message.get("refusal")
    if isinstance(refusal, str) and not blocks:
        blocks += _text(refusal)
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        if not isinstance(tool_calls, list):
            raise InvalidRequest(f"{where}.tool_calls must be an array", f"{where}.tool_calls")
        for j, call in enumerate(tool_calls):
            blocks.append(_tool_use(call, f"{where}.tool_calls[{j}]"))
    function_call = message.get("function_call")
    if function_call is not None:
        call_id = f"call_legacy_{len(legacy_calls)}"
        block = _function_use(function_call, call_id, f"{where}.function_call")
        legacy_calls.append((block["name"], call_id))
        blocks.append(block)
    return blocks


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    if not isinstance(call, dict):
        raise InvalidRequest(f"{where} must be an object", where)
    if call.get("type", "function") != "function":
        raise InvalidRequest(
            f"{where}.type is {shown(call.get('type'))}; only function tool calls can be sent to Claude",
            f"{where}.type",
        )
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{where}.id must be a non-empty string", f"{where}.id")
    return _function_use(call.get("function"), call_id, f"{where}.function")


def _function_use(function: Any, call_id: str, where: str) -> dict[str, Any]:
    if not isinstance(function, dict):
        raise InvalidRequest(f"{where} must be an object with a name and arguments", where)
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{where}.name must be a non-empty string", f"{where}.name")
    arguments = function.get("arguments")
    if arguments is None or arguments == "":
        tool_input: Any = {}
    elif isinstance(arguments, str):
        try:
            tool_input = orjson.loads(arguments)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(
                f"{where}.arguments is not valid JSON: {exc}", f"{where}.arguments"
            ) from None
    else:
        raise InvalidRequest(f"{where}.arguments must be a string of JSON", f"{where}.arguments")
    if not isinstance(tool_input, dict):
        raise InvalidRequest(f"{where}.arguments must be a JSON object", f"{where}.arguments")
    return {"type": "tool_use", "id": call_id, "name": name, "input": tool_input}


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{where}.tool_call_id must be a non-empty string", f"{where}.tool_call_id")
    return _result_block(call_id, message.get("content"), f"{where}.content")


def _function_result(
    message: dict[str, Any], where: str, legacy_calls: list[tuple[str, str]]
) -> dict[str, Any]:
    name = message.get("name")
    for k in range(len(legacy_calls) - 1, -1, -1):
        if legacy_calls[k][0] == name:
            _, call_id = legacy_calls.pop(k)
            return _result_block(call_id, message.get("content"), f"{where}.content")
    raise InvalidRequest(
        f"{where} is a function result for {shown(name)}, but no earlier assistant function_call of that "
        "name is waiting for one",
        f"{where}.name",
    )


def _result_block(call_id: str, content: Any, where: str) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    if isinstance(content, str):
        if content.strip():
            block["content"] = content
    else:
        parts = _text_blocks(content, where)
        if parts:
            block["content"] = parts
    return block
