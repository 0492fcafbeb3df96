"""``make demo``'s program: every route's bundled recording converts and the official SDKs read it back."""

from __future__ import annotations

from pathlib import Path

import pytest

from chunkline.demo import main


def test_the_tour_reads_back_on_every_route(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    # Chat Completions, from both Claude recordings.
    assert out.count("What the openai SDK made of it (chat.completions.stream") == 2
    assert "finish_reason     tool_calls" in out and "get_time" in out
    assert 'content           "- Captain\\n- Scoop"' in out
    # Responses: the same tool-calling answer as output items.
    assert "status            completed" in out
    assert "call_id=toolu_01NRtod2L7M7TBDj9GCzsZCx" in out
    assert "usage             514 input (0 cached) + 165 output = 679 tokens" in out
    # Anthropic Messages, from the DeepSeek recording: thinking, the tool call, usage merged.
    assert "stop_reason       tool_use" in out
    assert 'tool_use          weather({"location": "San Francisco"})' in out
    assert "usage             118 input + 256 cache read, 61 output" in out


def test_given_files_show_the_chat_route_for_each(capsys: pytest.CaptureFixture[str]) -> None:
    examples = Path(__file__).resolve().parents[1] / "examples"
    assert main([str(examples / "llm_thinking_long.sse"), "--full"]) == 0
    out = capsys.readouterr().out
    assert "chat.completions.stream" in out and "responses.stream" not in out
    assert "more events; --full shows them" not in out


def test_a_missing_recording_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main([str(tmp_path / "nope.sse")]) == 2
    assert capsys.readouterr().err == f"demo: no such recording: {tmp_path / 'nope.sse'}\n"
