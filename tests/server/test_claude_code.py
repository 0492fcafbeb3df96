"""A real client: Claude Code (`claude -p`) through `chunkline serve --upstream-format openai-chat` in front
of a fake OpenAI-compatible upstream. The fake model asks for a Bash tool call; Claude Code runs it, sends
the result back, and prints the model's final text.

Claude Code is installed with npm into a gitignored cache (.cache/claude-code); the test skips only where
node or npm is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_openai_chat import FakeOpenAIChat
from serverkit import ServerThread

from chunkline.server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "claude-code"
VERSION = "2.1.197"
CLAUDE = CACHE / "node_modules" / ".bin" / "claude"


def claude_code() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Claude Code needs node and npm, which are not installed here")
    if not CLAUDE.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(CACHE),
                f"@anthropic-ai/claude-code@{VERSION}",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return CLAUDE


@pytest.fixture(scope="module")
def agent_front() -> Iterator[tuple[ServerThread, FakeOpenAIChat]]:
    fake = FakeOpenAIChat().start()
    settings = Settings(
        upstream=f"{fake.url}/v1", upstream_format="openai-chat", model_map={"*": "bash-agent"}
    )
    server = ServerThread(settings).start()
    yield server, fake
    server.stop()
    fake.stop()


def test_claude_code_runs_a_tool_through_the_server(
    agent_front: tuple[ServerThread, FakeOpenAIChat], tmp_path: Path
) -> None:
    claude = claude_code()
    server, fake = agent_front
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": server.url,
        "ANTHROPIC_API_KEY": "sk-ant-dummy-key",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    result = subprocess.run(
        [str(claude), "-p", "Run the marker command.", "--allowedTools", "Bash"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "The command printed chunk-42." in result.stdout
    chat = [r for r in fake.requests if r.path == "/v1/chat/completions"]
    assert len(chat) >= 2
    first, last = chat[0].body, chat[-1].body
    # The translation of what Claude Code really sent: its tools, system prompt and usage request.
    assert "Bash" in [t["function"]["name"] for t in first["tools"]]
    assert first["messages"][0]["role"] == "system"
    assert first["stream_options"] == {"include_usage": True}
    # The tool ran on this machine and its output went back as a tool message.
    tool = next(m for m in last["messages"] if m["role"] == "tool")
    assert tool == {"role": "tool", "tool_call_id": "call_bash_1", "content": "chunk-42"}
