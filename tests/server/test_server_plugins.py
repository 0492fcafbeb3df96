"""Plugins and options in the server: stage-list flags, variables, a config file, /healthz, --print-config."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fake_anthropic import FakeAnthropic
from processkit import free_port, serve, stop, wait_healthy
from serverkit import ServerThread, user

from chunkline.cli import main
from chunkline.server.config import load_config, settings_from
from chunkline.server.settings import ENVIRONMENT, Settings, SettingsError

# The redact plugin's anthropic_key pattern matches this; the echo model answers with it.
SECRET = "sk-ant-api03-" + "Q7x9" * 10 + "AA"


@pytest.fixture(autouse=True)
def _no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, _ in ENVIRONMENT.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("CHUNKLINE_CONFIG", raising=False)


def _stream_text(url: str, text: str) -> str:
    payload = {"model": "echo", "messages": user(text), "stream": True}
    content = []
    with httpx.stream(
        "POST", f"{url}/v1/chat/completions", json=payload, headers={"Authorization": "Bearer k"}
    ) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:])["choices"]:
                    content.append(choice["delta"].get("content") or "")
    return "".join(content)


def test_serve_with_redact_and_markdown_masks_a_secret_in_a_streamed_answer(upstream: FakeAnthropic) -> None:
    """The issue's example, as an operator runs it: a real process, the installed example plugins."""
    port = free_port()
    process = serve(
        ["--port", str(port), "--upstream", upstream.url, "--add", "redact", "--chunking", "markdown"]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        answer = _stream_text(url, f"my key is {SECRET} keep it safe")
        health = httpx.get(f"{url}/healthz").json()
    finally:
        stop(process)
    assert SECRET not in answer and SECRET[:12] not in answer
    assert answer == "my key is [REDACTED:anthropic_key] keep it safe"
    assert "redact" in health["stages"]
    assert health["stages"].index("redact") > health["stages"].index("decode")
    assert health["options"]["chunking"] == "markdown"
    assert health["options"]["redact_replacement"] == "[REDACTED:{kind}]"


def test_the_same_from_variables_and_the_non_streaming_answer(upstream: FakeAnthropic) -> None:
    settings = Settings.from_env(
        {
            "CHUNKLINE_UPSTREAM": upstream.url,
            "CHUNKLINE_ADD": "redact",
            "CHUNKLINE_OPTIONS": '{"redact_replacement": "***", "redact_patterns": ["anthropic_key"]}',
            "CHUNKLINE_CHUNKING": "words:2",
        }
    )
    server = ServerThread(settings).start()
    try:
        assert _stream_text(server.url, f"a {SECRET} b") == "a *** b"
        response = server.post_chat({"model": "echo", "messages": user(f"x {SECRET} y")})
        assert response.json()["choices"][0]["message"]["content"] == "x *** y"
        options = server.http.get("/healthz").json()["options"]
        assert options["redact_patterns"] == ["anthropic_key"] and options["chunking"] == "words:2"
    finally:
        server.stop()


def test_stage_edits_reach_the_server(upstream: FakeAnthropic) -> None:
    settings = Settings(upstream=upstream.url, remove=("thinking",), add=("redact@chunker",))
    server = ServerThread(settings).start()
    try:
        stages = server.http.get("/healthz").json()["stages"]
    finally:
        server.stop()
    assert "thinking" not in stages
    assert stages[stages.index("chunker") + 1] == "redact"


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--add", "nosuchstage"], {}, "unknown stage 'nosuchstage'"),
        (["--add", "redact@"], {}, "--add takes NAME or NAME@STAGE, not 'redact@'"),
        (["--replace", "chunker"], {}, "--replace takes OLD=NEW, not 'chunker'"),
        (["--remove", "nosuch"], {}, "nosuch"),
        (["--chunking", "bogus"], {}, "bogus"),
        (["--thinking", "inline"], {}, "--thinking must be one of"),
        (["--option", "novalue"], {}, "--option takes NAME=VALUE, not 'novalue'"),
        (["--option", "redact_replacement=x"], {}, "belongs to stage 'redact'"),
        (["--option", "include_usage=true"], {}, "option 'include_usage' is set by the server"),
        (["--option", "chunking=words:2"], {}, "set it with --chunking"),
        (["--block", "redact", "--add", "redact"], {}, "redact"),
        ([], {"CHUNKLINE_ADD": "redact@"}, "CHUNKLINE_ADD must be NAME or NAME@STAGE entries"),
        ([], {"CHUNKLINE_REPLACE": "a"}, "CHUNKLINE_REPLACE must be OLD=NEW entries"),
        ([], {"CHUNKLINE_OPTIONS": "[1]"}, "CHUNKLINE_OPTIONS must be a JSON object"),
        ([], {"CHUNKLINE_CHUNKING": "bogus"}, "bogus"),
        ([], {"CHUNKLINE_LOG_FORMAT": "xml"}, "CHUNKLINE_LOG_FORMAT must be one of text, json"),
        ([], {"CHUNKLINE_METRICS": "maybe"}, "CHUNKLINE_METRICS must be true or false"),
        (["--shutdown-timeout", "0"], {}, "--shutdown-timeout must be a number of seconds above 0"),
    ],
)
def test_a_bad_pipeline_setting_is_one_line_and_exit_2(
    argv: list[str],
    environ: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    # A free port: were the check missed, the server would start rather than fail on the port.
    assert main(["serve", "--port", str(free_port()), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chunkline: error: ") and err.count("\n") == 1, err
    assert message in err


def test_print_config(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUNKLINE_API_KEYS", "sk-team-secret")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-upstream-secret")
    argv = [
        "serve",
        "--print-config",
        "--add",
        "redact",
        "--option",
        'redact_replacement="#"',
        "--port",
        "9123",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    config = json.loads(out)
    assert "redact" in config["stages"] and config["options"]["redact_replacement"] == "#"
    assert config["settings"]["port"] == 9123 and config["settings"]["add"] == ["redact"]
    assert config["settings"]["api_keys"] == config["settings"]["anthropic_api_key"] == "********"
    assert "secret" not in out


# -- the configuration file ------------------------------------------------------------------------


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chunkline.toml"
    path.write_text(text)
    return path


def test_a_config_file_and_the_precedence(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        'port = 9001\nhost = "0.0.0.0"\nadd = ["redact"]\nchunking = "words:3"\nmetrics = false\n'
        'model_aliases = { gpt-4o = "claude-sonnet-4-5" }\nidle_timeout = 12.5\n'
        '[options]\nredact_replacement = "<{kind}>"\nredact_reasoning = false\n',
    )
    from_file = settings_from(str(path), environ={})
    assert (from_file.port, from_file.host, from_file.add, from_file.chunking) == (
        9001,
        "0.0.0.0",
        ("redact",),
        "words:3",
    )
    assert from_file.metrics is False and from_file.idle_timeout == 12.5
    assert dict(from_file.model_aliases) == {"gpt-4o": "claude-sonnet-4-5"}
    assert dict(from_file.options) == {"redact_replacement": "<{kind}>", "redact_reasoning": False}
    # flag > variable > file > default
    environ = {"CHUNKLINE_PORT": "9002", "CHUNKLINE_CHUNKING": "sentences"}
    mixed = settings_from(str(path), environ=environ, port=9003)
    assert (mixed.port, mixed.chunking, mixed.host, mixed.workers) == (9003, "sentences", "0.0.0.0", 1)
    # CHUNKLINE_CONFIG names the file when --config does not.
    assert settings_from(None, environ={"CHUNKLINE_CONFIG": str(path)}).port == 9001


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prot = 8080\n", "unknown key 'prot'; the keys are: "),
        ('port = "eighty"\n', "port (as CHUNKLINE_PORT) must be a whole number, not 'eighty'"),
        ("port = [1, 2]\n", "port (as CHUNKLINE_PORT) must be a string, a number"),
        ("options = 3\n", "options (as CHUNKLINE_OPTIONS) must be a table"),
        ("port = \n", "not valid TOML"),
    ],
)
def test_a_bad_config_file(tmp_path: Path, text: str, message: str) -> None:
    path = _toml(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


def test_serve_with_a_bad_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _toml(tmp_path, "colour = 'blue'\n")
    assert main(["serve", "--config", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"chunkline: error: {path}: unknown key 'colour'")
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read the configuration file" in capsys.readouterr().err


def test_the_config_file_keys_are_the_documented_settings() -> None:
    page = (Path(__file__).parents[2] / "docs" / "server.md").read_text()
    for key in ENVIRONMENT:
        assert f"`{key}`" in page, f"docs/server.md does not name the config key {key}"


# -- the upstream URL --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("http://host/v1", "http://host"),
        ("http://host/v1/", "http://host"),
        ("https://gateway.example/anthropic/v1", "https://gateway.example/anthropic"),
        ("https://api.anthropic.com", "https://api.anthropic.com"),
    ],
)
def test_an_upstream_ending_in_v1_is_taken_as_its_base_url(given: str, base: str) -> None:
    assert Settings(upstream=given).upstream == base


def test_an_upstream_with_v1_serves(upstream: FakeAnthropic) -> None:
    """Not /v1/v1/messages: the fake upstream answers only /v1/messages."""
    server = ServerThread(Settings(upstream=f"{upstream.url}/v1/")).start()
    try:
        response = server.post_chat({"model": "echo", "messages": user("through v1")})
    finally:
        server.stop()
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "through v1"


def test_an_endpoint_url_as_the_upstream_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--upstream", "https://api.anthropic.com/v1/messages"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "chunkline: error: --upstream must be the API's base URL (such as https://api.anthropic.com or "
        "https://api.openai.com/v1), not an endpoint: 'https://api.anthropic.com/v1/messages'\n"
    )


@pytest.mark.parametrize(
    "base", ["http://vllm:8000/v1", "https://openrouter.ai/api/v1", "http://ollama:11434"]
)
def test_an_openai_compatible_upstream_keeps_its_v1(base: str) -> None:
    """Its endpoints hang below /v1 (POST {base}/chat/completions), unlike the Messages API's."""
    assert Settings(upstream=base + "/", upstream_format="openai-chat").upstream == base
