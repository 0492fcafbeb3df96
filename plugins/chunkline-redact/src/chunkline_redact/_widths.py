"""How far a secret pattern's matches reach, read from its parse tree: the fewest and most
characters a match consumes, and what matching reads before and after its start."""

from __future__ import annotations

from dataclasses import dataclass

# The parser behind re.compile. It is private, but it is the only exact source of what a pattern
# can match; sre_parse, its public alias, is deprecated and warns on import.
from re import _constants as _c  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

__all__ = ["INF", "ONE_CHAR", "REPEATS", "Extent", "constants", "extent", "parse", "seq_extent"]

constants: Any = _c
parse: Any = _parser.parse
INF = 1 << 62
ONE_CHAR = (_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN)
REPEATS = (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT)


@dataclass(frozen=True, slots=True)
class Extent:
    """What matching a pattern (or a part of one) consumes and reads."""

    low: int  # the fewest characters a match consumes
    high: int  # the most (INF: no bound)
    ahead: int  # the most characters from the match's start that matching may read
    behind: int  # the most characters before the start that lookbehinds and \b read
    peek: int = 0  # the most an assertion reads past the characters consumed when it runs


def _add(a: int, b: int) -> int:
    return INF if a >= INF or b >= INF else a + b


def seq_extent(items: Any) -> Extent:
    low = high = ahead = behind = peek = 0
    for op, av in items:
        item = extent(op, av)
        ahead = max(ahead, _add(high, item.ahead))
        behind = max(behind, item.behind - low)
        peek = max(peek, item.peek)
        low += item.low
        high = _add(high, item.high)
    return Extent(low, high, max(ahead, high), behind, peek)


def extent(op: Any, av: Any) -> Extent:
    if op in ONE_CHAR:
        return Extent(1, 1, 1, 0)
    if op is _c.AT:
        return Extent(0, 0, 1, 1, 1)  # \b, ^ and $ read the characters on both sides
    if op is _c.BRANCH:
        alternatives = [seq_extent(alt) for alt in av[1]]
        return Extent(
            min(a.low for a in alternatives),
            max(a.high for a in alternatives),
            max(a.ahead for a in alternatives),
            max(a.behind for a in alternatives),
            max(a.peek for a in alternatives),
        )
    if op is _c.SUBPATTERN:
        return seq_extent(av[3])
    if op is _c.ATOMIC_GROUP:
        return seq_extent(av)
    if op in REPEATS:
        least, most, body = av
        inner = seq_extent(body)
        if most == 0:
            return Extent(0, 0, 0, 0)
        high = INF if most is _c.MAXREPEAT or inner.high >= INF else most * inner.high
        ahead = INF if high >= INF else (most - 1) * inner.high + inner.ahead
        return Extent(least * inner.low, high, ahead, inner.behind, inner.peek)
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        direction, body = av
        inner = seq_extent(body)
        if direction == 1:  # lookahead
            return Extent(0, 0, inner.ahead, inner.behind, inner.ahead)
        forward = max(0, inner.ahead - inner.low)
        return Extent(0, 0, forward, inner.high + inner.behind, forward)
    if op in (_c.GROUPREF, _c.GROUPREF_EXISTS):
        raise ValueError("backreferences and conditional groups are not supported in secret patterns")
    raise ValueError(f"the regular-expression construct {op} is not supported in secret patterns")
