"""The pytest fixtures of chunkline.testing (loaded through the pytest11 entry point; none is autouse)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from chunkline import Pipeline, StageSpec

from .streams import anthropic_stream, load_recording

__all__ = ["anthropic_stream_fixture", "chunkline_pipeline", "chunkline_recording"]


@pytest.fixture
def chunkline_pipeline() -> Callable[..., Pipeline]:
    """Build a ``chunkline.Pipeline`` from the built-in stages and the plugins you pass, and no
    installed plugin: ``chunkline_pipeline(plugins=[my_plugin], chunking="lines")``. Takes the
    arguments of ``Pipeline`` except ``load_entrypoints``."""

    def make(
        stages: Sequence[str | StageSpec] | None = None,
        *,
        plugins: Iterable[object] = (),
        block: Iterable[str] = (),
        **options: Any,
    ) -> Pipeline:
        return Pipeline(stages, plugins=plugins, load_entrypoints=False, block=block, **options)

    return make


@pytest.fixture(name="anthropic_stream")
def anthropic_stream_fixture() -> Callable[..., bytes]:
    """`chunkline.testing.anthropic_stream`: a complete Anthropic SSE stream from text
    deltas, thinking and tool calls, e.g. ``anthropic_stream("Hello, ", "world")``."""
    return anthropic_stream


@pytest.fixture
def chunkline_recording(request: pytest.FixtureRequest) -> Callable[[str | Path], bytes]:
    """Load a recorded Anthropic stream (``.sse`` or ``.jsonl``) as SSE bytes; a relative path
    is taken from the requesting test file's directory."""
    here = Path(request.path).parent

    def load(path: str | Path) -> bytes:
        return load_recording(here / path)

    return load
