"""What a secret pattern can match, read from its parse tree: length bounds, how far it looks, and
the regexes rebuilt from it (scoped, and the prefix closure that says a secret may still be coming)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# The parser behind re.compile. It is private, but it is the only exact source of what a pattern
# can match; sre_parse, its public alias, is deprecated and warns on import.
from re import _constants as _c  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

__all__ = ["Analysis", "analyze"]

_INF = 1 << 62
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
_ONE_CHAR = (_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN)
_REPEATS = (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT)


@dataclass(frozen=True, slots=True)
class _Extent:
    low: int  # the fewest characters a match consumes
    high: int  # the most (_INF: no bound)
    ahead: int  # the most characters from the match's start that matching may read
    behind: int  # the most characters before the start that lookbehinds and \b read
    peek: int = 0  # the most an assertion reads past the characters consumed when it runs


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


def _add(a: int, b: int) -> int:
    return _INF if a >= _INF or b >= _INF else a + b


def _seq_extent(items: Any) -> _Extent:
    low = high = ahead = behind = peek = 0
    for op, av in items:
        item = _extent(op, av)
        ahead = max(ahead, _add(high, item.ahead))
        behind = max(behind, item.behind - low)
        peek = max(peek, item.peek)
        low += item.low
        high = _add(high, item.high)
    return _Extent(low, high, max(ahead, high), behind, peek)


def _extent(op: Any, av: Any) -> _Extent:
    if op in _ONE_CHAR:
        return _Extent(1, 1, 1, 0)
    if op is _c.AT:
        return _Extent(0, 0, 1, 1, 1)  # \b, ^ and $ read the characters on both sides
    if op is _c.BRANCH:
        alternatives = [_seq_extent(alt) for alt in av[1]]
        return _Extent(
            min(a.low for a in alternatives),
            max(a.high for a in alternatives),
            max(a.ahead for a in alternatives),
            max(a.behind for a in alternatives),
            max(a.peek for a in alternatives),
        )
    if op is _c.SUBPATTERN:
        return _seq_extent(av[3])
    if op is _c.ATOMIC_GROUP:
        return _seq_extent(av)
    if op in _REPEATS:
        least, most, body = av
        inner = _seq_extent(body)
        if most == 0:
            return _Extent(0, 0, 0, 0)
        high = _INF if most is _c.MAXREPEAT or inner.high >= _INF else most * inner.high
        ahead = _INF if high >= _INF else (most - 1) * inner.high + inner.ahead
        return _Extent(least * inner.low, high, ahead, inner.behind, inner.peek)
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        direction, body = av
        inner = _seq_extent(body)
        if direction == 1:  # lookahead
            return _Extent(0, 0, inner.ahead, inner.behind, inner.ahead)
        forward = max(0, inner.ahead - inner.low)
        return _Extent(0, 0, forward, inner.high + inner.behind, forward)
    if op in (_c.GROUPREF, _c.GROUPREF_EXISTS):
        raise ValueError("backreferences and conditional groups are not supported in secret patterns")
    raise ValueError(f"the regular-expression construct {op} is not supported in secret patterns")


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
    if op in _REPEATS:
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
    if op in _REPEATS:
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
    if op in _ONE_CHAR:
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
    if op in _REPEATS:
        _least, most, body = av
        if most == 0:
            return ""
        if len(body) == 1 and body[0][0] in _ONE_CHAR:
            return f"{_loose(*body[0])}{{0,{most - 1}}}"
        return f"(?:{_loose_seq(body)}){{0,{most - 1}}}{_prefix_seq(body)}"
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        reach = _extent(op, av).ahead
        return f"(?s:.{{0,{reach}}})" if reach else ""
    raise ValueError(f"the regular-expression construct {op} is not supported in secret patterns")


_Need = tuple[tuple[str, ...], bool]  # any one of these texts must be present; compared ignoring case?


def _score(need: _Need) -> tuple[bool, int, int]:
    """How selective a requirement is: case-sensitive first, then by its shortest text, then by
    punctuation in it (prose is full of letters, rarely of "_" or "@")."""
    texts, ignore_case = need
    return (
        not ignore_case,
        min(len(t) for t in texts),
        min(sum(not c.isalnum() for c in t) for t in texts),
    )


_MOST_TEXTS = 32


def _literal_prefix(items: Any) -> str:
    prefix = ""
    for op, av in items:
        if op is not _c.LITERAL:
            break
        prefix += chr(av)
    return prefix


def _required(items: Any, ignore_case: bool) -> list[_Need]:
    """Necessary conditions for a match: each need names texts one of which every match (with
    what its lookarounds read) contains. Literals next to each other, and alternatives of
    literals, combine: ``(?:sk|rk)_(?:live|test)_`` needs one of ``sk_live_``, ``rk_test_``..."""
    needs: list[_Need] = []
    chain: list[str] = []  # the texts one of which the literals read so far spell

    def end_chain() -> None:
        if chain and chain != [""]:
            texts = tuple(dict.fromkeys(t.lower() if ignore_case else t for t in chain))
            needs.append((texts, ignore_case))
        chain[:] = []

    for op, av in items:
        if op is _c.LITERAL:
            chain[:] = [t + chr(av) for t in chain or [""]]
            continue
        if op is _c.BRANCH:
            alternatives = av[1]
            prefixes = [_literal_prefix(alt) for alt in alternatives]
            whole = all(len(p) == len(alt) for p, alt in zip(prefixes, alternatives, strict=True))
            if all(prefixes) and len(chain or [""]) * len(prefixes) <= _MOST_TEXTS:
                chain[:] = [t + p for t in chain or [""] for p in prefixes]
                if whole:
                    continue  # every alternative is a literal: the chain goes on
                end_chain()
            else:
                end_chain()
            best = [max(_required(alt, ignore_case), key=_score, default=None) for alt in alternatives]
            if all(b is not None for b in best) and len({b[1] for b in best if b}) == 1:
                texts = tuple(dict.fromkeys(t for b in best if b for t in b[0]))
                needs.append((texts, best[0][1] if best[0] else False))
            continue
        end_chain()
        if op is _c.SUBPATTERN:
            _group, add, remove, body = av
            ignore = (ignore_case or bool(add & re.IGNORECASE)) and not remove & re.IGNORECASE
            needs += _required(body, ignore)
        elif op is _c.ATOMIC_GROUP:
            needs += _required(av, ignore_case)
        elif op in _REPEATS and av[0] >= 1:
            needs += _required(av[2], ignore_case)
        elif op is _c.ASSERT:
            needs += _required(av[1], ignore_case)
    end_chain()
    return needs


_ASCII_CLASSES = {
    _c.CATEGORY_DIGIT: "0123456789",
    _c.CATEGORY_WORD: "0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    _c.CATEGORY_SPACE: " \t\n\r\f\v",
}


def _chars(code: int, ignore_case: bool, ascii_only: bool) -> set[str] | None:
    char = chr(code)
    if not ignore_case:
        return {char}
    if not ascii_only or not char.isascii():
        return None  # case-insensitive Unicode matching has equivalents beyond ASCII (the Kelvin sign)
    return {char.lower(), char.upper()}


def _alphabet(items: Any, ignore_case: bool, ascii_only: bool) -> set[str] | None:
    """The characters a match can consume (not what assertions look at), or None if unbounded."""
    found: set[str] = set()
    for op, av in items:
        part: set[str] | None = set()
        if op is _c.LITERAL:
            part = _chars(av, ignore_case, ascii_only)
        elif op in (_c.NOT_LITERAL, _c.ANY):
            part = None
        elif op is _c.IN:
            for item_op, item_av in av:
                if part is None:
                    break
                if item_op is _c.NEGATE:
                    part = None
                elif item_op is _c.LITERAL:
                    extra = _chars(item_av, ignore_case, ascii_only)
                    part = None if extra is None else part | extra
                elif item_op is _c.RANGE:
                    low, high = item_av
                    if high >= 128 or (ignore_case and not ascii_only):
                        part = None
                    else:
                        for code in range(low, high + 1):
                            part |= _chars(code, ignore_case, ascii_only) or set()
                elif item_op is _c.CATEGORY and ascii_only and item_av in _ASCII_CLASSES:
                    part |= set(_ASCII_CLASSES[item_av])
                else:
                    part = None
        elif op is _c.BRANCH:
            for alt in av[1]:
                sub = _alphabet(alt, ignore_case, ascii_only)
                part = None if sub is None or part is None else part | sub
        elif op is _c.SUBPATTERN:
            _group, add, remove, body = av
            part = _alphabet(
                body,
                (ignore_case or bool(add & re.IGNORECASE)) and not remove & re.IGNORECASE,
                ascii_only or bool(add & re.ASCII),
            )
        elif op is _c.ATOMIC_GROUP:
            part = _alphabet(av, ignore_case, ascii_only)
        elif op in _REPEATS:
            part = _alphabet(av[2], ignore_case, ascii_only) if av[1] else set()
        if part is None:
            return None
        found |= part
    return found


def _first(items: Any, ignore_case: bool, ascii_only: bool) -> tuple[set[str] | None, bool]:
    """The characters the text the engine reads from a match's start can begin with (None: any
    character), and whether the items can match without consuming or reading forward."""
    found: set[str] = set()
    for op, av in items:
        if op in (_c.ASSERT, _c.ASSERT_NOT) and av[0] == -1 and _extent(op, av).peek == 0:
            continue  # a lookbehind reads only what came before the start
        if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
            return None, False  # reads the next character, whatever it is
        if op is _c.BRANCH:
            nullable = False
            for alt in av[1]:
                sub, empty = _first(alt, ignore_case, ascii_only)
                if sub is None:
                    return None, False
                found |= sub
                nullable = nullable or empty
            if nullable:
                continue
            return found, False
        if op is _c.SUBPATTERN:
            _group, add, remove, body = av
            ignore = (ignore_case or bool(add & re.IGNORECASE)) and not remove & re.IGNORECASE
            sub, empty = _first(body, ignore, ascii_only or bool(add & re.ASCII))
        elif op is _c.ATOMIC_GROUP:
            sub, empty = _first(av, ignore_case, ascii_only)
        elif op in _REPEATS:
            sub, empty = _first(av[2], ignore_case, ascii_only) if av[1] else (set(), True)
            empty = empty or av[0] == 0
        else:
            sub, empty = _alphabet([(op, av)], ignore_case, ascii_only), False
        if sub is None:
            return None, False
        found |= sub
        if not empty:
            return found, False
    return found, True


def analyze(pattern: str, *, limit: int) -> Analysis:
    """Check a secret pattern and work out its bounds. Raises ``ValueError`` saying what is
    wrong: not a valid regex, able to match an empty string, or without a bounded length (or
    longer than ``limit`` characters)."""
    if not isinstance(pattern, str):
        raise ValueError(f"a pattern must be a regular expression in a str, not {pattern!r}")
    try:
        re.compile(pattern)
        parsed = _parser.parse(pattern, 0)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
    extent = _seq_extent(parsed.data)
    if extent.high >= _INF:
        raise ValueError(
            f"{pattern!r} has no upper bound on its length: a streamed secret must have a longest "
            "form, so write {m,n} instead of +, * or {m,}"
        )
    if extent.low == 0:
        raise ValueError(
            f"{pattern!r} can match an empty string; a secret pattern must match at least one character"
        )
    if extent.high > limit:
        raise ValueError(
            f"{pattern!r} can match up to {extent.high} characters; the longest secret a pattern may "
            f"match is {limit} characters (text that may be a secret is held back until it is known)"
        )
    flags = _flags(parsed.state.flags)
    scoped = f"(?{flags}:{_seq(parsed.data)})" if flags else _seq(parsed.data)
    closure = _prefix_seq(parsed.data)
    closure = f"(?{flags}:{closure})" if flags else closure
    flag_bits = parsed.state.flags
    ignore_case = bool(flag_bits & re.IGNORECASE)
    alphabet = _alphabet(parsed.data, ignore_case, bool(flag_bits & re.ASCII))
    needs = sorted(_required(parsed.data, ignore_case), key=_score, reverse=True)
    first, _nullable = _first(parsed.data, ignore_case, bool(flag_bits & re.ASCII))
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
        max_length=extent.high,
        reach=max(extent.ahead, extent.high),
        context=max(extent.behind, 1),
        peek=extent.peek,
        alphabet=frozenset(alphabet) if alphabet is not None else None,
        first=frozenset(first) if first is not None else None,
        entry=entry,
        gated=gated,
        required=tuple(needs[:3]),
    )
