"""Markdown inline spans as text streams in: code spans, links and images, autolinks and raw HTML
(CommonMark rules), tracked so that text is never cut inside one."""

from __future__ import annotations

import re

__all__ = ["InlineSpans"]

_NORMAL, _CODE, _AFTER_BRACKET, _TAIL, _AUTO = range(5)
# The parts of a link's "(destination "title")" tail.
_OPEN, _ANGLE, _BARE, _AFTER_DEST, _TITLE, _AFTER_TITLE = range(6)
_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_SPECIAL = re.compile(r"[\\`\[\]!<]")
_AUTOLINK = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]{1,31}:[^<>\x00-\x20]*"
    r"|[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*"
)
# Raw inline HTML, as CommonMark defines it: what a "<" may open instead of an autolink.
_ATTRIBUTE = r"""(?:\s+[a-zA-Z_:][a-zA-Z0-9:._-]*(?:\s*=\s*(?:[^"'=<>`\x00-\x20]+|'[^']*'|"[^"]*"))?)"""
_HTML = re.compile(
    rf"<[A-Za-z][A-Za-z0-9\-]*{_ATTRIBUTE}*\s*/?>"
    r"|</[A-Za-z][A-Za-z0-9\-]*\s*>"
    r"|<!---?>|<!--(?:[^-]|-[^-]|--[^>])*-->"
    r"|<[?][\s\S]*?[?]>"
    r"|<![A-Za-z][^>]*>"
    r"|<!\[CDATA\[[\s\S]*?\]\]>"
)
# Raw HTML that only a closing sequence ends, so an earlier ">" does not decide it (and no length
# bound either: like a code span, it is held until it closes or its paragraph ends); what comes
# right before the ">" of each closing sequence.
_LONG_HTML = ("!--", "?", "![CDATA[")
_LONG_HTML_ENDS = ("--", "?", "]]")
_ANGLE_FIRST = frozenset("/!?abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.#$%&'*+=^_`{|}~-")
# An autolink or tag still open this far after its "<" is taken for plain text, so that a stray
# "<" that nothing closes (a tag with a quote left open, say) does not hold text back to the
# paragraph's end.
_ANGLE_MAX = 4096
# A link destination nests at most this many parentheses, as in cmark and markdown-it. The bound
# also keeps failing tails cheap: each one is read again, and so are the tails opened inside it.
_MOST_PARENTHESES = 32


class InlineSpans:
    """Follows one paragraph's inline text, character by character, and says from where text
    must be held back: the start of a code span, link, image or autolink that has opened and
    not yet closed (or of anything that may still become one: a backtick run, a ``!``, a
    backslash, a closing bracket waiting to see if ``(`` follows). :meth:`reset` at the end of
    a paragraph: spans never cross one."""

    __slots__ = (
        "_angle_gt",
        "_angle_last",
        "_angle_long",
        "_auto",
        "_brackets",
        "_buf_start",
        "_code_length",
        "_code_start",
        "_depth",
        "_escape_at",
        "_group",
        "_mode",
        "_parts",
        "_pending_bang",
        "_quote",
        "_rescan_from",
        "_run_length",
        "_run_start",
        "_size",
        "_tail",
        "_tail_escape",
        "_tail_open",
        "_tail_space",
    )

    def __init__(self) -> None:
        # The text from _buf_start, in the pieces it came in (joined only when read again, so a
        # span that stays open long costs no copying), kept while something may need it.
        self._parts: list[str] = []
        self._size = 0
        self._buf_start = 0
        self.reset(0)

    def reset(self, at: int) -> None:
        """A paragraph ends (or begins) at ``at``: nothing is open."""
        self._mode = _NORMAL
        self._escape_at = -1
        self._pending_bang = -1
        self._run_start = -1
        self._run_length = 0
        self._code_start = -1
        self._code_length = 0
        self._brackets: list[int] = []
        self._group = -1  # where a link whose tail is being read began
        self._tail = _OPEN
        self._tail_open = -1  # where the "(" of that tail is
        self._tail_escape = False
        self._tail_space = False
        self._depth = 0
        self._quote = ""
        self._auto = -1
        self._angle_last = ""
        self._angle_long = False
        self._angle_gt = False
        self._rescan_from = -1
        self._parts, self._size, self._buf_start = [], 0, at

    def hold_from(self) -> int | None:
        """Where held text must start (None: nothing is open)."""
        starts = [p for p in (self._escape_at, self._pending_bang, self._run_start) if p >= 0]
        if self._mode == _CODE:
            starts.append(self._code_start)
        elif self._mode in (_AFTER_BRACKET, _TAIL):
            starts.append(self._group)
        elif self._mode == _AUTO:
            starts.append(self._auto)
        if self._brackets:
            starts.append(self._brackets[0])
        return min(starts) if starts else None

    def feed(self, text: str, at: int) -> None:
        """The next characters of the paragraph; ``text[0]`` is at position ``at``."""
        if at != self._buf_start + self._size:
            self._parts, self._size, self._buf_start = [], 0, at  # after a gap: nothing before
        self._parts.append(text)
        self._size += len(text)
        self._scan(text, at)
        start = self.hold_from()
        if start is None:
            self._parts, self._size, self._buf_start = [], 0, at + len(text)
        else:
            # Drop whole pieces that end before what may be read again.
            while self._parts and self._buf_start + len(self._parts[0]) <= start:
                self._buf_start += len(self._parts[0])
                self._size -= len(self._parts[0])
                del self._parts[0]

    def _text(self, start: int, end: int) -> str:
        """The text from ``start`` to ``end`` (both still kept). Only the pieces from the one
        holding ``start`` are joined: reading the last few characters stays cheap however much
        is held."""
        parts = self._parts
        first, begin = len(parts), self._buf_start + self._size
        while first and begin > start:
            first -= 1
            begin -= len(parts[first])
        if first >= len(parts):
            return ""
        if first < len(parts) - 1:
            parts[first:] = ["".join(parts[first:])]
        return parts[first][start - begin : end - begin]

    def _scan(self, text: str, at: int) -> None:
        i = 0
        n = len(text)
        while i < n:
            mode = self._mode
            if mode == _NORMAL and self._run_length == 0 and self._escape_at < 0 and self._pending_bang < 0:
                # Plain text goes by in one step to the next character that matters.
                found = _SPECIAL.search(text, i)
                if found is None:
                    return
                i = found.start()
            elif mode == _CODE and self._run_length == 0:
                tick = text.find("`", i)
                if tick < 0:
                    return
                i = tick
            elif mode == _AUTO and self._angle_long:
                # A comment, processing instruction or CDATA section can end only at a ">".
                end = text.find(">", i)
                if end < 0:
                    return
                i = end
            i = self._char(text[i], at + i, i)
            if self._rescan_from >= 0:
                # In this loop, not by recursion: the text read again may hold more tails that
                # fail the same way, as deep as the paragraph is long.
                text = self._text(self._rescan_from, at + n)
                at, i, n = self._rescan_from, 0, len(text)
                self._rescan_from = -1

    def _char(self, char: str, position: int, i: int) -> int:
        """Take one character (at index ``i`` of the text being scanned); return the next index."""
        if self._run_length:
            if char == "`":
                self._run_length += 1
                return i + 1
            self._end_run()
        mode = self._mode
        if mode == _CODE:
            if char == "`":
                self._run_start, self._run_length = position, 1
            return i + 1
        if mode == _AFTER_BRACKET:
            self._mode = _NORMAL
            if char == "(":
                self._mode, self._tail, self._depth, self._tail_space = _TAIL, _OPEN, 0, False
                self._tail_open = position
                return i + 1
            if char == "[":
                self._brackets.append(self._group)  # a reference label: one link from its start
                return i + 1
            self._group = -1
            mode = _NORMAL
        if mode == _TAIL:
            return self._tail_char(char, position, i)
        if mode == _AUTO:
            return self._angle_char(char, position, i)
        if self._escape_at >= 0:
            self._escape_at = -1
            if char in _PUNCTUATION:
                return i + 1  # an escaped character is plain text
        if self._pending_bang >= 0:
            bang, self._pending_bang = self._pending_bang, -1
            if char == "[":
                self._brackets.append(bang)  # an image starts at its "!"
                return i + 1
        if char == "\\":
            self._escape_at = position
        elif char == "`":
            self._run_start, self._run_length = position, 1
        elif char == "!":
            self._pending_bang = position
        elif char == "[":
            self._brackets.append(position)
        elif char == "]" and self._brackets:
            self._group = self._brackets.pop()
            self._mode = _AFTER_BRACKET
        elif char == "<":
            self._mode, self._auto, self._quote, self._angle_last = _AUTO, position, "", ""
            self._angle_long = self._angle_gt = False
        return i + 1

    def _end_run(self) -> None:
        """A backtick run is complete: it opens a code span, or closes the open one if it is
        exactly as long as the run that opened it."""
        if self._mode == _CODE:
            if self._run_length == self._code_length:
                self._mode, self._code_start = _NORMAL, -1
        else:
            self._mode, self._code_start, self._code_length = _CODE, self._run_start, self._run_length
        self._run_start, self._run_length = -1, 0

    def _fail(self, resume: int, i: int) -> int:
        """What looked like a link tail or an autolink is not one: the scan reads the text again
        from ``resume`` as plain text (the characters after it may open other spans)."""
        self._mode, self._group, self._auto = _NORMAL, -1, -1
        self._rescan_from = resume
        return i + 1

    def _tail_char(self, char: str, position: int, i: int) -> int:
        """One character of a link's ``(destination "title")``. The grammar accepts at least
        what CommonMark does, so a real link is never taken for plain text."""
        part = self._tail
        if self._tail_escape:
            self._tail_escape = False
            return i + 1
        resume = self._tail_open
        if part == _OPEN:
            if char in " \t\r\n":
                return i + 1
            if char == "<":
                self._tail = _ANGLE
                return i + 1
            if char == ")":
                return self._link_done(i)
            self._tail = part = _BARE
        if part == _ANGLE:
            if char == "\\":
                self._tail_escape = True
            elif char == ">":
                self._tail = _AFTER_DEST
            elif char in "<\r\n":
                return self._fail(resume, i)
            return i + 1
        if part == _BARE:
            if char == "\\":
                self._tail_escape = True
            elif char == "(":
                self._depth += 1
                if self._depth > _MOST_PARENTHESES:
                    return self._fail(resume, i)
            elif char == ")":
                if self._depth == 0:
                    return self._link_done(i)
                self._depth -= 1
            elif char in " \t\r\n":
                self._tail, self._tail_space = _AFTER_DEST, True
            elif ord(char) < 0x20:
                return self._fail(resume, i)
            return i + 1
        if part == _AFTER_DEST:
            if char in " \t\r\n":
                self._tail_space = True
                return i + 1
            if char == ")":
                return self._link_done(i)
            if char in "\"'(" and self._tail_space:
                self._tail, self._quote = _TITLE, ")" if char == "(" else char
                return i + 1
            return self._fail(resume, i)
        if part == _TITLE:
            if char == "\\":
                self._tail_escape = True
            elif char == self._quote:
                self._tail = _AFTER_TITLE
            return i + 1
        if char in " \t\r\n":
            return i + 1
        if char == ")":
            return self._link_done(i)
        return self._fail(resume, i)

    def _link_done(self, i: int) -> int:
        self._mode, self._group = _NORMAL, -1
        return i + 1

    def _angle_char(self, char: str, position: int, i: int) -> int:
        """One character after a ``<``: an autolink or raw HTML ends at a ``>`` (outside an
        attribute's quotes); where neither can any more, the ``<`` was plain text."""
        start = self._auto
        if position == start + 1 and char not in _ANGLE_FIRST:
            return self._fail(start + 1, i)
        if position - start <= len(_LONG_HTML[-1]) and not self._angle_long:
            self._angle_long = self._text(start + 1, position + 1).startswith(_LONG_HTML)
        quote = self._quote
        if quote:
            if char == quote:
                self._quote = ""
        elif char == ">":
            # Past the first ">", only a closing sequence can end long raw HTML: the full test,
            # which reads all of it, runs only there.
            if not self._angle_gt or self._text(position - 2, position).endswith(_LONG_HTML_ENDS):
                inside = self._text(start + 1, position)
                if _AUTOLINK.fullmatch(inside) or _HTML.fullmatch(f"<{inside}>"):
                    self._mode, self._auto = _NORMAL, -1
                    return i + 1
            if not self._angle_long:
                return self._fail(start + 1, i)
            self._angle_gt = True
        elif char in "\"'" and self._angle_last == "=" and not self._angle_long:
            self._quote = char  # an attribute value: a ">" in it does not end the tag
        elif char == "<" and not self._angle_long:
            return self._fail(start + 1, i)
        if position - start > _ANGLE_MAX and not self._angle_long:
            return self._fail(start + 1, i)
        if char not in " \t\r\n":
            self._angle_last = char
        return i + 1
