"""The server benchmark's processes (fake upstream, floor, chunkline, LiteLLM proxy) and their RSS and CPU."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
# The fake upstream is the one the server tests use (tests/server/fake_anthropic.py), run on its own.
FAKE_PATH = [str(ROOT / "tests" / "server"), str(ROOT / "tests")]
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Process:
    """A child process whose memory and CPU time can be read from /proc."""

    def __init__(self, name: str, popen: subprocess.Popen[str], port: int) -> None:
        self.name = name
        self.popen = popen
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for {self.name}")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime + stime

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start_fake_upstream(python: str = sys.executable, module: str = "fake_anthropic") -> Process:
    """The fake upstream of ``module`` (``fake_anthropic``, or ``fake_openai_chat`` for an
    OpenAI-compatible one), run by ``python`` (one whose environment has the test dependencies)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(FAKE_PATH))
    popen = subprocess.Popen(
        [python, "-c", f"import {module}; {module}.main()"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    return Process("fake upstream", popen, _printed_port("the fake upstream", popen))


def _printed_port(name: str, popen: subprocess.Popen[str]) -> int:
    assert popen.stdout is not None
    line = popen.stdout.readline()
    if not line.strip().isdigit():
        popen.kill()
        raise RuntimeError(f"{name} did not start: {line!r}")
    return int(line)


def start_floor(upstream_port: int) -> Process:
    """The floor (floor_server.py): a bare asyncio relay in front of the fake upstream."""
    popen = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("floor_server.py")), str(upstream_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return Process("floor", popen, _printed_port("the floor", popen))


def _wait_healthy(process: Process, path: str, seconds: float) -> Process:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited with {process.popen.returncode}")
        try:
            if httpx.get(f"{process.url}{path}", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.stop()
    raise RuntimeError(f"{process.name} did not become healthy")


#: The LiteLLM proxy's master key (it refuses to start without a strong one); clients send it.
LITELLM_KEY = "sk-bench-" + "0123456789abcdef" * 4


def start_litellm(litellm: str, upstream: str, models: list[str], workdir: Path) -> Process:
    """The LiteLLM proxy (one worker, no database, no callbacks), each of ``models`` routed as
    ``anthropic/MODEL`` to ``upstream``, so it sends the fake upstream the model name it knows."""
    port = free_port()
    lines = ["model_list:"]
    for model in models:
        lines += [
            f'  - model_name: "{model}"',
            "    litellm_params:",
            f'      model: "anthropic/{model}"',
            f'      api_base: "{upstream}"',
            '      api_key: "sk-bench"',
        ]
    lines += ["litellm_settings:", "  drop_params: true", "  telemetry: false"]
    config = workdir / "litellm.yaml"
    config.write_text("\n".join(lines) + "\n")
    env = dict(
        os.environ, LITELLM_LOG="ERROR", LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False"
    )
    env["LITELLM_MASTER_KEY"] = LITELLM_KEY
    for name in ("DATABASE_URL", "ANTHROPIC_API_KEY"):
        env.pop(name, None)
    popen = subprocess.Popen(
        [litellm, "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "litellm.log").open("w"),
        text=True,
    )
    return _wait_healthy(Process("litellm proxy", popen, port), "/health/liveliness", 120)


def start_server(
    upstream: str,
    first_on_path: str | None = None,
    upstream_format: str | None = None,
    loop: str | None = None,
) -> Process:
    """``chunkline serve`` (one worker, pass-through keys, no access log) in front of ``upstream``
    (of ``upstream_format``, by default the Anthropic API); with ``first_on_path``, that folder
    first on the server's PYTHONPATH (a ``src`` folder: the chunkline package there rather than
    the one installed; or a folder with a ``sitecustomize``); with ``loop``, on that event loop
    (``--loop``) rather than the one it chooses."""
    port = free_port()
    env = dict(os.environ, CHUNKLINE_ACCESS_LOG="false", CHUNKLINE_LOG_LEVEL="warning")
    if first_on_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [first_on_path, env.get("PYTHONPATH")]))
    for name in (
        "CHUNKLINE_API_KEYS",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "CHUNKLINE_WORKERS",
        "CHUNKLINE_LOOP",
    ):
        env.pop(name, None)
    chunkline = Path(sys.executable).parent / "chunkline"
    form = ["--upstream-format", upstream_format] if upstream_format else []
    if loop is not None:
        form += ["--loop", loop]
    popen = subprocess.Popen(
        [str(chunkline), "serve", "--port", str(port), "--upstream", upstream, *form],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return _wait_healthy(Process("chunkline serve", popen, port), "/healthz", 30)
