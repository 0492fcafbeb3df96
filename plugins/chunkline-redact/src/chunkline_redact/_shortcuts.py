"""What a secret pattern's matches must contain and can start with, read from its parse tree:
the shortcuts that let most text skip the regexes (required literals, alphabets, first characters)."""

from __future__ import annotations

import re
from typing import Any

from ._widths import REPEATS, extent
from ._widths import constants as _c

__all__ = ["Need", "alphabet", "first_characters", "required", "score"]

Need = tuple[tuple[str, ...], bool]  # any one of these texts must be present; compared ignoring case?


def score(need: Need) -> tuple[bool, int, int]:
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


def required(items: Any, ignore_case: bool) -> list[Need]:
    """Necessary conditions for a match: each need names texts one of which every match (with
    what its lookarounds read) contains. Literals next to each other, and alternatives of
    literals, combine: ``(?:sk|rk)_(?:live|test)_`` needs one of ``sk_live_``, ``rk_test_``..."""
    needs: list[Need] = []
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
            best = [max(required(alt, ignore_case), key=score, default=None) for alt in alternatives]
            if all(b is not None for b in best) and len({b[1] for b in best if b}) == 1:
                texts = tuple(dict.fromkeys(t for b in best if b for t in b[0]))
                needs.append((texts, best[0][1] if best[0] else False))
            continue
        end_chain()
        if op is _c.SUBPATTERN:
            _group, add, remove, body = av
            ignore = (ignore_case or bool(add & re.IGNORECASE)) and not remove & re.IGNORECASE
            needs += required(body, ignore)
        elif op is _c.ATOMIC_GROUP:
            needs += required(av, ignore_case)
        elif op in REPEATS and av[0] >= 1:
            needs += required(av[2], ignore_case)
        elif op is _c.ASSERT:
            needs += required(av[1], ignore_case)
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


def alphabet(items: Any, ignore_case: bool, ascii_only: bool) -> set[str] | None:
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
                sub = alphabet(alt, ignore_case, ascii_only)
                part = None if sub is None or part is None else part | sub
        elif op is _c.SUBPATTERN:
            _group, add, remove, body = av
            part = alphabet(
                body,
                (ignore_case or bool(add & re.IGNORECASE)) and not remove & re.IGNORECASE,
                ascii_only or bool(add & re.ASCII),
            )
        elif op is _c.ATOMIC_GROUP:
            part = alphabet(av, ignore_case, ascii_only)
        elif op in REPEATS:
            part = alphabet(av[2], ignore_case, ascii_only) if av[1] else set()
        if part is None:
            return None
        found |= part
    return found


def first_characters(items: Any, ignore_case: bool, ascii_only: bool) -> tuple[set[str] | None, bool]:
    """The characters the text the engine reads from a match's start can begin with (None: any
    character), and whether the items can match without consuming or reading forward."""
    found: set[str] = set()
    for op, av in items:
        if op in (_c.ASSERT, _c.ASSERT_NOT) and av[0] == -1 and extent(op, av).peek == 0:
            continue  # a lookbehind reads only what came before the start
        if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
            return None, False  # reads the next character, whatever it is
        if op is _c.BRANCH:
            nullable = False
            for alt in av[1]:
                sub, empty = first_characters(alt, ignore_case, ascii_only)
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
            sub, empty = first_characters(body, ignore, ascii_only or bool(add & re.ASCII))
        elif op is _c.ATOMIC_GROUP:
            sub, empty = first_characters(av, ignore_case, ascii_only)
        elif op in REPEATS:
            sub, empty = first_characters(av[2], ignore_case, ascii_only) if av[1] else (set(), True)
            empty = empty or av[0] == 0
        else:
            sub, empty = alphabet([(op, av)], ignore_case, ascii_only), False
        if sub is None:
            return None, False
        found |= sub
        if not empty:
            return found, False
    return found, True
