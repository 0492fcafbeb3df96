"""The checks the Chat Completions and Responses translators share: effort, sampling and user."""

from __future__ import annotations

from typing import Any

from .errors import InvalidRequest, shown
from .settings import Settings

__all__ = ["apply_sampling", "effort_budget", "user_of"]

_THINKING = ("thinking", "redacted_thinking")


def effort_budget(effort: Any, field: str, settings: Settings, turns: list[dict[str, Any]]) -> int | None:
    """The thinking budget for a reasoning effort named in ``field``, or None for no thinking."""
    if effort is None or effort == "none":
        return None
    budget = settings.reasoning_budgets.get(effort) if isinstance(effort, str) else None
    if budget is None:
        allowed = ", ".join(["none", *settings.reasoning_budgets])
        raise InvalidRequest(f"'{field}' must be one of {allowed}, not {shown(effort)}", field)
    # Continuing after a tool call while thinking needs that turn's signed thinking blocks first.
    # A client that sent them back (reasoning_details, or a reasoning item's encrypted_content)
    # keeps thinking on; without them Claude would refuse the request, so it runs without
    # thinking, as Anthropic's own error message advises.
    last_assistant = next((t for t in reversed(turns) if t["role"] == "assistant"), None)
    content = last_assistant["content"] if last_assistant is not None else []
    if any(b["type"] == "tool_use" for b in content) and content[0]["type"] not in _THINKING:
        return None
    return budget


def apply_sampling(
    request: dict[str, Any], body: dict[str, Any], settings: Settings, *, thinking_field: str | None
) -> None:
    """Copy ``temperature`` and ``top_p`` into the upstream ``body``, checked against what Claude
    takes; ``thinking_field`` names the client's field that turned thinking on (None: it is off)."""
    temperature = _number(request, "temperature", 0, 2)
    top_p = _number(request, "top_p", 0, 1)
    if temperature is not None and temperature > 1:
        if settings.temperature_above_1 == "reject":
            raise InvalidRequest(
                f"'temperature' is {temperature}, but Claude takes 0 to 1 (OpenAI's 0 to 2 range is "
                "not rescaled)",
                "temperature",
            )
        temperature = 1.0
    if thinking_field is not None:
        # Claude thinks at temperature 1, and with top_p of at least 0.95.
        if temperature is not None and temperature != 1:
            raise InvalidRequest(
                f"'temperature' must be 1 or left out with {thinking_field} (Claude thinks at 1), "
                f"not {temperature}",
                "temperature",
            )
        if top_p is not None and top_p < 0.95:
            raise InvalidRequest(
                f"'top_p' must be at least 0.95 or left out with {thinking_field}, not {top_p}", "top_p"
            )
    if temperature is not None:
        body["temperature"] = temperature
    if top_p is not None:
        body["top_p"] = top_p


def _number(request: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = request.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidRequest(f"'{name}' must be a number from {low} to {high}, not {shown(value)}", name)
    return value


def user_of(request: dict[str, Any]) -> str | None:
    """The end user's id, for Anthropic's ``metadata.user_id``: ``user`` or ``safety_identifier``."""
    for name in ("user", "safety_identifier"):
        value = request.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidRequest(f"'{name}' must be a string", name)
        if value:
            return value
    return None
