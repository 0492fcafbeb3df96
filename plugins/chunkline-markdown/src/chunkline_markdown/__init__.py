"""chunkline-markdown: a chunking policy that never cuts a Markdown code span, code line or link."""

from __future__ import annotations

from typing import Any

import chunkline

from .policy import MarkdownPolicy, make_policy

__all__ = ["SPEC", "MarkdownPolicy", "register_chunking_policies"]

SPEC = chunkline.ChunkPolicySpec(
    "markdown",
    make_policy,
    "markdown[:N] - as soon as possible, never inside a code span, fenced code line or link "
    "(N: hold at most N characters).",
)


@chunkline.hookimpl
def register_chunking_policies(register: Any) -> None:
    """Register the ``markdown`` policy: ``Pipeline(chunking="markdown")``."""
    register(SPEC)
