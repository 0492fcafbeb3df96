"""Where a real CommonMark parser (markdown-it-py) puts the code spans, links, images, autolinks
and fenced code lines of a text: the places a cut would break, to check the policy's cuts by."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from markdown_it import MarkdownIt

__all__ = ["MarkdownSpans", "cut_points"]

# Inline rules whose matches are spans, and the token that shows a rule made one (the backticks
# rule also "matches" a backtick run it leaves as text).
_TRACKED = {
    "backticks": "code_inline",
    "link": "link_open",
    "image": "image",
    "autolink": "link_open",
}


class MarkdownSpans:
    """Parses a text with markdown-it-py (CommonMark) and lists where cutting it is forbidden."""

    def __init__(self) -> None:
        self.md = MarkdownIt("commonmark")
        self._found: list[tuple[str, int, int, str]] = []
        ruler = self.md.inline.ruler
        for name, token_type in _TRACKED.items():
            original = ruler.__rules__[ruler.__find__(name)].fn
            ruler.at(name, self._recording(name, original, token_type))

    def _recording(self, name: str, original: Callable[..., bool], token_type: str) -> Callable[..., bool]:
        def rule(state: Any, silent: bool) -> bool:
            start, count = state.pos, len(state.tokens)
            matched = original(state, silent)
            if matched and not silent and any(t.type == token_type for t in state.tokens[count:]):
                self._found.append((state.src, start, state.pos, name))
            return matched

        return rule

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """Every inline span as (start, end, kind) in ``text``, and every fenced code line as
        (line start, line end, "fence"): a cut strictly inside one breaks it."""
        env: dict[str, Any] = {}
        tokens = self.md.parse(text, env)
        lines = text.split("\n")
        starts = [0]
        for line in lines:
            starts.append(starts[-1] + len(line) + 1)
        out: list[tuple[int, int, str]] = []
        for token in tokens:
            if token.type == "fence" and token.map:
                for number in range(token.map[0], min(token.map[1], len(lines))):
                    # The whole line, its line break included: only its start is a place to cut.
                    out.append((starts[number], starts[number + 1], "fence"))
            elif token.type == "inline" and token.map:
                out += self._inline_spans(token, lines, starts, env)
        return out

    def _inline_spans(
        self, token: Any, lines: list[str], starts: list[int], env: dict[str, Any]
    ) -> list[tuple[int, int, str]]:
        content: str = token.content
        position = _positions(content, token.map[0], lines, starts)
        self._found = []
        self.md.inline.parse(content, self.md, env, [])
        spans = []
        for source, start, end, kind in self._found:
            if source is content or source == content:
                spans.append((position[start], position[end - 1] + 1, kind))
        return spans

    def violations(self, text: str, cuts: Iterable[int]) -> list[str]:
        """The cuts that fall strictly inside a span, described."""
        spans = self.spans(text)
        bad = []
        for cut in cuts:
            for start, end, kind in spans:
                if start < cut < end:
                    bad.append(f"cut at {cut} inside {kind} {text[start:end]!r}")
        return bad


def _positions(content: str, first_line: int, lines: list[str], starts: list[int]) -> list[int]:
    """Where each character of a paragraph's inline content sits in the source: each content line
    is the end of its source line (containers' prefixes and indentation removed), the first one
    stripped of leading and the last one of trailing whitespace."""
    parts = content.split("\n")
    out: list[int] = []
    for number, part in enumerate(parts):
        source = lines[first_line + number]
        end = len(source.rstrip(" \t")) if number == len(parts) - 1 else len(source)
        offset = end - len(part)
        if source[offset:end] != part:
            # An ATX heading's text sits between its markers; and the parser may have turned
            # tabs of a line's indentation into spaces. No span starts or ends in indentation,
            # so leading whitespace is placed where the line's text begins.
            core = part.lstrip(" \t")
            offset = source.find(core) if core else end
            assert offset >= 0 and source[offset : offset + len(core)] == core, (source, part)
            offset -= len(part) - len(core)
        base = starts[first_line + number] + offset
        out += [base + i for i in range(len(part))]
        out.append(base + len(part))  # the line break after it
    return out


def cut_points(pieces: list[str]) -> list[int]:
    """Where a list of pieces cuts their joined text (not at its ends)."""
    points = []
    total = 0
    for piece in pieces[:-1]:
        total += len(piece)
        points.append(total)
    return [p for p in points if 0 < p < total + len(pieces[-1])] if pieces else []
