"""A real client: Codex CLI runs a session through ``chunkline serve`` (POST /v1/responses) in front
of the fake Anthropic upstream: a tool call Codex runs, the output sent back, the final text printed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fake_anthropic import FakeAnthropic
from fake_bodies import AGENT_THINKING
from serverkit import ServerThread

#: The Codex CLI release the test runs (its requests are in tests/fixtures/codex).
CODEX_VERSION = "0.171.0"
#: npm installs it here, once; build/ is ignored by git.
NODE_DIR = Path(__file__).resolve().parents[2] / "build" / "node"
MARKER = "chunkline-tool-ran"
MODEL = f"agent:exec_command:echo {MARKER}"


def _codex() -> Path:
    binary = NODE_DIR / "node_modules" / ".bin" / "codex"
    if binary.exists():
        return binary
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to install and run Codex CLI, and are not on PATH")
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(NODE_DIR),
            f"@openai/codex@{CODEX_VERSION}",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return binary


def test_codex_completes_a_tool_session(proxy: ServerThread, upstream: FakeAnthropic, tmp_path: Path) -> None:
    codex = _codex()
    home = tmp_path / "codex-home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(
        f'model = "{MODEL}"\n'
        'model_provider = "chunkline"\n'
        'model_reasoning_effort = "low"\n'
        "\n"
        "[model_providers.chunkline]\n"
        'name = "chunkline"\n'
        f'base_url = "{proxy.base_url}"\n'
        'wire_api = "responses"\n'
        'env_key = "CHUNKLINE_CODEX_TEST_KEY"\n'
    )
    env = {**os.environ, "CODEX_HOME": str(home), "CHUNKLINE_CODEX_TEST_KEY": "sk-test-dummy"}
    env.pop("OPENAI_API_KEY", None)
    before = len(upstream.requests)
    result = subprocess.run(
        [
            str(codex),
            "exec",
            "--skip-git-repo-check",
            "--dangerously-bypass-approvals-and-sandbox",
            "-C",
            str(work),
            "Run the command and tell me what it printed.",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )
    log = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}"
    assert result.returncode == 0, log
    # The final text, printed: the fake's answer quotes the tool output Codex sent back.
    assert f"The tool said: {MARKER}" in result.stdout, log

    turns = [r.body for r in upstream.requests[before:] if r.body and r.body.get("model") == MODEL]
    assert len(turns) == 2, log
    first, second = turns
    assert any(tool["name"] == "exec_command" for tool in first["tools"])
    assert first["thinking"]["type"] == "enabled"  # model_reasoning_effort = "low"
    # The second turn gives Claude its signed thinking back, first and unchanged, then the call,
    # and the tool's output (Codex ran it) as the result; so thinking stays on.
    assistant, result_turn = second["messages"][-2:]
    assert assistant["role"] == "assistant"
    assert assistant["content"][0] == AGENT_THINKING
    call = assistant["content"][1]
    assert (call["type"], call["id"], call["name"]) == ("tool_use", "toolu_agent_1", "exec_command")
    assert call["input"] == {"cmd": f"echo {MARKER}"}
    tool_result = result_turn["content"][0]
    assert tool_result["type"] == "tool_result" and tool_result["tool_use_id"] == "toolu_agent_1"
    assert MARKER in str(tool_result["content"])
    assert second["thinking"]["type"] == "enabled"
