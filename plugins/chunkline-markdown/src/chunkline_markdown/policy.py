"""The markdown chunking policy: sends text as soon as it can without cutting a code span, a
fenced code line, a link, an image or an autolink in two."""

from __future__ import annotations

from .blocks import FREE, HOLD, TEXT, BlockState, Line, classify
from .inline import InlineSpans

__all__ = ["MarkdownPolicy", "make_policy"]

# A line still undecided after this many characters is one that only its end decides (a fence
# opener, a raw HTML line): stop asking until it is complete.
_UNDECIDED_LIMIT = 64


class MarkdownPolicy:
    """A lossless chunking policy for Markdown. Each call to :meth:`feed` returns the text up to
    the last place where a cut breaks nothing: never inside an inline code span (a backtick run
    up to the next run of the same length), inside a link or image (``[text](url "title")``,
    ``![alt](src)``, reference links ``[text][label]``) or an autolink (``<https://...>``), and
    inside a fenced code block (```` ``` ```` or ``~~~``) only at line ends. Everywhere else text
    goes out at once. A construct that never closes is released where CommonMark ends it (the
    paragraph ends), and :meth:`flush` releases everything. With ``limit``, no more than that
    many characters are ever held back (a longer span is cut after all)."""

    def __init__(self, limit: int | None = None) -> None:
        self._limit = limit
        # Held text and the current line are lists of pieces, joined only when read: text that
        # must wait long (an open code span) costs no copying per delta.
        self._held: list[str] = []
        self._held_size = 0
        self._offset = 0  # where the held text starts in the whole text
        self._line: list[str] = []  # the current line so far, from its start
        self._line_size = 0
        self._line_start = 0
        self._line_kind: str | None = None  # TEXT or FREE once known; HOLD: send it whole
        self._state = BlockState()
        self._spans = InlineSpans()

    def feed(self, text: str) -> list[str]:
        start = self._offset + self._held_size
        self._held.append(text)
        self._held_size += len(text)
        i = 0
        while i < len(text):
            newline = text.find("\n", i)
            end = len(text) if newline < 0 else newline + 1
            self._add(text[i:end], start + i, complete=newline >= 0)
            i = end
        return self._ready()

    def flush(self) -> list[str]:
        # A block boundary of the stream (a tool call, the end): everything goes, but the
        # Markdown goes on being followed, since a client joins all the content it receives.
        held = "".join(self._held)
        self._held, self._held_size = [], 0
        self._offset += len(held)
        return [held] if held else []

    def _whole_line(self) -> str:
        if len(self._line) > 1:
            self._line = ["".join(self._line)]
        return self._line[0] if self._line else ""

    def _add(self, part: str, at: int, *, complete: bool) -> None:
        self._line.append(part)
        self._line_size += len(part)
        if self._line_kind == TEXT:
            self._spans.feed(part, at)
        elif self._line_kind is None and not complete:
            line = classify(self._state, _content(self._whole_line()), complete=False)
            if line is not None:
                self._decide(line)
            elif self._line_size > _UNDECIDED_LIMIT:
                self._line_kind = HOLD
        if not complete:
            return
        line = classify(self._state, _content(self._whole_line()[:-1]), complete=True)
        assert line is not None and line.state is not None  # a whole line always decides
        if self._line_kind in (None, HOLD):
            self._decide(line)
        end = at + len(part)
        self._state = line.state
        if not line.state.paragraph:
            self._spans.reset(end)  # the paragraph (or heading) ended with this line
        self._line, self._line_size, self._line_start, self._line_kind = [], 0, end, None

    def _decide(self, line: Line) -> None:
        if line.kind == HOLD:
            self._line_kind = HOLD
            return
        self._line_kind = line.kind
        if line.kind == TEXT:
            if line.new_paragraph:
                self._spans.reset(self._line_start)
            # The containers' markers ("> ", a list marker) are not the paragraph's text: the
            # spans see them as spaces, so positions stay where they are in the text.
            text = self._whole_line()
            prefix = _index_of_column(text, line.content)
            self._spans.feed(" " * prefix + text[prefix:], self._line_start)
        else:
            self._spans.reset(self._line_start)

    def _ready(self) -> list[str]:
        end = self._offset + self._held_size
        cut = end if self._line_kind in (TEXT, FREE) else self._line_start
        hold = self._spans.hold_from()
        if hold is not None and hold < cut:
            cut = hold
        if self._limit is not None and end - max(cut, self._offset) > self._limit:
            cut = end
        if cut <= self._offset:
            return []
        held = "".join(self._held)
        size = cut - self._offset
        ready, rest = held[:size], held[size:]
        self._held, self._held_size = ([rest] if rest else []), len(rest)
        self._offset = cut
        return [ready]


def _content(line: str) -> str:
    """A line as the block rules read it: without the "\r" of a "\r\n" line ending (which may
    still be arriving), tabs expanded to stops of 4."""
    return line.removesuffix("\r").expandtabs(4)


def _index_of_column(line: str, column: int) -> int:
    """The index in ``line`` of the character at ``column`` once tabs are expanded to stops of 4."""
    if "\t" not in line:
        return min(column, len(line))
    at = 0
    for index, char in enumerate(line):
        if at >= column:
            return index
        at = at + 4 - at % 4 if char == "\t" else at + 1
    return len(line)


def make_policy(arg: str | None) -> MarkdownPolicy:
    """The factory behind ``chunking="markdown"`` and ``"markdown:N"`` (hold at most N characters)."""
    if arg is None or arg == "":
        return MarkdownPolicy()
    if not arg.isdigit() or int(arg) < 1:
        raise ValueError(
            f"the argument is the most characters to hold back, a whole number of at least 1, not {arg!r}"
        )
    return MarkdownPolicy(int(arg))
