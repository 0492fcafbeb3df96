"""Helpers for the translation tests: translate a request (or see it refused) with the default settings."""

from __future__ import annotations

from typing import Any

import pytest

from chunkline.server.errors import InvalidRequest
from chunkline.server.settings import Settings
from chunkline.server.translate import translate_request

SETTINGS = Settings()
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def translate(settings: Settings = SETTINGS, **request: Any) -> dict[str, Any]:
    request.setdefault("model", "claude-test")
    request.setdefault("messages", [{"role": "user", "content": "hi"}])
    return translate_request(request, settings).body


def refused(param: str | None, settings: Settings = SETTINGS, **request: Any) -> str:
    """Translating must fail with a 400 naming ``param``; returns the message."""
    with pytest.raises(InvalidRequest) as caught:
        translate(settings, **request)
    assert caught.value.status == 400
    assert caught.value.param == param, caught.value.message
    assert caught.value.body()["error"]["type"] == "invalid_request_error"
    return caught.value.message


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def user(*content: Any) -> dict[str, Any]:
    return {
        "role": "user",
        "content": list(content) if len(content) != 1 or isinstance(content[0], dict) else content[0],
    }


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
