"""Client values that once gave a 500: values nested so deep that quoting them in a message failed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from serverkit import CLIENT_KEY, ServerThread


def _deep(depth: int, as_list: bool) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value] if as_list else {"role": value}
    return value


def _nested_json(depth: int) -> str:
    # json.dumps recurses; a string is built here for any depth.
    return "[" * depth + '"x"' + "]" * depth


@pytest.mark.parametrize("depth", [990, 1000, 1020])  # 1,021 levels: the whole body past 1,024
def test_a_deeply_nested_role_is_a_400(proxy: ServerThread, depth: int) -> None:
    body = ('{"model":"echo","messages":[{"role":' + _nested_json(depth) + ',"content":"hi"}]}').encode()
    response = proxy.http.post(
        "/v1/chat/completions", content=body, headers={"authorization": f"Bearer {CLIENT_KEY}"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "messages[0].role"
    assert "[[[" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "field", ["tool_choice", "response_format", "reasoning_effort", "temperature", "stop", "tools"]
)
def test_a_deeply_nested_field_is_a_400(proxy: ServerThread, field: str) -> None:
    body = (
        '{"model":"echo","messages":[{"role":"user","content":"hi"}],"'
        + field
        + '":'
        + _nested_json(1000)
        + "}"
    ).encode()
    response = proxy.http.post(
        "/v1/chat/completions", content=body, headers={"authorization": f"Bearer {CLIENT_KEY}"}
    )
    assert response.status_code == 400, response.text
    json.loads(response.text)
