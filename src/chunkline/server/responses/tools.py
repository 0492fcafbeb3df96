"""Responses tools, tool_choice and text.format -> their Anthropic counterparts (namespaces flattened)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidRequest, shown
from ..tools import response_format_instruction

__all__ = [
    "HOSTED_TOOLS",
    "ToolSet",
    "qualified_name",
    "text_format_instruction",
    "translate_choice",
    "translate_tools",
]

#: Tools OpenAI runs on its own servers; Claude cannot run them here. Dropped (with a warning) or
#: refused, by the server's ``hosted_tools`` setting.
HOSTED_TOOLS = frozenset(
    {
        "web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11",
        "file_search", "code_interpreter", "computer_use", "computer_use_preview", "image_generation",
    }
)  # fmt: skip
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
#: Joins a namespace and a tool name into the one name Claude sees (Claude's names allow
#: letters, digits, ``_`` and ``-``: no dot).
SEPARATOR = "__"


def qualified_name(namespace: str | None, name: str) -> str:
    """The flat name Claude is given for tool ``name`` of ``namespace``."""
    return f"{namespace}{SEPARATOR}{name}" if namespace else name


@dataclass
class ToolSet:
    """The translated tools: the Anthropic list, the flat names of namespaced tools (mapped back
    to ``(namespace, name)`` on the way out), and the hosted tools left out."""

    tools: list[dict[str, Any]] = field(default_factory=list)
    namespaces: dict[str, tuple[str, str]] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)


def translate_tools(tools: Any, hosted: str) -> ToolSet:
    """The request's ``tools``; ``hosted`` is ``drop`` or ``reject`` for OpenAI's hosted tools."""
    out = ToolSet()
    if tools is None:
        return out
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array", "tools")
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            _add(out, _function(tool, where), None, where)
        elif kind == "namespace":
            namespace = tool.get("name")
            if not isinstance(namespace, str) or not namespace:
                raise InvalidRequest(f"{where}.name must be a non-empty string", f"{where}.name")
            inner = tool.get("tools")
            if not isinstance(inner, list):
                raise InvalidRequest(f"{where}.tools must be an array of function tools", f"{where}.tools")
            for j, member in enumerate(inner):
                here = f"{where}.tools[{j}]"
                if not isinstance(member, dict) or member.get("type", "function") != "function":
                    raise InvalidRequest(f"{here} must be a function tool", f"{here}.type")
                _add(out, _function(member, here), namespace, here)
        elif isinstance(kind, str) and kind in HOSTED_TOOLS:
            if hosted == "reject":
                raise InvalidRequest(
                    f"{where} is OpenAI's hosted {kind!r} tool, which Claude cannot run behind this server "
                    "(CHUNKLINE_HOSTED_TOOLS=reject)",
                    f"{where}.type",
                )
            out.dropped.append(kind)
        else:
            raise InvalidRequest(
                f"{where}.type is {shown(kind)}; Claude can be given function and namespace tools only",
                f"{where}.type",
            )
    return out


def _add(out: ToolSet, tool: dict[str, Any], namespace: str | None, where: str) -> None:
    name = tool["name"]
    flat = qualified_name(namespace, name)
    if any(existing["name"] == flat for existing in out.tools):
        raise InvalidRequest(f"{where} is a second tool named {flat!r}", f"{where}.name")
    if namespace is not None:
        out.namespaces[flat] = (namespace, name)
    out.tools.append({**tool, "name": flat})


def _function(tool: dict[str, Any], where: str) -> dict[str, Any]:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{where}.name must be a non-empty string", f"{where}.name")
    out: dict[str, Any] = {"name": name}
    description = tool.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequest(f"{where}.description must be a string", f"{where}.description")
    if description:
        out["description"] = description
    parameters = tool.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidRequest(f"{where}.parameters must be a JSON Schema object", f"{where}.parameters")
    out["input_schema"] = parameters or _EMPTY_SCHEMA
    return out


def translate_choice(choice: Any, tools: ToolSet, parallel: Any) -> dict[str, Any] | None:
    """``tool_choice`` and ``parallel_tool_calls`` as Anthropic's ``tool_choice``."""
    if parallel is not None and not isinstance(parallel, bool):
        raise InvalidRequest("'parallel_tool_calls' must be true or false", "parallel_tool_calls")
    result: dict[str, Any] | None
    if choice is None or choice == "auto":
        result = {"type": "auto"} if tools.tools and choice is not None else None
    elif choice == "none":
        result = {"type": "none"} if tools.tools else None
    elif choice == "required":
        if not tools.tools:
            raise InvalidRequest("tool_choice 'required' needs tools to choose from", "tool_choice")
        result = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        name, namespace = choice.get("name"), choice.get("namespace")
        if namespace is not None and not isinstance(namespace, str):
            raise InvalidRequest(
                f"tool_choice.namespace must be a string, not {shown(namespace)}", "tool_choice.namespace"
            )
        flat = qualified_name(namespace, name) if isinstance(name, str) else None
        if flat is None or all(tool["name"] != flat for tool in tools.tools):
            known = ", ".join(sorted(tool["name"] for tool in tools.tools)) or "none"
            raise InvalidRequest(
                f"tool_choice names the function {shown(name)}, which is not among the tools ({known})",
                "tool_choice.name",
            )
        result = {"type": "tool", "name": flat}
    else:
        kind = choice.get("type") if isinstance(choice, dict) else choice
        raise InvalidRequest(
            f"tool_choice must be 'auto', 'none', 'required' or a function, not {shown(kind)}", "tool_choice"
        )
    if parallel is False and tools.tools and (result is None or result["type"] != "none"):
        result = {**(result or {"type": "auto"}), "disable_parallel_tool_use": True}
    return result


def text_format_instruction(text: Any) -> str | None:
    """``text.format`` (``text``, ``json_object`` or ``json_schema``) as a system instruction, as
    the chat route does for ``response_format``; ``text.verbosity`` is accepted and unused."""
    if text is None:
        return None
    if not isinstance(text, dict):
        raise InvalidRequest("'text' must be an object", "text")
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise InvalidRequest("text.format must be an object", "text.format")
    if fmt.get("type") == "json_schema":
        spec = {key: fmt[key] for key in ("name", "schema", "description") if key in fmt}
        fmt = {"type": "json_schema", "json_schema": spec}
    try:
        return response_format_instruction(fmt)
    except InvalidRequest as exc:
        message = exc.message.replace("response_format.json_schema", "text.format").replace(
            "response_format", "text.format"
        )
        raise InvalidRequest(message, "text.format") from None
