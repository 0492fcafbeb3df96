"""The secret patterns: the built-in kinds, custom ones, and the checked set one pipeline masks with."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._regex import Analysis, analyze

__all__ = [
    "BUILTIN_PATTERNS",
    "DEFAULT_REPLACEMENT",
    "MAX_SECRET_LENGTH",
    "Kind",
    "PatternSet",
    "check_extra_patterns",
    "check_kinds",
    "check_replacement",
    "pattern_set",
    "redact_text",
]

# Characters that may not start or precede a key: a key glued to a longer word is not a key
# ("task-force-..." holds "sk-" but is prose).
_NOT_AFTER_WORD = r"(?<![A-Za-z0-9_\-])"

#: The built-in secret kinds, in the order they are tried at a position: more specific first.
BUILTIN_PATTERNS: Mapping[str, str] = {
    "anthropic_key": _NOT_AFTER_WORD + r"sk-ant-[a-z]{2,8}[0-9]{2}-[A-Za-z0-9_\-]{20,200}",
    "openai_key": _NOT_AFTER_WORD
    + r"sk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{20,250}|[A-Za-z0-9]{20,128})",
    "aws_access_key": r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])",
    "github_token": _NOT_AFTER_WORD + r"(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})",
    "google_api_key": _NOT_AFTER_WORD + r"AIza[0-9A-Za-z_\-]{35}",
    "slack_token": _NOT_AFTER_WORD + r"xox[baprs]-[A-Za-z0-9\-]{10,250}",
    "stripe_key": _NOT_AFTER_WORD + r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,247}",
    # Only the token is masked: "Authorization: Bearer [REDACTED:bearer_token]".
    "bearer_token": r"(?<=(?<![A-Za-z0-9])(?i:bearer)[ \t])[A-Za-z0-9\-._~+/]{16,1024}={0,2}",
    "email": r"[A-Za-z0-9._%+\-]{1,64}@(?:[A-Za-z0-9\-]{1,63}\.){1,8}[A-Za-z]{2,24}",
}

DEFAULT_REPLACEMENT = "[REDACTED:{kind}]"

#: The longest text one secret pattern may match. Text that could still become a secret is held
#: back (at most this many characters, less one), so a pattern may not reach further.
MAX_SECRET_LENGTH = 4096

_Search = Callable[[str, int, int], "re.Match[str] | None"]
_Match = Callable[[str, int], "re.Match[str] | None"]

_KIND_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


@functools.cache
def _builtin(name: str) -> Analysis:
    return analyze(BUILTIN_PATTERNS[name], limit=MAX_SECRET_LENGTH)


def check_kinds(value: Any, registry: Any = None) -> tuple[str, ...]:
    """The ``redact_patterns`` option: which built-in kinds to mask, as a list of names or a
    comma-separated string (``"all"`` for every one)."""
    if isinstance(value, str):
        names = list(BUILTIN_PATTERNS) if value.strip() == "all" else [n.strip() for n in value.split(",")]
        names = [n for n in names if n]
    elif isinstance(value, list | tuple):
        names = list(value)
    else:
        raise ValueError(f"must be a list of built-in pattern names, not {value!r}")
    known = ", ".join(BUILTIN_PATTERNS)
    for name in names:
        if name not in BUILTIN_PATTERNS:
            raise ValueError(f"unknown pattern {name!r}; the built-in patterns are {known}")
    if len(set(names)) != len(names):
        raise ValueError(f"names a pattern twice: {names!r}")
    return tuple(names)


def check_extra_patterns(value: Any, registry: Any = None) -> tuple[tuple[str, str], ...]:
    """The ``redact_extra_patterns`` option: more kinds to mask, a dict of name to regular
    expression. Each regex is checked here, once per pipeline: it must compile, match at least
    one character and have a longest match (``{m,n}``, not ``+`` or ``*``). A name of a built-in
    kind replaces that kind's pattern."""
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a dict of name to regular expression, not {value!r}")
    checked = []
    for name, pattern in value.items():
        if not isinstance(name, str) or not _KIND_NAME.fullmatch(name):
            raise ValueError(f"pattern name {name!r} must be a letter then letters, digits or '_'")
        try:
            analyze(pattern, limit=MAX_SECRET_LENGTH)
        except ValueError as exc:
            raise ValueError(f"pattern {name!r}: {exc}") from None
        checked.append((name, pattern))
    return tuple(checked)


def check_replacement(value: Any, registry: Any = None) -> str:
    """The ``redact_replacement`` option: what a secret becomes; ``{kind}`` is the kind's name."""
    if not isinstance(value, str):
        raise ValueError(f"must be a str such as {DEFAULT_REPLACEMENT!r}, not {value!r}")
    try:
        sample = value.format(kind="email")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"{value!r} is not a valid template: only {{kind}} may be used ('{{{{' for a brace): {exc!r}"
        ) from None
    bad = sorted({c for c in sample if c in '"\\' or ord(c) < 0x20 or ord(c) == 0x7F})
    if bad:
        raise ValueError(
            f"{value!r} contains {', '.join(repr(c) for c in bad)}, which would break the JSON of "
            "tool-call arguments where a secret is masked inside a string"
        )
    return value


@dataclass(frozen=True, slots=True)
class Kind:
    """One secret kind, compiled: ``search`` finds its next match; ``required`` lists texts
    that any match must come with (see ``Analysis.required``), so most text skips the search."""

    name: str
    search: Callable[[str, int], re.Match[str] | None]
    required: tuple[tuple[tuple[str, ...], bool], ...]
    replacement: str

    def may_match(self, text: str, start: int) -> bool:
        """Whether ``text[start:]`` has everything a match needs (a quick test, no regex)."""
        lowered = None
        for texts, ignore_case in self.required:
            if ignore_case:
                lowered = lowered if lowered is not None else text[start:].lower()
                if not any(t in lowered for t in texts):
                    return False
            elif not any(text.find(t, start) >= 0 for t in texts):
                return False
        return True


@dataclass(frozen=True, slots=True)
class PatternSet:
    """Every kind one pipeline masks, compiled once. ``starts``, ``alive_at`` and ``gated``
    find where a secret may still be starting at the end of a text; ``window`` is how far
    matching at one place may read, ``context`` how much before it lookbehinds read, ``slack``
    how far assertions read past what a match consumed, and ``alphabet`` every character a
    secret can consume (None: not a small set)."""

    kinds: tuple[Kind, ...]
    gate: Callable[[str, int], re.Match[str] | None] | None
    """Finds a text that some kind requires, or None: no secret here (gate None: no such test)."""
    gate_ignoring_case: tuple[str, ...]
    """Required texts compared ignoring case, which the gate leaves out."""
    starts: _Search | None
    """Finds the next character that a secret of an ungated kind can start with (None: there
    is no ungated kind)."""
    alive_at: Mapping[str, tuple[_Match, ...]]
    """By that character: tests that a secret of one of those kinds may still be starting there
    (each matches every text that reaches into one of its secrets without completing it)."""
    gated: tuple[tuple[_Search, _Match], ...]
    """Kinds led by a lookbehind (or able to start anywhere): a search for the places one can
    start at, and the test."""
    window: int
    context: int
    slack: int
    alphabet: str | None
    max_length: int

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(kind.name for kind in self.kinds)

    def next_match(self, text: str, start: int) -> tuple[int, int, str] | None:
        """The next secret at or after ``start``: (start, end, replacement). Where several kinds
        match at the same place, the first kind in order wins, as in one alternation."""
        ahead = start - self.context
        if ahead < 0:
            ahead = 0
        gate = self.gate
        if gate is not None and gate(text, ahead) is None:
            # The common case: nothing in the text that any secret needs.
            ignoring_case = self.gate_ignoring_case
            if not ignoring_case:
                return None
            lowered = text[ahead:].lower()
            for required in ignoring_case:
                if required in lowered:
                    break
            else:
                return None
        best: tuple[int, int, str] | None = None
        for kind in self.kinds:
            if kind.required and not kind.may_match(text, ahead):
                continue
            match = kind.search(text, start)
            if match is not None and (best is None or match.start() < best[0]):
                best = (match.start(), match.end(), kind.replacement)
        return best

    def redact(self, text: str) -> str:
        """``text`` with every secret masked, all at once (what streaming must equal)."""
        out = []
        position = 0
        while (found := self.next_match(text, position)) is not None:
            start, end, replacement = found
            out.append(text[position:start])
            out.append(replacement)
            position = end
        out.append(text[position:])
        return "".join(out)


@functools.lru_cache(maxsize=64)
def pattern_set(kinds: tuple[str, ...], extra: tuple[tuple[str, str], ...], replacement: str) -> PatternSet:
    """The compiled set for checked option values (cached: a pipeline's conversions share it)."""
    chosen: dict[str, Analysis] = {name: _builtin(name) for name in kinds}
    for name, pattern in extra:
        chosen[name] = analyze(pattern, limit=MAX_SECRET_LENGTH)
    if not chosen:
        # Nothing to mask: never a match, and never anything held back.
        return PatternSet((), None, (), None, {}, (), 1, 1, 0, "", 0)
    compiled = tuple(
        Kind(name, re.compile(a.scoped).search, a.required, replacement.format(kind=name))
        for name, a in chosen.items()
    )
    alphabet: str | None = ""
    for analysis in chosen.values():
        if analysis.alphabet is None or alphabet is None:
            alphabet = None
        else:
            alphabet = "".join(sorted(set(alphabet) | analysis.alphabet))
    gate = None
    ignoring_case: list[str] = []
    if all(a.required for a in chosen.values()):
        # One union of literals: the regex engine scans for their first characters in C.
        texts: list[str] = []
        for a in chosen.values():
            options, ignore_case = a.required[0]
            (ignoring_case if ignore_case else texts).extend(options)
        if texts:
            gate = re.compile("|".join(re.escape(t) for t in dict.fromkeys(texts))).search
        else:
            gate = re.compile("(?!)").search
    # Where a secret may still be starting. Most kinds can start only at a few characters,
    # found in one scan; a kind led by a lookbehind is searched for where the lookbehind holds.
    by_char: dict[str, list[_Match]] = {}
    gated: list[tuple[_Search, _Match]] = []
    # Kinds that can start at more characters are more often in progress: test them first.
    for a in sorted(chosen.values(), key=lambda a: -len(a.first or ())):
        test = re.compile(f"(?:{a.closure})\\Z").match
        if a.gated or a.first is None:
            gated.append((re.compile(a.entry).search, test))
        else:
            for char in a.first:
                by_char.setdefault(char, []).append(test)
    starts = None
    if by_char:
        starts = re.compile("[" + "".join(f"\\U{ord(c):08x}" for c in sorted(by_char)) + "]").search
    return PatternSet(
        compiled,
        gate,
        tuple(dict.fromkeys(ignoring_case)),
        starts,
        {char: tuple(tests) for char, tests in by_char.items()},
        tuple(gated),
        window=max(a.reach for a in chosen.values()),
        context=max(a.context for a in chosen.values()),
        slack=max(a.peek for a in chosen.values()),
        alphabet=alphabet,
        max_length=max(a.max_length for a in chosen.values()),
    )


def redact_text(
    text: str,
    *,
    patterns: Iterable[str] | str = "all",
    extra_patterns: Mapping[str, str] | None = None,
    replacement: str = DEFAULT_REPLACEMENT,
) -> str:
    """Mask the secrets in a whole text at once, with the options the ``redact`` stage takes:
    ``redact_text("key: sk-ant-api03-...")``."""
    kinds = check_kinds(patterns if isinstance(patterns, str) else list(patterns))
    extra = check_extra_patterns(extra_patterns or {})
    return pattern_set(kinds, extra, check_replacement(replacement)).redact(text)
