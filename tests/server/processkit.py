"""Helpers for tests that run a real ``chunkline serve`` process on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from chunkline.server.settings import ENVIRONMENT

CHUNKLINE = Path(sys.executable).parent / "chunkline"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve(argv: list[str], environ: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``chunkline serve ARGV`` with only ``environ`` of the server's settings in its environment
    (stdout and stderr kept apart: the access lines go to stdout, the server's log to stderr)."""
    settings = {variable for variable, _ in ENVIRONMENT.values()} | {"CHUNKLINE_CONFIG"}
    env = {k: v for k, v in os.environ.items() if k not in settings}
    env.update(environ or {})
    return subprocess.Popen(
        [str(CHUNKLINE), "serve", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_healthy(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"chunkline serve exited: {process.communicate()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("chunkline serve did not become healthy")


def stop(process: subprocess.Popen[str], sig: int = signal.SIGINT, timeout: float = 20) -> tuple[str, str]:
    """Signal the server, wait for it to end and return its (stdout, stderr)."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"chunkline serve did not stop: {err}") from None
    return out, err
