"""``chunkline serve`` and its settings: flags, environment variables, errors, and a real server process."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fake_anthropic import FakeAnthropic
from serverkit import user

from chunkline.cli import main
from chunkline.server.app import create_app
from chunkline.server.cli import EXTRA_HINT
from chunkline.server.settings import (
    DEFAULT_REASONING_BUDGETS,
    ENVIRONMENT,
    Secret,
    Settings,
    SettingsError,
)

ROOT = Path(__file__).resolve().parents[2]
CHUNKLINE = Path(sys.executable).parent / "chunkline"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- settings --------------------------------------------------------------------------------------


def test_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "CHUNKLINE_HOST": "0.0.0.0",
            "CHUNKLINE_PORT": "9000",
            "CHUNKLINE_UPSTREAM": "https://gateway.example/anthropic/",
            "CHUNKLINE_WORKERS": "3",
            "CHUNKLINE_API_KEYS": " k1 , k2 ,",
            "ANTHROPIC_API_KEY": "sk-ant-x",
            "CHUNKLINE_DEFAULT_MAX_TOKENS": "1000",
            "CHUNKLINE_IDLE_TIMEOUT": "2.5",
            "CHUNKLINE_MODELS": "a,b",
            "CHUNKLINE_MODEL_ALIASES": "gpt-4o=claude-sonnet-4-5, mini = claude-haiku-4-5",
            "CHUNKLINE_THINKING": "Tags",
            "CHUNKLINE_TEMPERATURE_ABOVE_1": "clamp",
            "CHUNKLINE_ACCESS_LOG": "off",
            "CHUNKLINE_PORT_UNRELATED": "ignored",
        }
    )
    assert (settings.host, settings.port, settings.workers) == ("0.0.0.0", 9000, 3)
    assert settings.upstream == "https://gateway.example/anthropic"
    assert settings.api_keys == (Secret("k1"), Secret("k2"))
    assert settings.anthropic_api_key == Secret("sk-ant-x")
    assert settings.auth_mode == "keys"
    assert settings.default_max_tokens == 1000 and settings.idle_timeout == 2.5
    assert settings.models == ("a", "b")
    assert dict(settings.model_aliases) == {"gpt-4o": "claude-sonnet-4-5", "mini": "claude-haiku-4-5"}
    assert settings.thinking == "tags" and settings.temperature_above_1 == "clamp"
    assert settings.access_log is False


def test_defaults_and_empty_variables() -> None:
    settings = Settings.from_env({"CHUNKLINE_PORT": "", "CHUNKLINE_API_KEYS": " "})
    assert settings == Settings()
    assert settings.upstream == "https://api.anthropic.com"
    assert (settings.host, settings.port, settings.auth_mode) == ("127.0.0.1", 8080, "passthrough")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CHUNKLINE_PORT", "eighty", "CHUNKLINE_PORT must be a whole number, not 'eighty'"),
        ("CHUNKLINE_PORT", "99999", "CHUNKLINE_PORT must be a port number from 0 to 65535, not '99999'"),
        ("CHUNKLINE_WORKERS", "0", "CHUNKLINE_WORKERS must be a whole number of at least 1, not '0'"),
        ("CHUNKLINE_UPSTREAM", "api.anthropic.com", "CHUNKLINE_UPSTREAM must be an http:// or https:// URL"),
        ("CHUNKLINE_UPSTREAM", "https://x/?a=1", "CHUNKLINE_UPSTREAM must be a base URL without a query"),
        ("CHUNKLINE_IDLE_TIMEOUT", "-1", "CHUNKLINE_IDLE_TIMEOUT must be a number of seconds above 0"),
        ("CHUNKLINE_STREAM_TIMEOUT", "inf", "CHUNKLINE_STREAM_TIMEOUT must be a number of seconds above 0"),
        ("CHUNKLINE_MODEL_ALIASES", "gpt-4o", "CHUNKLINE_MODEL_ALIASES must be NAME=VALUE pairs"),
        ("CHUNKLINE_REASONING_BUDGETS", "high=100", "Anthropic's minimum budget is 1024"),
        ("CHUNKLINE_REASONING_BUDGETS", "huge=5000", "names an unknown reasoning_effort 'huge'"),
        ("CHUNKLINE_THINKING", "inline", "CHUNKLINE_THINKING must be one of reasoning_content, reasoning"),
        ("CHUNKLINE_ACCESS_LOG", "maybe", "CHUNKLINE_ACCESS_LOG must be true or false, not 'maybe'"),
        ("CHUNKLINE_API_KEYS", "k1", "ANTHROPIC_API_KEY, which is not set"),
    ],
)
def test_a_bad_setting_names_its_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert message in str(caught.value)
    if variable == "CHUNKLINE_API_KEYS":
        assert value not in str(caught.value), "a key in an error message"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("port", 70000, "Settings.port (CHUNKLINE_PORT) must be a port number from 0 to 65535"),
        ("idle_timeout", 0, "Settings.idle_timeout (CHUNKLINE_IDLE_TIMEOUT) must be a number of seconds"),
        ("upstream", "ftp://x", "Settings.upstream (CHUNKLINE_UPSTREAM) must be an http:// or https:// URL"),
        ("thinking", "inline", "Settings.thinking (CHUNKLINE_THINKING) must be one of reasoning_content"),
        ("reasoning_budgets", {"high": 10}, "Anthropic's minimum budget is 1024"),
    ],
)
def test_settings_made_in_code_are_checked_too(field: str, value: Any, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings(**{field: value})
    assert message in str(caught.value)


def test_settings_made_in_code_take_the_environments_form() -> None:
    """As the variables would give them: a choice in any case, budgets merged with the defaults."""
    settings = Settings(
        thinking="Tags",
        temperature_above_1="Clamp",
        reasoning_budgets={"high": 12000},
        upstream="https://gateway.example/anthropic/",
        model_aliases={"gpt-4o": "claude-sonnet-4-5"},
    )
    assert settings == Settings.from_env(
        {
            "CHUNKLINE_THINKING": "Tags",
            "CHUNKLINE_TEMPERATURE_ABOVE_1": "Clamp",
            "CHUNKLINE_REASONING_BUDGETS": "high=12000",
            "CHUNKLINE_UPSTREAM": "https://gateway.example/anthropic/",
            "CHUNKLINE_MODEL_ALIASES": "gpt-4o=claude-sonnet-4-5",
        }
    )
    assert (settings.thinking, settings.temperature_above_1) == ("tags", "clamp")
    assert dict(settings.reasoning_budgets) == {**DEFAULT_REASONING_BUDGETS, "high": 12000}
    assert settings.upstream == "https://gateway.example/anthropic"
    create_app(settings)  # the pipeline takes the thinking mode as it is now written


def test_every_variable_is_documented() -> None:
    page = (ROOT / "docs" / "server.md").read_text()
    help_text = subprocess.run(
        [str(CHUNKLINE), "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for variable, _ in ENVIRONMENT.values():
        assert f"`{variable}`" in page, f"docs/server.md does not describe {variable}"
        assert variable in help_text, f"chunkline serve --help does not list {variable}"


def test_the_environment_round_trip() -> None:
    settings = Settings(
        port=9001,
        api_keys=(Secret("a"), Secret("b")),
        anthropic_api_key=Secret("up"),
        model_aliases={"x": "y"},
        models=("m1",),
        access_log=False,
        stream_timeout=12.5,
    )
    assert Settings.from_env(settings.environment()) == settings


# -- the command -----------------------------------------------------------------------------------


def test_serve_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--upstream", "--workers", "--log-level", "CHUNKLINE_API_KEYS"):
        assert flag in out


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--port", "abc"], {}, "chunkline: error: --port must be a whole number, not 'abc'"),
        (
            ["--workers", "-2"],
            {},
            "chunkline: error: --workers must be a whole number of at least 1, not '-2'",
        ),
        (
            ["--upstream", "localhost:9"],
            {},
            "chunkline: error: --upstream must be an http:// or https:// URL",
        ),
        (["--log-level", "loud"], {}, "chunkline: error: --log-level must be one of critical, error"),
        ([], {"CHUNKLINE_PORT": "-5"}, "chunkline: error: CHUNKLINE_PORT must be a port number"),
        (
            [],
            {"CHUNKLINE_API_KEYS": "sk-team"},
            "chunkline: error: CHUNKLINE_API_KEYS is set, so clients use",
        ),
        (
            [],
            {"HTTPS_PROXY": "socks5://proxy:1080"},
            "chunkline: error: the https proxy the environment names (socks5://proxy) is not an http://",
        ),
    ],
)
def test_bad_settings_exit_2_before_serving(
    argv: list[str],
    environ: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for variable, _ in ENVIRONMENT.values():
        monkeypatch.delenv(variable, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert "sk-team" not in err


def test_without_the_server_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # what a missing package looks like to import
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err == f"chunkline: error: 'chunkline serve' needs uvicorn: {EXTRA_HINT}\n"
    assert "pip install 'dist/chunkline-*.whl[server]'" in err and "pip install -e '.[server]'" in err


def test_uvloop_asked_for_but_not_installed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert main(["serve", "--loop", "uvloop"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"chunkline: error: the uvloop event loop (--loop, CHUNKLINE_LOOP) is not installed: {EXTRA_HINT}\n"
    )


def test_the_core_and_the_cli_import_no_server_dependency() -> None:
    code = (
        "import sys, chunkline, chunkline.cli, chunkline.server, chunkline.server.cli\n"
        "chunkline.cli._parser()\n"
        "loaded = sorted(m for m in ('starlette', 'uvicorn', 'httpx') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- a real `chunkline serve` process ----------------------------------------------------------------


def _start(command: list[str], environ: dict[str, str]) -> subprocess.Popen[str]:
    """``command`` with only ``environ`` of the server's settings in its environment."""
    env = {k: v for k, v in os.environ.items() if k not in {v for v, _ in ENVIRONMENT.values()}}
    env.update(environ)
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _serve(argv: list[str], environ: dict[str, str]) -> subprocess.Popen[str]:
    return _start([str(CHUNKLINE), "serve", *argv], environ)


def _streams_through(url: str, key: str, upstream: FakeAnthropic, upstream_key: str, label: str) -> None:
    """Four streaming requests from the openai SDK arrive whole, each sent upstream with its key."""
    with openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as client:
        for n in range(4):
            marker = f"{label}, request {n}"
            with client.chat.completions.create(model="echo", messages=user(marker), stream=True) as stream:
                assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == marker
            assert upstream.find(marker).headers["x-api-key"] == upstream_key


def _wait_healthy(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("chunkline serve did not become healthy")


def _fastest_first_byte(url: str) -> float:
    """Seconds from sending a streaming request to its first body bytes (the fastest of 11). With
    Nagle's algorithm on, every first event waits for the client's delayed ACK, 40 ms or more;
    the fastest of several is that floor however busy the machine is, and without Nagle it is a
    few milliseconds, so the check does not depend on the machine being quiet."""
    times = []
    payload = {"model": "echo", "messages": user("first byte"), "stream": True}
    with httpx.Client(headers={"Authorization": "Bearer sk-proc-key"}) as http:
        for _ in range(11):
            started = time.perf_counter()
            with http.stream("POST", f"{url}/v1/chat/completions", json=payload) as response:
                chunks = response.iter_raw()
                first = next(chunks)
                times.append(time.perf_counter() - started)
                # A short answer may come whole in that first read.
                assert (first + b"".join(chunks)).endswith(b"data: [DONE]\n\n")
    return min(times)


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    return output


@pytest.mark.parametrize(
    ("workers", "loop"), [(1, "auto"), (2, "auto"), (1, "asyncio")], ids=["1", "2", "1-asyncio"]
)
def test_chunkline_serve_as_a_user_runs_it(upstream: FakeAnthropic, workers: int, loop: str) -> None:
    """Keys from the environment, the upstream from a flag; with 2 workers every worker gets both.
    The event loop is uvloop where the server extra installed it, or asyncio's when asked for."""
    port = _free_port()
    process = _serve(
        ["--port", str(port), "--upstream", upstream.url, "--workers", str(workers), "--loop", loop],
        {"CHUNKLINE_API_KEYS": "sk-proc-key", "ANTHROPIC_API_KEY": "sk-ant-proc-upstream"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        label = f"served by a process with {workers} workers ({loop} loop)"
        _streams_through(url, "sk-proc-key", upstream, "sk-ant-proc-upstream", label)
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
        assert _fastest_first_byte(url) < 0.035, "events wait for delayed ACKs (Nagle's algorithm is on)"
    finally:
        output = _stop(process) if process.poll() is None else process.communicate()[0]
    assert "sk-proc-key" not in output and "sk-ant-proc-upstream" not in output
    assert "method=POST route=/v1/chat/completions status=200 model=echo" in output
    assert "auth: the server's keys" in output


def test_a_port_in_use_fails_to_start(upstream: FakeAnthropic) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = _serve(["--port", str(port), "--upstream", upstream.url], {})
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 2
    assert output == f"chunkline: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def _documented_gunicorn_command() -> list[str]:
    """The gunicorn command line docs/server.md gives, continuation lines joined."""
    text = (ROOT / "docs" / "server.md").read_text()
    block = next(b for b in text.split("```sh")[1:] if "gunicorn " in b.split("```")[0]).split("```")[0]
    return shlex.split(block.replace("\\\n", " "))


def test_the_documented_gunicorn_command_serves(upstream: FakeAnthropic) -> None:
    """docs/server.md's gunicorn line, as written but bound to loopback with two workers."""
    command = _documented_gunicorn_command()
    assert command[0] == "gunicorn"
    port = _free_port()
    command[0] = str(Path(sys.executable).parent / "gunicorn")
    command[command.index("-b") + 1] = f"127.0.0.1:{port}"
    command[command.index("-w") + 1] = "2"
    environ = {
        "CHUNKLINE_UPSTREAM": upstream.url,
        "CHUNKLINE_API_KEYS": "sk-gunicorn",
        "ANTHROPIC_API_KEY": "sk-ant-g",
    }
    process = _start(command, environ)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        _streams_through(url, "sk-gunicorn", upstream, "sk-ant-g", "served by gunicorn")
        # The worker serves with the guarded protocol: a request head far past its limit is refused.
        refused = httpx.get(f"{url}/healthz", headers={"x-big": "a" * 300_000}, timeout=10)
        assert refused.status_code in (400, 431)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=40)
    assert "sk-gunicorn" not in output and "sk-ant-g" not in output
    assert "Booting worker" in output
