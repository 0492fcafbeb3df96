"""The server benchmark's processes: the fake upstream and ``chunkline serve``, and their RSS and CPU time."""

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


def start_fake_upstream() -> Process:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(FAKE_PATH))
    popen = subprocess.Popen(
        [sys.executable, "-c", "import fake_anthropic; fake_anthropic.main()"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert popen.stdout is not None
    line = popen.stdout.readline()
    if not line.strip().isdigit():
        popen.kill()
        raise RuntimeError(f"the fake upstream did not start: {line!r}")
    return Process("fake upstream", popen, int(line))


def start_server(upstream: str) -> Process:
    """``chunkline serve`` (one worker, pass-through keys, no access log) in front of ``upstream``."""
    port = free_port()
    env = dict(os.environ, CHUNKLINE_ACCESS_LOG="false", CHUNKLINE_LOG_LEVEL="warning")
    for name in ("CHUNKLINE_API_KEYS", "ANTHROPIC_API_KEY", "CHUNKLINE_WORKERS"):
        env.pop(name, None)
    chunkline = Path(sys.executable).parent / "chunkline"
    popen = subprocess.Popen(
        [str(chunkline), "serve", "--port", str(port), "--upstream", upstream],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    process = Process("chunkline serve", popen, port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"chunkline serve exited with {popen.returncode}")
        try:
            if httpx.get(f"{process.url}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.05)
    process.stop()
    raise RuntimeError("chunkline serve did not become healthy")
