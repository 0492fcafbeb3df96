"""Secret patterns rebuilt from their parse tree: as one group-free regex each (to sit beside the
others), and as the prefix closure that tells whether a secret may still be coming."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ._shortcuts import alphabet, first_characters, required, score
from ._widths import INF, ONE_CHAR, REPEATS, extent, parse, seq_extent
from ._widths import constants as _c

__all__ = ["Analysis", "analyze"]

_FLAG_LETTERS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"), (re.ASCII, "a"))
_AT = {
    _c.AT_BEGINNING: "^",
    _c.AT_BEGINNING_STRING: r"\A",
    _c.AT_BOUNDARY: r"\b",
    _c.AT_NON_BOUNDARY: r"\B",
    _c.AT_END: "$",
    _c.AT_END_STRING: r"\Z",
}
_CATEGORY = {
    _c.CATEGORY_DIGIT: r"\d",
    _c.CATEGORY_NOT_DIGIT: r"\D",
    _c.CATEGORY_SPACE: r"\s",
    _c.CATEGORY_NOT_SPACE: r"\S",
    _c.CATEGORY_WORD: r"\w",
    _c.CATEGORY_NOT_WORD: r"\W",
}


@dataclass(frozen=True, slots=True)
class Analysis:
    """A checked pattern: ``scoped`` matches what the pattern matches, as a group-free regex
    that can sit beside others in one alternation; ``closure`` matches every text that can start
    a match's reach (what the regex engine reads) without completing it. ``max_length`` is the
    longest match, ``reach`` the most characters from a start the engine may read, ``context``
    the most it reads before the start."""

    scoped: str
    closure: str
    max_length: int
    reach: int
    context: int
    peek: int
    """The most characters an assertion reads past those consumed so far (\\b reads one)."""
    alphabet: frozenset[str] | None
    """Every character a match can consume, or None when that is not a small ASCII set."""
    first: frozenset[str] | None = None
    """The characters a text reaching into a match can start with (None: any)."""
    entry: str = "(?s:.)"
    """A regex for the places a match can start at: the pattern's leading lookbehinds, then one
    of ``first``."""
    gated: bool = False
    """Whether a positive lookbehind leads the pattern ("Bearer " before a token): then few
    places can start a match, and ``entry`` finds them faster than ``first`` does."""
    required: tuple[tuple[tuple[str, ...], bool], ...] = ()
    """Necessary conditions, most selective first: each is (texts, ignore case), and every
    match, with what its lookarounds read, contains one of the texts."""


def _char(code: int) -> str:
    char = chr(code)
    return char if char.isascii() and char.isalnum() else f"\\U{code:08x}"


def _flags(add: int, remove: int = 0) -> str:
    on = "".join(letter for flag, letter in _FLAG_LETTERS if add & flag)
    off = "".join(letter for flag, letter in _FLAG_LETTERS if remove & flag and flag != re.ASCII)
    return on + (f"-{off}" if off else "")


def _class(items: Any) -> str:
    parts: list[str] = []
    for op, av in items:
        if op is _c.NEGATE:
            parts.insert(0, "^")
        elif op is _c.LITERAL:
            parts.append(_char(av))
        elif op is _c.RANGE:
            parts.append(f"{_char(av[0])}-{_char(av[1])}")
        elif op is _c.CATEGORY:
            parts.append(_CATEGORY[av])
        else:
            raise ValueError(f"the character-class item {op} is not supported in secret patterns")
    return "[" + "".join(parts) + "]"


def _bound(least: int, most: Any) -> str:
    return f"{{{least},}}" if most is _c.MAXREPEAT else f"{{{least},{most}}}"


def _seq(items: Any) -> str:
    return "".join(_unparse(op, av) for op, av in items)


def _unparse(op: Any, av: Any) -> str:
    """The regex for one parsed item. Groups become non-capturing (only the caller's own group
    per pattern may capture); atomic groups and possessive repeats are kept."""
    if op is _c.LITERAL:
        return _char(av)
    if op is _c.NOT_LITERAL:
        return f"[^{_char(av)}]"
    if op is _c.ANY:
        return "."
    if op is _c.IN:
        return _class(av)
    if op is _c.AT:
        return _AT[av]
    if op is _c.BRANCH:
        return "(?:" + "|".join(_seq(alt) for alt in av[1]) + ")"
    if op is _c.SUBPATTERN:
        _group, add, remove, body = av
        flags = _flags(add, remove)
        return f"(?{flags}:{_seq(body)})"
    if op is _c.ATOMIC_GROUP:
        return f"(?>{_seq(av)})"
    if op in REPEATS:
        least, most, body = av
        suffix = "?" if op is _c.MIN_REPEAT else "+" if op is _c.POSSESSIVE_REPEAT else ""
        return f"(?:{_seq(body)}){_bound(least, most)}{suffix}"
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        direction, body = av
        positive = op is _c.ASSERT
        if direction == 1:
            return ("(?=" if positive else "(?!") + _seq(body) + ")"
        return ("(?<=" if positive else "(?<!") + _seq(body) + ")"
    raise ValueError(f"the regular-expression construct {op} is not supported in secret patterns")


def _loose(op: Any, av: Any) -> str:
    """Like _unparse, but without atomic groups and possessive repeats: used inside the prefix
    closure, which must accept every path the engine may try, not only the one it keeps."""
    if op is _c.ATOMIC_GROUP:
        return f"(?:{_loose_seq(av)})"
    if op is _c.BRANCH:
        return "(?:" + "|".join(_loose_seq(alt) for alt in av[1]) + ")"
    if op is _c.SUBPATTERN:
        _group, add, remove, body = av
        return f"(?{_flags(add, remove)}:{_loose_seq(body)})"
    if op in REPEATS:
        least, most, body = av
        suffix = "?" if op is _c.MIN_REPEAT else ""
        return f"(?:{_loose_seq(body)}){_bound(least, most)}{suffix}"
    return _unparse(op, av)


def _loose_seq(items: Any) -> str:
    return "".join(_loose(op, av) for op, av in items)


def _prefix_seq(items: Any) -> str:
    # A text reaches into the sequence i1 i2 ... in if it is i1 whole followed by a text reaching
    # into the rest, or a text reaching into i1 alone: P(i1 rest) = F(i1) P(rest) | P(i1).
    closure = ""
    for op, av in reversed(list(items)):
        closure = f"(?:{_loose(op, av)}{closure}|{_prefix(op, av)})"
    return closure


def _prefix(op: Any, av: Any) -> str:
    """The texts that the engine may read while matching this item and stop short of its end:
    every proper prefix of what the item matches, and, for assertions, of what they look at."""
    if op in ONE_CHAR:
        return ""
    if op is _c.AT:
        return "(?s:.?)"
    if op is _c.BRANCH:
        return "(?:" + "|".join(_prefix_seq(alt) for alt in av[1]) + ")"
    if op is _c.SUBPATTERN:
        _group, add, remove, body = av
        return f"(?{_flags(add, remove)}:{_prefix_seq(body)})"
    if op is _c.ATOMIC_GROUP:
        return _prefix_seq(av)
    if op in REPEATS:
        _least, most, body = av
        if most == 0:
            return ""
        if len(body) == 1 and body[0][0] in ONE_CHAR:
            return f"{_loose(*body[0])}{{0,{most - 1}}}"
        return f"(?:{_loose_seq(body)}){{0,{most - 1}}}{_prefix_seq(body)}"
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        reach = extent(op, av).ahead
        return f"(?s:.{{0,{reach}}})" if reach else ""
    raise ValueError(f"the regular-expression construct {op} is not supported in secret patterns")


def analyze(pattern: str, *, limit: int) -> Analysis:
    """Check a secret pattern and work out its bounds. Raises ``ValueError`` saying what is
    wrong: not a valid regex, able to match an empty string, or without a bounded length (or
    longer than ``limit`` characters)."""
    if not isinstance(pattern, str):
        raise ValueError(f"a pattern must be a regular expression in a str, not {pattern!r}")
    try:
        re.compile(pattern)
        parsed = parse(pattern, 0)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
    bounds = seq_extent(parsed.data)
    if bounds.high >= INF:
        raise ValueError(
            f"{pattern!r} has no upper bound on its length: a streamed secret must have a longest "
            "form, so write {m,n} instead of +, * or {m,}"
        )
    if bounds.low == 0:
        raise ValueError(
            f"{pattern!r} can match an empty string; a secret pattern must match at least one character"
        )
    if bounds.high > limit:
        raise ValueError(
            f"{pattern!r} can match up to {bounds.high} characters; the longest secret a pattern may "
            f"match is {limit} characters (text that may be a secret is held back until it is known)"
        )
    flags = _flags(parsed.state.flags)
    scoped = f"(?{flags}:{_seq(parsed.data)})" if flags else _seq(parsed.data)
    closure = _prefix_seq(parsed.data)
    closure = f"(?{flags}:{closure})" if flags else closure
    flag_bits = parsed.state.flags
    ignore_case = bool(flag_bits & re.IGNORECASE)
    characters = alphabet(parsed.data, ignore_case, bool(flag_bits & re.ASCII))
    needs = sorted(required(parsed.data, ignore_case), key=score, reverse=True)
    first, _nullable = first_characters(parsed.data, ignore_case, bool(flag_bits & re.ASCII))
    leading = ""
    gated = False
    for op, av in parsed.data:
        if op not in (_c.ASSERT, _c.ASSERT_NOT) or av[0] != -1:
            break
        leading += _unparse(op, av)
        gated = gated or op is _c.ASSERT
    start = "(?s:.)" if first is None else "[" + "".join(_char(ord(c)) for c in sorted(first)) + "]"
    entry = f"(?{flags}:{leading}{start})" if flags else leading + start
    return Analysis(
        scoped,
        closure,
        max_length=bounds.high,
        reach=max(bounds.ahead, bounds.high),
        context=max(bounds.behind, 1),
        peek=bounds.peek,
        alphabet=frozenset(characters) if characters is not None else None,
        first=frozenset(first) if first is not None else None,
        entry=entry,
        gated=gated,
        required=tuple(needs[:3]),
    )
