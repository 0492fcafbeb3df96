"""Installing and releasing: the wheel in a fresh venv, make's targets, the Dockerfile, the changelog."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import chunkline

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.install
def test_the_built_wheel_installs_into_a_fresh_venv_and_serves(tmp_path: Path) -> None:
    """What `make dist` builds, installed with the server extra as the README says, into a venv
    with nothing else in it. Slow-ish (about 10 s): the wheel is built without build isolation
    (hatchling is in the dev extra), and pip fetches the dependencies (its cache makes a second
    run fast). Deselect with `-m 'not install'`."""
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("chunkline-*.whl")
    assert wheel.name == f"chunkline-{chunkline.__version__}-py3-none-any.whl"
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # This environment's pip installs into the fresh one (--python), which saves bootstrapping pip.
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--disable-pip-version-check", f"{wheel}[server]"],
        check=True,
    )  # fmt: skip
    help_text = subprocess.run(
        [str(venv / "bin" / "chunkline"), "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert help_text.startswith("usage: chunkline serve") and "--print-config" in help_text
    # The server's dependencies came with the extra: the app builds, with its metrics.
    code = "from chunkline.server.app import create_app; create_app(); import prometheus_client"
    subprocess.run([str(python), "-c", code], check=True, cwd=tmp_path)


def _make_dry_run(*args: str) -> str:
    return subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_make_demo_full_passes_full() -> None:
    assert "-m chunkline.demo --full" in _make_dry_run("demo", "FULL=1")
    assert "--full" not in _make_dry_run("demo")


def test_make_dist_builds_the_sdist_and_the_wheel() -> None:
    commands = _make_dry_run("dist")
    assert "-m build --outdir dist ." in commands  # both kinds: build's default


def _instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile's instructions, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_the_dockerfile() -> None:
    """Docker does not run where chunkline is built and tested, so the image is never built
    here; this checks what the Dockerfile says against what docs/server.md promises."""
    instructions = _instructions(ROOT / "Dockerfile")
    keywords = [k for k, _ in instructions]
    assert set(keywords) <= {
        "FROM",
        "WORKDIR",
        "COPY",
        "RUN",
        "ENV",
        "USER",
        "EXPOSE",
        "HEALTHCHECK",
        "STOPSIGNAL",
        "ENTRYPOINT",
        "CMD",
    }
    final = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    assert re.fullmatch(r"python:3\.1[1-3]-slim", final[0][1]), final[0]
    users = [rest for k, rest in final if k == "USER"]
    assert users and users[-1] not in ("root", "0"), "the server must not run as root"
    assert ("EXPOSE", "8080") in final
    (healthcheck,) = [rest for k, rest in final if k == "HEALTHCHECK"]
    assert "http://127.0.0.1:8080/healthz" in healthcheck
    installs = " ".join(rest for k, rest in final if k == "RUN")
    assert "[server]" in installs and ".whl" in installs
    (entrypoint,) = [rest for k, rest in final if k == "ENTRYPOINT"]
    (cmd,) = [rest for k, rest in final if k == "CMD"]
    command = [
        *shlex.split(entrypoint.strip("[]").replace(",", " ")),
        *shlex.split(cmd.strip("[]").replace(",", " ")),
    ]
    assert command == ["chunkline", "serve", "--host", "0.0.0.0", "--port", "8080"]
    assert ("STOPSIGNAL", "SIGTERM") in final
    documented = (ROOT / "docs" / "server.md").read_text()
    assert "docker run --rm -p 8080:8080" in documented and "docker build -t chunkline ." in documented
    # What the image copies exists, and what it must not copy is ignored.
    for source in ("pyproject.toml", "README.md", "LICENSE", "src"):
        assert (ROOT / source).exists()
    assert {".venv", ".git", "dist"} <= set((ROOT / ".dockerignore").read_text().split())


def test_the_changelog_keeps_a_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n") and "https://keepachangelog.com/en/1.1.0/" in text
    versions = re.findall(r"^## \[([^\]]+)\]", text, re.MULTILINE)
    assert versions[0] == "Unreleased" and chunkline.__version__ in versions
    sections = set(re.findall(r"^### (\w+)$", text, re.MULTILINE))
    assert sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    assert "docs/versioning.md" in text


def test_the_versioning_policy_names_the_hooks_and_how_they_are_deprecated() -> None:
    text = (ROOT / "docs" / "versioning.md").read_text()
    for name in ("register_stages", "register_chunking_policies", "StageSpec", "Stage", "chunkline.events"):
        assert f"`{name}" in text, name
    assert "DeprecationWarning" in text and "## How a hook (or any stable name) is deprecated" in text


def test_the_readme_shows_both_ways_to_install() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "pip install 'dist/chunkline-*.whl[server]'" in readme
    assert "pip install -e '.[server]'" in readme
    assert "make dist" in readme
