"""A newcomer's plugin, built exactly as docs/writing-a-policy.md says: the module and pyproject.toml
taken from the page, installed for real, found by its entry point and used by name; and every code
block of the plugin-author pages, and every Python block of the example plugins' READMEs, run as
written."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import chunkline
from chunkline.testing import AnthropicStream, assert_lossless, read_openai_stream

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
POLICY_PAGE = DOCS / "writing-a-policy.md"
# The other plugin-author pages (writing-a-policy.md runs with its plugin installed, below).
PAGES = ["writing-a-stage.md", "testing-plugins.md", "example-plugins.md", "writing-a-format.md"]
# The example plugins' READMEs, whose examples use the plugins as installed (by entry point).
READMES = [ROOT / "plugins" / name / "README.md" for name in ("chunkline-redact", "chunkline-markdown")]
# A fenced block: its fence, its language and an optional title="...", then its code.
_BLOCK = re.compile(
    r"^(?P<fence>`{3,})(?P<lang>[\w-]*)(?P<info>[^\n]*)\n(?P<code>.*?)^(?P=fence)[ \t]*$", re.M | re.S
)
_TITLE = re.compile(r'title="([^"]+)"')


def code_blocks(page: Path) -> list[tuple[str, str | None, str]]:
    """The fenced code blocks of a docs page: (language, title or None, code), in order."""
    blocks = []
    for match in _BLOCK.finditer(page.read_text()):
        title = _TITLE.search(match["info"])
        blocks.append((match["lang"], title.group(1) if title else None, match["code"]))
    return blocks


def titled(page: Path) -> dict[str, str]:
    """The blocks that stand for files (``title="name"``), by file name."""
    return {title: code for _lang, title, code in code_blocks(page) if title}


def environment(*paths: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CHUNKLINE_DISABLE_PLUGINS", "PYTHONPATH")}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
    return env


def run(
    args: list[str], env: dict[str, str], cwd: Path, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, input=stdin, env=env, cwd=cwd, capture_output=True, timeout=120, check=False)


def answer_stream() -> bytes:
    return AnthropicStream().text("First para", "graph.\n", "\nSecond one.\n\nThi", "rd").stop().sse()


def contents(output: bytes | list[bytes]) -> list[str]:
    chunks = read_openai_stream(output).chunks
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]
    return [delta["content"] for delta in deltas if delta.get("content")]


# -- the policy plugin from the page, installed --------------------------------------------------


def install_from_page(page: Path, module: str, base: Path) -> Path:
    """A plugin project made of a page's ``module`` and ``pyproject.toml`` blocks, pip-installed
    (offline, with the hatchling of this environment) into a directory of its own, returned."""
    files = titled(page)
    assert {module, "pyproject.toml"} <= set(files), f"{page.name} lost its module or its pyproject.toml"
    project = base / "project"
    project.mkdir()
    for name in (module, "pyproject.toml"):
        (project / name).write_text(files[name])
    site = base / "site"
    result = run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(project),
        ],
        environment(),
        base,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert (site / module).exists()
    return site


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The policy plugin of writing-a-policy.md, installed."""
    return install_from_page(POLICY_PAGE, "chunkline_paragraphs.py", tmp_path_factory.mktemp("paragraphs"))


def test_the_installed_plugin_is_listed_with_its_version(installed: Path) -> None:
    env = environment(installed)
    plugins = run([sys.executable, "-m", "chunkline", "plugins", "--json"], env, installed)
    assert plugins.returncode == 0, plugins.stderr.decode()
    found = [p for p in json.loads(plugins.stdout) if p["name"] == "paragraphs"]
    assert found and found[0]["version"] == "0.1.0"
    assert "chunkline-paragraphs" in found[0]["source"]
    stages = run([sys.executable, "-m", "chunkline", "stages"], env, installed)
    assert stages.returncode == 0, stages.stderr.decode()
    assert "paragraphs[:N] - a paragraph at a time." in stages.stdout.decode()


def test_the_cli_uses_the_installed_policy_by_name(installed: Path) -> None:
    env = environment(installed)
    result = run(
        [sys.executable, "-m", "chunkline", "convert", "--chunking", "paragraphs"],
        env,
        installed,
        answer_stream(),
    )
    assert result.returncode == 0, result.stderr.decode()
    assert contents(result.stdout) == ["First paragraph.\n\n", "Second one.\n\n", "Third"]
    bounded = run(
        [sys.executable, "-m", "chunkline", "convert", "--chunking", "paragraphs:5"],
        env,
        installed,
        answer_stream(),
    )
    assert contents(bounded.stdout) == ["First para", "graph.\n", "\nSecond one.\n\n", "Third"]
    bad = run(
        [sys.executable, "-m", "chunkline", "convert", "--chunking", "paragraphs:x"],
        env,
        installed,
        answer_stream(),
    )
    assert bad.returncode == 2
    assert b"chunking: 'paragraphs:x': the argument is a number of characters, not 'x'" in bad.stderr
    blocked = env | {"CHUNKLINE_DISABLE_PLUGINS": "paragraphs"}
    gone = run(
        [sys.executable, "-m", "chunkline", "convert", "--chunking", "paragraphs"],
        blocked,
        installed,
        answer_stream(),
    )
    assert gone.returncode == 2
    assert b"unknown policy 'paragraphs'" in gone.stderr


def test_code_finds_the_installed_policy_by_name(installed: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, chunkline
        pipeline = chunkline.Pipeline(chunking="paragraphs")
        assert "chunkline_paragraphs" in sys.modules  # loaded through its entry point
        sys.stdout.buffer.write(b"".join(pipeline.convert(sys.stdin.buffer.read())))
        """
    )
    result = run([sys.executable, "-c", script], environment(installed), installed, answer_stream())
    assert result.returncode == 0, result.stderr.decode()
    assert contents(result.stdout) == ["First paragraph.\n\n", "Second one.\n\n", "Third"]


def test_the_page_python_blocks_run_with_the_plugin_installed(installed: Path) -> None:
    script = "\n\n".join(
        code for lang, title, code in code_blocks(POLICY_PAGE) if lang == "python" and not title
    )
    result = run([sys.executable, "-c", script], environment(installed), installed)
    assert result.returncode == 0, result.stderr.decode()


# -- the stage plugin of writing-a-stage.md, installed ---------------------------------------------


def test_the_stage_plugin_from_its_page_installs_and_is_switched_on_by_name(tmp_path: Path) -> None:
    site = install_from_page(DOCS / "writing-a-stage.md", "chunkline_smileys.py", tmp_path)
    env = environment(site)
    stages = run([sys.executable, "-m", "chunkline", "stages", "--json"], env, site)
    assert stages.returncode == 0, stages.stderr.decode()
    assert "smileys" in stages.stdout.decode()
    data = AnthropicStream().text("Hi :", ") there").stop().sse()
    command = [sys.executable, "-m", "chunkline", "convert"]
    assert contents(run(command, env, site, data).stdout) == ["Hi :", ") there"]  # optional: off unless added
    added = run([*command, "--add", "smileys", "--option", "smiley=😀"], env, site, data)
    assert added.returncode == 0, added.stderr.decode()
    assert "".join(contents(added.stdout)) == "Hi 😀 there"
    blocked = run([*command, "--add", "smileys", "--block", "smileys"], env, site, data)
    assert blocked.returncode == 2
    assert b"smileys" in blocked.stderr


# -- the format plugin of writing-a-format.md, installed --------------------------------------------


OLLAMA_LINES = (
    b'{"model":"llama3.2","created_at":"2026-12-02T10:00:00Z","message":{"role":"assistant","content":"Hi"},'
    b'"done":false}\n'
    b'{"model":"llama3.2","message":{"role":"assistant","content":" there"},"done":true,'
    b'"done_reason":"stop","prompt_eval_count":5,"eval_count":2}\n'
)


def test_the_format_plugin_from_its_page_installs_and_gives_every_route(tmp_path: Path) -> None:
    site = install_from_page(DOCS / "writing-a-format.md", "chunkline_ollama.py", tmp_path)
    env = environment(site)
    routes = run([sys.executable, "-m", "chunkline", "routes", "--json"], env, site)
    assert routes.returncode == 0, routes.stderr.decode()
    listing = json.loads(routes.stdout)
    assert {"name": "ollama-chat"}.items() <= next(
        row for row in listing["formats"] if row["name"] == "ollama-chat"
    ).items()
    assert any(r["source"] == "ollama-chat" and r["target"] == "openai-chat" for r in listing["routes"])
    command = [sys.executable, "-m", "chunkline", "convert", "--from", "ollama-chat"]
    converted = run(command, env, site, OLLAMA_LINES)
    assert converted.returncode == 0, converted.stderr.decode()
    assert "".join(contents(converted.stdout)) == "Hi there"
    cut = run(command, env, site, OLLAMA_LINES[:-20])
    assert b"upstream_truncated" in cut.stdout and b'"finish_reason":"stop"' not in cut.stdout


# -- the same module, passed as a plugin object -----------------------------------------------------


def load_module(name: str, source: str, directory: Path) -> ModuleType:
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_module_works_as_a_plugin_object(tmp_path: Path) -> None:
    module = load_module("chunkline_paragraphs", titled(POLICY_PAGE)["chunkline_paragraphs.py"], tmp_path)
    pipeline = chunkline.Pipeline(plugins=[module], load_entrypoints=False, chunking="paragraphs", created=0)
    assert contents(pipeline.convert(answer_stream())) == ["First paragraph.\n\n", "Second one.\n\n", "Third"]
    assert_lossless("paragraphs:3", ["a\n", "\nbb", "b\n\n\nc"], plugins=[module], load_entrypoints=False)
    with pytest.raises(chunkline.OptionError, match="the argument is a number of characters"):
        chunkline.Pipeline(plugins=[module], load_entrypoints=False, chunking="paragraphs:0")


# -- every code block of the plugin-author pages ------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_the_python_blocks_of_a_plugin_page_run_as_written(page: str, tmp_path: Path) -> None:
    """Blocks with a file title are written as files (modules on the path, tests run with pytest);
    the other Python blocks run in order, in one interpreter, as a reader would paste them."""
    blocks = code_blocks(DOCS / page)
    python = [code for lang, title, code in blocks if lang == "python" and not title]
    assert python, f"{page} has no Python example"
    tests = []
    for _lang, title, code in blocks:
        if title and title.endswith(".py"):
            (tmp_path / title).write_text(code)
            if title.startswith("test_"):
                tests.append(title)
    env = environment(
        tmp_path,
        ROOT / "plugins" / "chunkline-redact" / "src",
        ROOT / "plugins" / "chunkline-markdown" / "src",
    )
    result = run([sys.executable, "-c", "\n\n".join(python)], env, tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    for test in tests:
        outcome = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test], env, tmp_path)
        assert outcome.returncode == 0, outcome.stdout.decode() + outcome.stderr.decode()


@pytest.mark.parametrize("readme", READMES, ids=lambda path: path.parent.name)
def test_the_python_blocks_of_an_example_plugin_readme_run_as_written(readme: Path, tmp_path: Path) -> None:
    python = [code for lang, _title, code in code_blocks(readme) if lang == "python"]
    assert python, f"{readme} has no Python example"
    result = run([sys.executable, "-c", "\n\n".join(python)], environment(), tmp_path)
    assert result.returncode == 0, result.stderr.decode()
