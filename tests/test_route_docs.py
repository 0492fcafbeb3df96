"""The openai-chat -> anthropic-messages rules as docs/server.md writes them, checked against the code: the
stop-reason table, the usage table and the thinking-budget rule are run, row by row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chat_route import anthropic_final, chat_chunk, chat_sse, convert
from chunkline.server.anthropic_request import translate_messages_request

DOC = (Path(__file__).resolve().parent.parent / "docs" / "server.md").read_text()


def table(header: str) -> list[list[str]]:
    """The rows of the markdown table whose header row is ``header``, as lists of cells."""
    lines = DOC[DOC.index(header) :].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


STOP_ROWS = [
    (re.findall(r"`(\w+)`", first), re.findall(r"`(\w+)`", second)[0])
    for first, second in table("| `finish_reason` | `stop_reason` |")
    if first.startswith("`") and " after " not in first and " whose " not in first
]


def test_the_stop_reason_table_is_there() -> None:
    assert len(STOP_ROWS) >= 4


@pytest.mark.parametrize(("reasons", "expected"), STOP_ROWS, ids=[r[0][0] for r in STOP_ROWS])
def test_each_stop_reason_row(reasons: list[str], expected: str) -> None:
    for reason in reasons:
        chunks = [chat_chunk({"role": "assistant", "content": "x"})]
        if expected == "tool_use":
            call = {"index": 0, "id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            chunks.append(chat_chunk({"tool_calls": [call]}))
        chunks.append(chat_chunk({}, reason))
        assert anthropic_final(convert(chat_sse(chunks))).stop_reason == expected


def test_the_usage_table() -> None:
    rows = {second: first for first, second in table("| OpenAI `usage` | Anthropic `usage` |")}
    assert rows["`input_tokens`"] == "`prompt_tokens` minus cached"
    assert rows["`cache_read_input_tokens`"].startswith("`prompt_tokens_details.cached_tokens`")
    assert rows["`output_tokens`"] == "`completion_tokens`"
    finish = chat_chunk({}, "stop")
    finish["usage"] = {
        "prompt_tokens": 50,
        "completion_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 20},
    }
    usage = anthropic_final(convert(chat_sse([chat_chunk({"content": "x"}), finish]))).usage
    assert usage == {"input_tokens": 30, "output_tokens": 7, "cache_read_input_tokens": 20}


def test_the_thinking_budget_rule() -> None:
    row = next(r for r in table("| Anthropic | OpenAI chat |") if r[0].startswith("`thinking` `enabled`"))
    low, medium = (int(n) for n in re.findall(r"up to (\d+)", row[1]))
    request = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    for budget, effort in ((low, "low"), (low + 1, "medium"), (medium, "medium"), (medium + 1, "high")):
        thinking = {"type": "enabled", "budget_tokens": budget}
        assert (
            translate_messages_request({**request, "thinking": thinking}, {}).body["reasoning_effort"]
            == effort
        )
