"""The markdown policy in whole pipelines: found by its entry point or passed in, from Anthropic
bytes, read back by the openai SDK, and on the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import chunkline_markdown
import pytest
from markdown_spans import MarkdownSpans, cut_points

import chunkline
from chunkline.testing import (
    AnthropicStream,
    assert_split_invariant,
    read_openai_stream,
    read_with_openai_sdk,
)

ANSWER = (
    "To install, run `pip install chunkline` and then:\n\n"
    '```python\nimport chunkline\npipeline = chunkline.Pipeline(chunking="markdown")\n```\n\n'
    'See [the docs](https://example.com/docs "Docs") or ![the logo](logo.png).\n'
)


def deltas(text: str, size: int = 9) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def stream() -> bytes:
    return AnthropicStream().thinking("Let me answer.").text(*deltas(ANSWER)).stop().sse()


def contents(output: list[bytes]) -> list[str]:
    message = read_openai_stream(output)
    return [
        c["choices"][0]["delta"]["content"]
        for c in message.chunks
        if c["choices"] and c["choices"][0]["delta"].get("content")
    ]


@pytest.fixture(autouse=True)
def _no_blocked_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHUNKLINE_DISABLE_PLUGINS", raising=False)


def test_the_installed_entry_point_registers_the_policy() -> None:
    plugin = next(info for info in chunkline.list_plugins() if info.name == "markdown")
    assert "chunkline-markdown" in plugin.source
    assert plugin.version == "0.1.0"


def test_a_pipeline_choosing_markdown_never_breaks_the_markdown() -> None:
    output = chunkline.Pipeline(chunking="markdown", created=0).convert(stream())
    pieces = contents(output)
    assert "".join(pieces) == ANSWER
    assert MarkdownSpans().violations(ANSWER, cut_points(pieces)) == []
    assert pieces[:3] == ["To instal", "l, run ", "`pip install chunkline` and t"]
    assert "import chunkline\n" in pieces  # code goes out a whole line at a time
    # The passthrough default cuts where the upstream did, inside the spans.
    plain = contents(chunkline.Pipeline(created=0).convert(stream()))
    assert MarkdownSpans().violations(ANSWER, cut_points(plain)) != []


def test_the_openai_sdk_reads_the_same_message() -> None:
    output = chunkline.Pipeline(chunking="markdown:500", created=0).convert(stream())
    message = read_with_openai_sdk(output)
    assert message.content == ANSWER
    assert message.reasoning == "Let me answer."
    assert message.finish_reason == "stop"


def test_the_module_passed_as_a_plugin_works_without_the_entry_point() -> None:
    pipeline = chunkline.Pipeline(plugins=[chunkline_markdown], load_entrypoints=False, chunking="markdown")
    assert "".join(contents(pipeline.convert(stream()))) == ANSWER
    with pytest.raises(chunkline.OptionError, match="unknown policy 'markdown'"):
        chunkline.Pipeline(load_entrypoints=False, chunking="markdown")


def test_the_whole_pipeline_is_split_invariant_with_markdown() -> None:
    data = (
        AnthropicStream()
        .text(*deltas(ANSWER, 5))
        .tool_use("search", '{"q": "x"}')
        .text("After the `tool", "` call: [a](b)")
        .stop()
        .sse()
    )
    out = assert_split_invariant(chunkline.Pipeline(chunking="markdown"), data, random_splits=8)
    assert read_openai_stream(out).content == ANSWER + "After the `tool` call: [a](b)"


def chunkline_cli(*args: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "chunkline", *args], input=stdin, capture_output=True, timeout=60, check=False
    )


def test_the_cli_lists_and_uses_the_policy() -> None:
    listing = chunkline_cli("stages", "--json", stdin=b"")
    assert listing.returncode == 0, listing.stderr
    assert "markdown" in json.dumps(json.loads(listing.stdout))
    result = chunkline_cli("convert", "--chunking", "markdown", stdin=stream())
    assert result.returncode == 0, result.stderr
    pieces = contents([result.stdout])
    assert "".join(pieces) == ANSWER
    assert MarkdownSpans().violations(ANSWER, cut_points(pieces)) == []
    bad = chunkline_cli("convert", "--chunking", "markdown:x", stdin=stream())
    assert bad.returncode == 2
    assert b"the argument is the most characters to hold back" in bad.stderr
