"""Responses ``input`` items -> Anthropic ``system`` text blocks and alternating user/assistant turns."""

from __future__ import annotations

from typing import Any

import orjson

from ...builtins.responses_items import decode_reasoning
from ..errors import InvalidRequest, shown
from ..messages import _file, _image
from .tools import qualified_name

__all__ = ["translate_input"]

_ROLES = ("user", "assistant", "system", "developer")


def translate_input(items: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(system, turns)`` for ``input``: a string (one user message) or an array of items.

    System and developer messages become system text, in order, wherever they stood (Claude
    takes system text once, at the top). ``function_call`` items become ``tool_use`` blocks and
    ``function_call_output`` items ``tool_result`` blocks; a ``reasoning`` item whose
    ``encrypted_content`` chunkline wrote becomes the very thinking block Claude sent, in place
    (any other reasoning item is left out: Claude verifies only its own signatures). Consecutive
    items of one role are merged into one turn, tool results first in a user turn.
    """
    if isinstance(items, str):
        if not items.strip():
            raise InvalidRequest("'input' is empty or only whitespace", "input")
        return [], [{"role": "user", "content": [{"type": "text", "text": items}]}]
    if not isinstance(items, list) or not items:
        raise InvalidRequest("'input' must be a string or a non-empty array of items", "input")
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where} must be an object", where)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in _ROLES:
                raise InvalidRequest(
                    f"{where}.role must be user, assistant, system or developer, not {shown(role)}",
                    f"{where}.role",
                )
            blocks = _content(item.get("content"), f"{where}.content", role)
            if role in ("system", "developer"):
                system += blocks
            elif role == "user" and not blocks:
                raise InvalidRequest(f"{where}.content is empty; a user message needs content", where)
            else:
                _add(turns, role, blocks)
        elif kind == "function_call":
            _add(turns, "assistant", [_tool_use(item, where)])
        elif kind == "function_call_output":
            _add(turns, "user", [_tool_result(item, where)])
        elif kind == "reasoning":
            block = _reasoning(item, where)
            if block is not None:
                _add(turns, "assistant", [block])
        elif kind == "item_reference":
            raise InvalidRequest(
                f"{where} is an item_reference; this server keeps no items (it is stateless): "
                "send the item itself",
                f"{where}.type",
            )
        else:
            raise InvalidRequest(
                f"{where}.type is {shown(kind)}; this server takes message, function_call, "
                "function_call_output and reasoning items",
                f"{where}.type",
            )
    for turn in turns:
        turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    # A turn made only of reasoning that Claude never followed with anything is not a turn.
    kept: list[dict[str, Any]] = []
    for turn in turns:
        if turn["role"] == "user" or any(b["type"] not in _THINKING for b in turn["content"]):
            _add(kept, turn["role"], turn["content"])
    turns = kept
    if turns and turns[-1]["role"] == "assistant":
        last = turns[-1]["content"][-1]
        if last["type"] == "text":
            last["text"] = last["text"].rstrip()
    if not turns:
        raise InvalidRequest("'input' holds no user or assistant message with content", "input")
    return system, turns


_THINKING = ("thinking", "redacted_thinking")


def _add(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _content(content: Any, where: str, role: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return _text(content)
    if not isinstance(content, list):
        raise InvalidRequest(f"{where} must be a string or an array of content parts", where)
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        here = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            blocks += _text(_string(part, "text", here))
        elif kind == "refusal":
            blocks += _text(_string(part, "refusal", here))
        elif kind == "input_image" and role == "user":
            url = part.get("image_url")
            if url is None and part.get("file_id") is not None:
                raise InvalidRequest(
                    f"{here} names an uploaded file (file_id), which this server cannot read; send image_url",
                    f"{here}.file_id",
                )
            blocks.append(_image(url, f"{here}.image_url"))
        elif kind == "input_file" and role == "user":
            blocks.append(_file(part, here))
        else:
            raise InvalidRequest(
                f"{here}.type {shown(kind)} is not a content part a {role} message takes", f"{here}.type"
            )
    return blocks


def _string(part: dict[str, Any], key: str, where: str) -> str:
    value = part.get(key)
    if not isinstance(value, str):
        raise InvalidRequest(f"{where}.{key} must be a string", f"{where}.{key}")
    return value


def _text(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}] if text.strip() else []


def _tool_use(item: dict[str, Any], where: str) -> dict[str, Any]:
    call_id, name = item.get("call_id"), item.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{where}.call_id must be a non-empty string", f"{where}.call_id")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{where}.name must be a non-empty string", f"{where}.name")
    namespace = item.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise InvalidRequest(f"{where}.namespace must be a string", f"{where}.namespace")
    arguments = item.get("arguments")
    try:
        tool_input = orjson.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"{where}.arguments is not valid JSON: {exc}", f"{where}.arguments") from None
    if not isinstance(tool_input, dict):
        raise InvalidRequest(f"{where}.arguments must be a JSON object", f"{where}.arguments")
    return {"type": "tool_use", "id": call_id, "name": qualified_name(namespace, name), "input": tool_input}


def _tool_result(item: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = item.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{where}.call_id must be a non-empty string", f"{where}.call_id")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    output = item.get("output")
    if isinstance(output, str):
        if output.strip():
            block["content"] = output
    elif isinstance(output, list):
        parts = _content(output, f"{where}.output", "user")
        if parts:
            block["content"] = parts
    elif output is not None:
        raise InvalidRequest(
            f"{where}.output must be a string or an array of content parts", f"{where}.output"
        )
    return block


def _reasoning(item: dict[str, Any], where: str) -> dict[str, Any] | None:
    encrypted = item.get("encrypted_content")
    if encrypted is None:
        return None
    if not isinstance(encrypted, str):
        raise InvalidRequest(f"{where}.encrypted_content must be a string", f"{where}.encrypted_content")
    return decode_reasoning(encrypted)
