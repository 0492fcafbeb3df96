"""OpenAI tools, legacy functions, tool_choice and response_format -> their Anthropic counterparts."""

from __future__ import annotations

from typing import Any

from .errors import InvalidRequest, json_or_400, shown

__all__ = ["response_format_instruction", "translate_tools"]

_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def translate_tools(body: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, dict[str, Any] | None]:
    """``(tools, tool_choice)`` for the Anthropic request (each ``None`` when absent), from
    ``tools`` or legacy ``functions``, ``tool_choice`` or legacy ``function_call``, and
    ``parallel_tool_calls``."""
    tools = _tools(body)
    choice = _choice(body, tools)
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise InvalidRequest("'parallel_tool_calls' must be true or false", "parallel_tool_calls")
    if parallel is False and tools and (choice is None or choice["type"] != "none"):
        choice = dict(choice or {"type": "auto"})
        choice["disable_parallel_tool_use"] = True
    return tools, choice


def _tools(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    tools, functions = body.get("tools"), body.get("functions")
    if tools is not None and functions is not None:
        raise InvalidRequest("send 'tools' or the older 'functions', not both", "functions")
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequest("'tools' must be an array", "tools")
        out = []
        for i, tool in enumerate(tools):
            where = f"tools[{i}]"
            kind = tool.get("type") if isinstance(tool, dict) else None
            if kind != "function":
                raise InvalidRequest(
                    f"{where}.type is {shown(kind)}; Claude can be given function tools only", f"{where}.type"
                )
            out.append(_function(tool.get("function"), f"{where}.function"))
        return out or None
    if functions is not None:
        if not isinstance(functions, list):
            raise InvalidRequest("'functions' must be an array", "functions")
        return [_function(function, f"functions[{i}]") for i, function in enumerate(functions)] or None
    return None


def _function(function: Any, where: str) -> dict[str, Any]:
    if not isinstance(function, dict):
        raise InvalidRequest(f"{where} must be an object", where)
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{where}.name must be a non-empty string", f"{where}.name")
    tool: dict[str, Any] = {"name": name}
    description = function.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise InvalidRequest(f"{where}.description must be a string", f"{where}.description")
        if description:
            tool["description"] = description
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidRequest(f"{where}.parameters must be a JSON Schema object", f"{where}.parameters")
    # Claude requires an input schema; OpenAI lets a function without parameters take none.
    tool["input_schema"] = parameters or _EMPTY_SCHEMA
    return tool


def _choice(body: dict[str, Any], tools: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    choice, param = body.get("tool_choice"), "tool_choice"
    legacy = body.get("function_call")
    if choice is not None and legacy is not None:
        raise InvalidRequest("send 'tool_choice' or the older 'function_call', not both", "function_call")
    if legacy is not None:
        choice, param = legacy, "function_call"
        if isinstance(legacy, dict):
            choice = {"type": "function", "function": legacy}
    if choice is None:
        return None
    names = {tool["name"] for tool in tools or ()}
    if choice in ("auto", "none"):
        return {"type": choice} if tools else None
    if choice == "required":
        if not tools:
            raise InvalidRequest("tool_choice 'required' needs tools to choose from", param)
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        where = f"{param}.name" if param == "function_call" else f"{param}.function.name"
        if not isinstance(name, str) or name not in names:
            known = ", ".join(sorted(names)) or "none"
            raise InvalidRequest(
                f"{param} names the function {shown(name)}, which is not among the tools ({known})", where
            )
        return {"type": "tool", "name": name}
    kind = choice.get("type") if isinstance(choice, dict) else choice
    raise InvalidRequest(
        f"{param} must be 'auto', 'none', 'required' or a named function, not {shown(kind)}",
        param,
    )


def response_format_instruction(response_format: Any) -> str | None:
    """A system instruction asking for JSON output (``None`` for plain text).

    Best effort: Claude is told the format and the schema; nothing enforces them. An instruction,
    unlike a forced tool call, works with thinking, with the client's own tools, and streams as
    ordinary content.
    """
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return (
            "Respond with a single JSON object and nothing else: no Markdown code fence, and no text "
            "before or after the object."
        )
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise InvalidRequest(
                "response_format.json_schema.schema must be a JSON Schema object",
                "response_format.json_schema",
            )
        name = spec.get("name") if isinstance(spec, dict) else None
        described = f" named {shown(name)}" if isinstance(name, str) and name else ""
        about = spec.get("description") if isinstance(spec, dict) else None
        purpose = f" It is for: {about}" if isinstance(about, str) and about else ""
        schema_text = json_or_400(
            schema,
            "response_format.json_schema.schema nests more than 254 levels deep",
            "response_format.json_schema.schema",
        ).decode()
        return (
            f"Respond with a single JSON value that conforms to the following JSON Schema{described}, and "
            f"nothing else: no Markdown code fence, and no text before or after the value.{purpose}\n"
            f"{schema_text}"
        )
    raise InvalidRequest(
        f"response_format.type must be 'text', 'json_object' or 'json_schema', not {shown(kind)}",
        "response_format.type",
    )
