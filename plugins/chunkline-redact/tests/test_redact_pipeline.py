"""The redact plugin in whole pipelines: found by its entry point or passed in, from bytes, and on the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import chunkline_redact
import pytest

import chunkline
from chunkline.testing import (
    AnthropicStream,
    assert_split_invariant,
    read_openai_stream,
    read_with_openai_sdk,
)

KEY = "sk-ant-api03-" + "Zq9_x-" * 15 + "AA"
EMAIL = "ada@example.org"


@pytest.fixture(autouse=True)
def _no_blocked_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHUNKLINE_DISABLE_PLUGINS", raising=False)


def leaky_stream() -> bytes:
    """A response that leaks secrets everywhere, each split across deltas."""
    return (
        AnthropicStream()
        .thinking("The user's key is ", KEY[:20], KEY[20:], ".")
        .text("Sure. Write to ada@exa", "mple.org, send Authorization: Bea", "rer ", "x" * 20, " now.")
        .tool_use("send_mail", '{"to": "ada@', 'example.org", "body": "key=', KEY[:9], KEY[9:], '"}')
        .stop()
        .sse()
    )


EXPECTED_CONTENT = "Sure. Write to [REDACTED:email], send Authorization: Bearer [REDACTED:bearer_token] now."


def test_the_installed_entry_point_registers_an_optional_stage() -> None:
    plugin = next(info for info in chunkline.list_plugins() if info.name == "redact")
    assert "chunkline-redact" in plugin.source
    assert plugin.version == "0.1.0"
    assert "redact" not in chunkline.Pipeline().stage_names  # optional: never there unasked
    stages = chunkline.default_stages().add("redact")
    assert list(stages) == [*chunkline.DEFAULT_STAGES[:4], "redact", *chunkline.DEFAULT_STAGES[4:]]


def test_a_pipeline_with_the_installed_plugin_masks_what_a_client_reads() -> None:
    pipeline = chunkline.Pipeline(chunkline.default_stages().add("redact"), created=0)
    message = read_with_openai_sdk(pipeline.convert(leaky_stream()))
    assert message.content == EXPECTED_CONTENT
    assert message.reasoning == "The user's key is [REDACTED:anthropic_key]."
    assert json.loads(message.tool_calls[0].arguments) == {
        "to": "[REDACTED:email]",
        "body": "key=[REDACTED:anthropic_key]",
    }
    assert message.finish_reason == "tool_calls"


def test_the_module_passed_as_a_plugin_works_without_the_entry_point() -> None:
    stages = chunkline.default_stages(plugins=[chunkline_redact], load_entrypoints=False).add("redact")
    pipeline = chunkline.Pipeline(
        stages, plugins=[chunkline_redact], load_entrypoints=False, redact_replacement="***"
    )
    message = read_openai_stream(pipeline.convert(leaky_stream()))
    assert message.content == "Sure. Write to ***, send Authorization: Bearer *** now."
    assert KEY not in json.dumps(message.chunks)


def test_the_whole_pipeline_is_split_invariant_with_redact() -> None:
    stages = chunkline.default_stages().add("redact")
    for options in ({}, {"chunking": "words:2"}, {"thinking": "tags"}):
        out = assert_split_invariant(chunkline.Pipeline(stages, **options), leaky_stream(), random_splits=8)
        joined = b"".join(out)
        assert KEY.encode() not in joined
        assert EMAIL.encode() not in joined


def test_redact_runs_before_the_chunker_which_cuts_the_masked_text() -> None:
    stages = chunkline.default_stages().add("redact")
    pipeline = chunkline.Pipeline(stages, chunking="words:1", created=0)
    chunks = read_openai_stream(pipeline.convert(leaky_stream())).chunks
    contents = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert " [REDACTED:email]," in contents  # one word, as the chunker cuts the masked text


def test_a_stream_without_secrets_reads_the_same_with_or_without_redact() -> None:
    data = (
        AnthropicStream()
        .thinking("Thinking about ", "the answer.")
        .text("Hello, wor", "ld! The sky is blue; 2 + 2 = 4.")
        .tool_use("lookup", '{"q": "wea', 'ther in Paris", "n": [1, 2]}')
        .stop()
        .sse()
    )
    plain = read_openai_stream(chunkline.Pipeline(created=0).convert(data))
    redacted = read_openai_stream(
        chunkline.Pipeline(chunkline.default_stages().add("redact"), created=0).convert(data)
    )
    assert (redacted.content, redacted.reasoning, redacted.tool_calls) == (
        plain.content,
        plain.reasoning,
        plain.tool_calls,
    )


def test_an_upstream_error_still_ends_the_stream_after_the_held_text() -> None:
    data = AnthropicStream().text("partial ada@exa").error("overloaded_error", "busy").sse()
    message = read_openai_stream(chunkline.Pipeline(chunkline.default_stages().add("redact")).convert(data))
    assert message.content == "partial ada@exa"
    assert message.error is not None and message.error["code"] == "overloaded_error"


# -- the command line ------------------------------------------------------------------------------


def chunkline_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "chunkline", *args], input=stdin, capture_output=True, timeout=60, check=False
    )


def test_chunkline_stages_lists_the_plugin_stage_and_its_options() -> None:
    result = chunkline_cli("stages", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.dumps(json.loads(result.stdout))
    assert '"redact"' in listing
    assert "redact_replacement" in listing


def test_convert_with_add_redact(tmp_path: Path) -> None:
    source = tmp_path / "leaky.sse"
    source.write_bytes(leaky_stream())
    result = chunkline_cli("convert", str(source), "--add", "redact")
    assert result.returncode == 0, result.stderr
    message = read_openai_stream(result.stdout)
    assert message.content == EXPECTED_CONTENT
    assert KEY.encode() not in result.stdout


def test_convert_with_a_full_stage_list_and_options() -> None:
    stages = ",".join(chunkline.default_stages().add("redact"))
    result = chunkline_cli(
        "convert",
        "--stages",
        stages,
        "--option",
        "redact_patterns=email",
        "--option",
        "redact_replacement=<{kind}>",
        stdin=leaky_stream(),
    )
    assert result.returncode == 0, result.stderr
    message = read_openai_stream(result.stdout)
    assert message.content is not None and "<email>" in message.content
    assert "Bearer " + "x" * 20 in message.content  # only e-mail addresses were asked for


def test_a_bad_option_on_the_command_line_says_what_is_wrong() -> None:
    result = chunkline_cli("convert", "--add", "redact", "--option", 'redact_extra_patterns={"x": "a+"}')
    assert result.returncode == 2
    assert b"no upper bound on its length" in result.stderr
