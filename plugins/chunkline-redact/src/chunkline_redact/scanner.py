"""Masking text that arrives in pieces: the same result as masking it whole, holding back only
what may still turn out to be a secret; and the same inside the strings of streamed JSON."""

from __future__ import annotations

from .patterns import PatternSet

__all__ = ["JsonStrings", "Scanner"]


class Scanner:
    """Masks one stream of text fed in pieces. :meth:`feed` returns the masked text that is
    settled; text from the first place where a secret may still be starting is held back, so
    at most ``window - 1`` characters are held. :meth:`flush` ends the text.

    Settled means: the regex engine, trying a match at that place, never read past the text
    received so far (which the kinds' prefix closures tell), so more text cannot
    change its answer. Matching resumes where it stopped, with ``context`` characters kept
    before it for lookbehinds, exactly as one ``finditer`` over the whole text would.

    A scanner made ``mapped`` takes, with each character, the raw text that stands for it (a
    JSON escape such as ``\\u00e9``); unmasked characters come out as their raw text.
    """

    __slots__ = ("_alphabet", "_buf", "_patterns", "_pos", "_raws", "_slack", "_window")

    def __init__(self, patterns: PatternSet, *, mapped: bool = False) -> None:
        self._patterns = patterns
        self._window = patterns.window
        self._slack = patterns.slack
        self._alphabet = patterns.alphabet
        self._buf = ""  # context characters, then the held text from _pos
        self._pos = 0
        self._raws: list[str] | None = [] if mapped else None

    @property
    def held(self) -> int:
        """How many characters are held back."""
        return len(self._buf) - self._pos

    def feed(self, text: str, raws: list[str] | None = None) -> str:
        """Take the next piece of text (with its raw forms, for a mapped scanner); return the
        masked text that is now settled."""
        self._buf += text
        if self._raws is not None:
            self._raws += raws if raws is not None else list(text)
        return self._scan(final=False)

    def flush(self) -> str:
        """The text has ended: return everything held, masked; the next feed starts a new text."""
        out = self._scan(final=True)
        self._buf = ""
        self._pos = 0
        if self._raws is not None:
            self._raws = []
        return out

    def _raw(self, start: int, end: int) -> str:
        if self._raws is None:
            return self._buf[start:end]
        return "".join(self._raws[start:end])

    def _first_alive(self, buf: str, pos: int) -> int:
        """The first place at or after ``pos`` where a secret may still be starting (``len(buf)``
        if none): where the engine, matching there, could read past the end of ``buf``."""
        end = len(buf)
        low = end - self._window + 1  # earlier places have been read in full already
        if low < pos:
            low = pos
        if self._alphabet is not None:
            # A secret in progress consumed only its alphabet, and its assertions read at most
            # slack characters further: it starts after the last character outside it.
            outside = len(buf[: end - self._slack].rstrip(self._alphabet))
            if outside > low:
                low = outside
        if low >= end:
            return end
        patterns = self._patterns
        best = end
        starts = patterns.starts
        if starts is not None:
            tests = patterns.alive_at
            at = low
            while at < end:
                candidate = starts(buf, at, end)
                if candidate is None:
                    break
                at = candidate.start()
                for alive in tests[buf[at]]:
                    if alive(buf, at) is not None:
                        best = at
                        break
                else:
                    at += 1
                    continue
                break
        for entry, alive in patterns.gated:
            at = low
            while at < best:
                candidate = entry(buf, at, best)  # the next place this kind can start at
                if candidate is None:
                    break
                at = candidate.start()
                if alive(buf, at) is not None:
                    best = at
                    break
                at += 1
        return best

    def _scan(self, *, final: bool) -> str:
        buf = self._buf
        pos = self._pos
        end = len(buf)
        if pos == end:
            return ""
        out: list[str] = []
        next_match = self._patterns.next_match
        hold = end if final else self._first_alive(buf, pos)
        while True:
            found = next_match(buf, pos)
            if found is None or found[0] >= hold:
                out.append(self._raw(pos, hold))
                pos = hold
                break
            start, stop, replacement = found
            out.append(self._raw(pos, start))
            out.append(replacement)
            pos = stop
            if not final and pos > hold:
                hold = self._first_alive(buf, pos)
        # Keep only the context that lookbehinds and \b may still read.
        keep = max(0, pos - self._patterns.context)
        if keep:
            self._buf = buf[keep:]
            if self._raws is not None:
                del self._raws[:keep]
        self._pos = pos - keep
        return "".join(out)


# What each one-character JSON escape stands for; anything else after a backslash is not JSON,
# and is kept (and matched) as the character itself.
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX = frozenset("0123456789abcdefABCDEF")


class JsonStrings:
    """Masks secrets inside the strings of a JSON text streamed in fragments (a tool call's
    arguments). Everything outside strings passes through as it is; each string's content is
    matched as the text it decodes to (so ``\\n`` is a line break to a pattern), and a masked
    secret replaces whole escapes, never part of one, so valid JSON stays valid."""

    __slots__ = ("_escape", "_escape_sent", "_in_string", "_scanner")

    def __init__(self, patterns: PatternSet) -> None:
        self._scanner = Scanner(patterns, mapped=True)
        self._in_string = False
        self._escape = ""  # an escape still arriving, from its backslash
        self._escape_sent = 0  # how much of it a flush has already sent

    @property
    def held(self) -> int:
        """How many characters are held back (escapes still arriving count as held)."""
        return self._scanner.held + len(self._escape) - self._escape_sent

    def feed(self, fragment: str) -> str:
        """Take the next fragment; return the text that is now settled."""
        out: list[str] = []
        chars: list[str] = []  # decoded string content of this fragment, and each one's raw form
        raws: list[str] = []
        i = 0
        n = len(fragment)
        while i < n:
            if not self._in_string:
                quote = fragment.find('"', i)
                if quote < 0:
                    out.append(fragment[i:])
                    break
                out.append(fragment[i : quote + 1])
                self._in_string = True
                i = quote + 1
                continue
            if self._escape:
                i = self._continue_escape(fragment, i, chars, raws)
                continue
            char = fragment[i]
            if char == "\\":
                self._escape = "\\"
                i += 1
            elif char == '"':
                # The string ends: its held text is settled, then the quote follows it.
                out.append(self._scanner.feed("".join(chars), raws) + self._scanner.flush() + '"')
                chars, raws = [], []
                self._in_string = False
                i += 1
            else:
                run = i
                while run < n and fragment[run] not in '"\\':
                    run += 1
                chars.append(fragment[i:run])
                raws.extend(fragment[i:run])
                i = run
        if chars:
            text = "".join(chars)
            out.append(self._scanner.feed(text, raws))
        return "".join(out)

    def _continue_escape(self, fragment: str, i: int, chars: list[str], raws: list[str]) -> int:
        char = fragment[i]
        if len(self._escape) == 1:
            self._escape += char
            if char != "u":
                self._end_escape(_ESCAPES.get(char, char), chars, raws)
            return i + 1
        if char in _HEX:
            self._escape += char
            if len(self._escape) == 6:  # \uXXXX
                self._end_escape(chr(int(self._escape[2:], 16)), chars, raws)
            return i + 1
        # Not JSON (a \u without four hex digits): keep what came as one unmatchable unit and
        # read the character again as ordinary input.
        self._end_escape("\ufffd", chars, raws)
        return i

    def _end_escape(self, char: str, chars: list[str], raws: list[str]) -> None:
        """The escape is complete and stands for ``char``. If a flush sent its start already,
        the rest goes out as it is, as a unit no secret can match (the flush ended the text)."""
        sent = self._escape_sent
        chars.append("\ufffd" if sent else char)
        raws.append(self._escape[sent:])
        self._escape, self._escape_sent = "", 0

    def flush(self) -> str:
        """Give up holding (the arguments end, or another item comes first): everything held,
        masked; an escape still arriving comes out as it is. The position in the JSON is kept,
        inside an escape too: its next character is still escaped."""
        out = self._scanner.flush() + self._escape[self._escape_sent :]
        self._escape_sent = len(self._escape)
        return out
