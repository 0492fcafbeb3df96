"""End to end: the example plugins in plugins/, installed into the environment as `make test` does,
are found through their entry points and used by name from code and from the installed command."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import chunkline
from chunkline import DEFAULT_STAGES, Pipeline, default_stages
from harness import CREATED, openai_stream_create
from minimal_streams import text_sse

DISTRIBUTIONS = {"redact": "chunkline-redact", "markdown": "chunkline-markdown"}

EMAIL = "alice.smith@example.com"
KEY = "sk-ant-api03-" + "Zq7Xw2Rt9Lm4Pv8Kc1Bn6Hy3Df5Gj0Ts" * 3 + "-AbCdEfGh"
SECRET_TEXT = ("Write to ", "alice.sm", "ith@exam", "ple.com with the key ", KEY[:20], KEY[20:], " please.")
MARKDOWN_TEXT = (
    "Run `pip ",
    "install chunk",
    "line` and see [the ",
    "docs](https://exa",
    "mple.com/docs).\n",
)


@pytest.fixture(autouse=True, scope="module")
def _installed() -> None:
    for name, distribution in DISTRIBUTIONS.items():
        try:
            importlib.metadata.distribution(distribution)
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{distribution} is not installed: `make test` installs plugins/{distribution} first")
        found = [ep for ep in importlib.metadata.entry_points(group="chunkline") if ep.name == name]
        assert len(found) == 1, f"entry point {name!r} in group 'chunkline' not found exactly once: {found}"


@pytest.fixture(autouse=True)
def _no_disabled_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHUNKLINE_DISABLE_PLUGINS", raising=False)


def program(
    *args: str, env: dict[str, str] | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """The installed console script, as a user runs it."""
    script = Path(sys.executable).parent / "chunkline"
    return subprocess.run(
        [str(script), *args], input=stdin, capture_output=True, timeout=60, env={**os.environ, **(env or {})}
    )


def test_the_plugins_are_listed_with_their_versions_and_registrations() -> None:
    done = program("plugins", "--json")
    assert done.returncode == 0, done.stderr
    listed = {row["name"]: row for row in json.loads(done.stdout)}
    for name, distribution in DISTRIBUTIONS.items():
        row = listed[name]
        assert row["version"] == importlib.metadata.version(distribution)
        assert row["source"].startswith(f"{distribution} (entry point ")
    assert (listed["redact"]["stages"], listed["redact"]["policies"]) == (["redact"], [])
    assert (listed["markdown"]["stages"], listed["markdown"]["policies"]) == ([], ["markdown"])

    text = program("plugins").stdout.decode()
    redact_line = next(line for line in text.splitlines() if line.startswith("redact "))
    assert importlib.metadata.version("chunkline-redact") in redact_line.split()
    assert redact_line.endswith("stage redact")


def test_chunkline_stages_lists_them() -> None:
    done = program("stages", "--json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    redact = next(row for row in listing["stages"] if row["name"] == "redact")
    assert (redact["plugin"], redact["default"], redact["optional"]) == ("redact", False, True)
    assert redact["version"] == importlib.metadata.version("chunkline-redact")
    assert redact["options"], "the redact stage declares its options"
    markdown = next(row for row in listing["chunking_policies"] if row["name"] == "markdown")
    assert markdown["plugin"] == "markdown"
    text = program("stages").stdout.decode()
    assert any(line.startswith("+ redact  [redact ") for line in text.splitlines())
    assert any(line.split()[:1] == ["markdown"] for line in text.splitlines())


def test_installing_them_leaves_the_default_pipeline_alone() -> None:
    assert default_stages() == DEFAULT_STAGES
    assert Pipeline().stage_names == DEFAULT_STAGES
    assert Pipeline(created=CREATED).convert(text_sse(EMAIL)) == Pipeline(
        created=CREATED, load_entrypoints=False
    ).convert(text_sse(EMAIL))


def _client_content(output: bytes) -> str:
    return openai_stream_create(output).content or ""


def test_from_code() -> None:
    stages = default_stages().add("redact")
    assert stages[stages.index("tool_calls") + 1] == "redact"
    pipeline = Pipeline(stages, chunking="markdown", created=CREATED)
    content = _client_content(b"".join(pipeline.convert(text_sse(*SECRET_TEXT, *MARKDOWN_TEXT))))
    assert EMAIL not in content
    assert KEY not in content
    assert content.startswith("Write to ")
    assert content.endswith("".join(MARKDOWN_TEXT))

    markdown_only = Pipeline(chunking="markdown", created=CREATED)
    pieces = _content_pieces(b"".join(markdown_only.convert(text_sse(*MARKDOWN_TEXT))))
    assert "".join(pieces) == "".join(MARKDOWN_TEXT)
    for piece in pieces:  # no cut inside the code span or the link
        assert piece.count("`") % 2 == 0, pieces
        assert piece.count("[") == piece.count(")"), pieces


def _content_pieces(output: bytes) -> list[str]:
    pieces: list[str] = []
    for frame in output.split(b"\n\n"):
        if frame.startswith(b"data: {"):
            body: dict[str, Any] = json.loads(frame[6:])
            delta = body["choices"][0]["delta"] if body.get("choices") else {}
            if delta.get("content"):
                pieces.append(delta["content"])
    return pieces


def test_from_the_command_line(tmp_path: Path) -> None:
    source = tmp_path / "in.sse"
    source.write_bytes(text_sse(*SECRET_TEXT, *MARKDOWN_TEXT))
    done = program("convert", str(source), "--add", "redact", "--chunking", "markdown")
    assert done.returncode == 0, done.stderr
    content = _client_content(done.stdout)
    assert EMAIL not in content and KEY not in content
    assert content.endswith("".join(MARKDOWN_TEXT))

    plain = program("convert", "-", stdin=source.read_bytes())
    assert EMAIL in _client_content(plain.stdout)


def test_blocking_them_by_name(tmp_path: Path) -> None:
    blocked = program("stages", "--json", env={"CHUNKLINE_DISABLE_PLUGINS": "redact,markdown"})
    listing = json.loads(blocked.stdout)
    assert "redact" not in {row["name"] for row in listing["stages"]}
    assert "markdown" not in {row["name"] for row in listing["chunking_policies"]}

    source = tmp_path / "in.sse"
    source.write_bytes(text_sse("hi"))
    refused = program("convert", str(source), "--add", "redact", "--block", "redact")
    assert refused.returncode == 2
    assert b"unknown stage 'redact'" in refused.stderr

    with pytest.raises(chunkline.OptionError, match="unknown policy 'markdown'"):
        Pipeline(chunking="markdown", block=["markdown"])
