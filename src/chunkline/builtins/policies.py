"""The built-in chunking policies: passthrough, words:N, chars:N and sentences, all lossless."""

from __future__ import annotations

import re
from typing import Any

from ..hookspecs import hookimpl
from ..stage import ChunkPolicy, ChunkPolicySpec

__all__ = ["Characters", "Passthrough", "Sentences", "Words", "register_chunking_policies"]


class Passthrough:
    """Every fragment goes out as it came in. ``passthrough = True`` lets the chunker stage step
    out of the way entirely."""

    passthrough = True

    def feed(self, text: str) -> list[str]:
        return [text]

    def flush(self) -> list[str]:
        return []


class _Holding:
    """A policy that holds text until it finds a place to cut."""

    def __init__(self) -> None:
        self._held = ""

    def flush(self) -> list[str]:
        held, self._held = self._held, ""
        return [held] if held else []


# A word ends where whitespace follows it; the whitespace starts the next piece, so pieces read
# "Hello there my", " dear friend" and joining them gives back the text exactly.
_WORD_END = re.compile(r"\s*\S+(?=\s)")


class Words(_Holding):
    """Pieces of ``n`` words; whitespace, newlines included, is kept exactly."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self._n = n

    def feed(self, text: str) -> list[str]:
        held = self._held + text
        pieces = []
        start = count = 0
        for match in _WORD_END.finditer(held):
            count += 1
            if count == self._n:
                pieces.append(held[start : match.end()])
                start, count = match.end(), 0
        self._held = held[start:]
        return pieces


class Characters(_Holding):
    """Pieces of exactly ``n`` characters (code points); the rest waits for more text."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self._n = n

    def feed(self, text: str) -> list[str]:
        held = self._held + text
        n = self._n
        cut = len(held) - len(held) % n
        self._held = held[cut:]
        return [held[i : i + n] for i in range(0, cut, n)]


# The end of a sentence: terminal punctuation, any closing quotes or brackets, then whitespace;
# or a line break. The piece ends after that whitespace.
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u201d\u2019)\]]*\s+|\n+")


class Sentences(_Holding):
    """One piece per sentence (or line), cut after the whitespace that ends it."""

    def feed(self, text: str) -> list[str]:
        held = self._held + text
        pieces = []
        start = 0
        for match in _SENTENCE_END.finditer(held):
            if match.end() == len(held):
                break  # more whitespace may follow in the next fragment; keep it together
            pieces.append(held[start : match.end()])
            start = match.end()
        self._held = held[start:]
        return pieces


def _count(arg: str | None, default: int) -> int:
    if arg is None or arg == "":
        return default
    if not arg.isdigit() or int(arg) < 1:
        raise ValueError(f"the argument must be a whole number of at least 1, not {arg!r}")
    return int(arg)


def _no_argument(name: str, arg: str | None) -> None:
    if arg is not None:
        raise ValueError(f"policy {name!r} takes no argument, but got {arg!r}")


def _passthrough(arg: str | None) -> ChunkPolicy:
    _no_argument("passthrough", arg)
    return Passthrough()


def _sentences(arg: str | None) -> ChunkPolicy:
    _no_argument("sentences", arg)
    return Sentences()


@hookimpl
def register_chunking_policies(register: Any) -> None:
    register(ChunkPolicySpec("passthrough", _passthrough, "One delta per upstream text delta."))
    register(
        ChunkPolicySpec(
            "words", lambda arg: Words(_count(arg, 3)), "words:N - pieces of N words (default 3)."
        )
    )
    register(
        ChunkPolicySpec(
            "chars",
            lambda arg: Characters(_count(arg, 16)),
            "chars:N - pieces of N characters (default 16).",
        )
    )
    register(ChunkPolicySpec("sentences", _sentences, "One piece per sentence or line."))
