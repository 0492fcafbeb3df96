"""Session-wide servers for the server tests: the fake upstreams and chunkline in front of them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_anthropic import FakeAnthropic
from fake_openai_chat import FakeOpenAIChat
from serverkit import SERVER_KEY, UPSTREAM_KEY, ServerThread

from chunkline.server.settings import Secret, Settings


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def chat_upstream() -> Iterator[FakeOpenAIChat]:
    """A fake OpenAI-compatible upstream, for the Messages front."""
    fake = FakeOpenAIChat().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def proxy(upstream: FakeAnthropic) -> Iterator[ServerThread]:
    """Pass-through keys, default timeouts."""
    server = ServerThread(Settings(upstream=upstream.url)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def keyed_proxy(upstream: FakeAnthropic) -> Iterator[ServerThread]:
    """The server's own keys; the upstream gets UPSTREAM_KEY. Models from the settings, an alias."""
    settings = Settings(
        upstream=upstream.url,
        api_keys=(Secret(SERVER_KEY), Secret("sk-second-key")),
        anthropic_api_key=Secret(UPSTREAM_KEY),
        models=("claude-sonnet-4-5", "claude-opus-4-1"),
        model_aliases={"gpt-4o": "echo"},
    )
    server = ServerThread(settings).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def quick_proxy(upstream: FakeAnthropic) -> Iterator[ServerThread]:
    """Short timeouts (a silent or endless upstream) and a small request size limit."""
    settings = Settings(
        upstream=upstream.url,
        first_byte_timeout=0.5,
        idle_timeout=0.5,
        stream_timeout=1.0,
        max_request_bytes=4096,
    )
    server = ServerThread(settings).start()
    yield server
    server.stop()
