"""chunkline-redact: a chunkline stage that masks secrets in streamed text and tool-call arguments."""

from __future__ import annotations

from typing import Any

import chunkline

from .patterns import BUILTIN_PATTERNS, DEFAULT_REPLACEMENT, MAX_SECRET_LENGTH, PatternSet, redact_text
from .stage import SPEC, Redactor

__all__ = [
    "BUILTIN_PATTERNS",
    "DEFAULT_REPLACEMENT",
    "MAX_SECRET_LENGTH",
    "SPEC",
    "PatternSet",
    "Redactor",
    "redact_text",
    "register_stages",
]


@chunkline.hookimpl
def register_stages(register: Any) -> None:
    """Register the ``redact`` stage. It is optional: add it to a stage list by name
    (``chunkline.default_stages().add("redact")``, ``chunkline convert --add redact``), and it
    takes its place after ``tool_calls``, before the chunker."""
    register(SPEC)
