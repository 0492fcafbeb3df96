"""Markdown block structure, line by line (the CommonMark container and leaf rules that decide
where a fenced code block is and where a paragraph, whose inline spans can cross lines, ends)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

__all__ = ["FREE", "HOLD", "TEXT", "BlockState", "Line", "classify"]

TEXT = "text"  # paragraph (or heading) text: inline spans decide where it may be cut
FREE = "free"  # blank, indented code or raw HTML: no span can be cut, cut anywhere
HOLD = "hold"  # a fence line, heading, rule or a line not yet known: send the line whole

_BULLET = re.compile(r"([-+*])(?=[ \t]|$)")
_ORDERED = re.compile(r"([0-9]{1,9})([.)])(?=[ \t]|$)")
_ORDERED_SO_FAR = re.compile(r"[0-9]{1,9}[.)]?")
_THEMATIC = re.compile(r"(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})")
_THEMATIC_SO_FAR = re.compile(r"[-*_ \t]*")
_ATX = re.compile(r"#{1,6}(?=[ \t]|$)")
_FENCE = re.compile(r"(`{3,}|~{3,})(.*)")
_SETEXT = re.compile(r"(?:=+|-+)[ \t]*")
_DEFINITION = re.compile(
    r"\[(?:[^\[\]\\]|\\.)*[^\s\[\]\\](?:[^\[\]\\]|\\.)*\]:[ \t]*"
    r"(?:<(?:[^<>\n\\]|\\.)*>|[^\s<]\S*)"
    r"(?:[ \t]+(?:\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|\((?:[^()\\]|\\.)*\)))?[ \t]*"
)
_HTML_BLOCK_TAGS = (
    "address|article|aside|base|basefont|blockquote|body|caption|center|col|colgroup|dd|details|dialog|"
    "dir|div|dl|dt|fieldset|figcaption|figure|footer|form|frame|frameset|h1|h2|h3|h4|h5|h6|head|header|"
    "hr|html|iframe|legend|li|link|main|menu|menuitem|nav|noframes|ol|optgroup|option|p|param|search|"
    "section|summary|table|tbody|td|tfoot|th|thead|title|tr|track|ul"
)
_ATTRIBUTE = r"""(?:\s+[A-Za-z_:][A-Za-z0-9_.:-]*(?:\s*=\s*(?:[^\s"'=<>`]+|'[^']*'|"[^"]*"))?)"""
# The HTML block starts of CommonMark (types 1 to 7) and what ends each: a text on a line, or
# a blank line (None).
_RAW_TAGS = "script|pre|style|textarea"
_OPEN_TAG = rf"<[A-Za-z][A-Za-z0-9-]*{_ATTRIBUTE}*\s*/?>"
_CLOSE_TAG = r"</[A-Za-z][A-Za-z0-9-]*\s*>"
_HTML_STARTS: tuple[tuple[re.Pattern[str], re.Pattern[str] | None, bool], ...] = (
    (re.compile(rf"<(?:{_RAW_TAGS})(?:\s|>|$)", re.I), re.compile(rf"</(?:{_RAW_TAGS})>", re.I), True),
    (re.compile(r"<!--"), re.compile(r"-->"), True),
    (re.compile(r"<\?"), re.compile(r"\?>"), True),
    (re.compile(r"<![A-Za-z]"), re.compile(r">"), True),
    (re.compile(r"<!\[CDATA\["), re.compile(r"\]\]>"), True),
    (re.compile(rf"</?(?:{_HTML_BLOCK_TAGS})(?:\s|/?>|$)", re.I), None, True),
    (re.compile(rf"(?:{_OPEN_TAG}|{_CLOSE_TAG})\s*$"), None, False),
)


@dataclass(frozen=True, slots=True)
class BlockState:
    """What is open after the lines so far: the containers (``None`` for a block quote, else a
    list item's content column), whether a paragraph is open in the innermost one, and an open
    fenced code block (its character, length) or raw HTML block (the text that ends it, or a
    blank line)."""

    containers: tuple[int | None, ...] = ()
    paragraph: bool = False
    fence: tuple[str, int] | None = None
    html: re.Pattern[str] | None = None
    html_to_blank: bool = False
    empty_item: bool = False
    """The innermost container is a list item that began with a blank line and has no content
    yet: a second blank line ends it."""


@dataclass(frozen=True, slots=True)
class Line:
    """How one line is sent: ``kind`` (TEXT, FREE or HOLD), whether its text starts a new
    paragraph, the state after it (None while the line is not complete, except for TEXT) and
    where its text starts."""

    kind: str
    new_paragraph: bool = False
    state: BlockState | None = None
    content: int = 0
    """For TEXT: the column where the paragraph's text starts, after the containers' markers."""


class _Undecided(Exception):
    """The line so far does not tell yet (more of it must arrive)."""


def _indent(text: str, at: int) -> int:
    end = at
    while end < len(text) and text[end] == " ":
        end += 1
    return end - at


def classify(state: BlockState, line: str, complete: bool) -> Line | None:
    """How ``line`` (tabs expanded, no line break) is sent after lines that left ``state``;
    None when a line still arriving (``complete`` False) does not tell yet."""
    try:
        return _classify(state, line, complete)
    except _Undecided:
        return None


def _need(complete: bool) -> None:
    if not complete:
        raise _Undecided


def _classify(state: BlockState, s: str, complete: bool) -> Line:
    at, matched = 0, 0
    for column in state.containers:
        rest = s[at:]
        if column is None:  # a block quote: "> " after up to three spaces
            spaces = _indent(s, at)
            if at + spaces >= len(s):
                _need(complete)
                break
            if spaces > 3 or s[at + spaces] != ">":
                break
            at += spaces + 1
            if at >= len(s):
                _need(complete)
            elif s[at] == " ":
                at += 1
        else:  # a list item: blank, or indented to its content column
            if not rest.strip(" "):
                _need(complete)
                if state.empty_item and matched == len(state.containers) - 1:
                    break  # a list item may begin with one blank line, not two
            elif at + _indent(s, at) < column:
                break
            else:
                at = column
        matched += 1
    everything = matched == len(state.containers)
    if state.fence is not None and everything:
        return _in_fence(state, s[at:], complete)
    if (state.html is not None or state.html_to_blank) and everything:
        return _in_html(state, s[at:], complete)
    kept = state.containers[:matched]
    if state.fence is not None or state.html is not None or state.html_to_blank:
        return _new_blocks(kept, s, at, False, False, complete)
    if not everything and state.paragraph:
        # Block starts are tried in the last container that matched, which holds no paragraph,
        # so nothing stops a list item; plain text is a lazy continuation of the paragraph.
        line = _new_blocks(kept, s, at, False, True, complete)
        if line.kind == TEXT and line.state is not None and line.state.containers == kept:
            return Line(TEXT, False, state, at)
        return line
    return _new_blocks(kept, s, at, state.paragraph, state.paragraph, complete)


def _in_fence(state: BlockState, rest: str, complete: bool) -> Line:
    if not complete:
        return Line(HOLD)
    char, length = state.fence or ("`", 3)
    spaces = _indent(rest, 0)
    closer = rest[spaces:]
    run = len(closer) - len(closer.lstrip(char))
    if spaces <= 3 and run >= length and not closer[run:].strip(" \t"):
        return Line(HOLD, False, replace(state, fence=None))
    return Line(HOLD, False, state)


def _in_html(state: BlockState, rest: str, complete: bool) -> Line:
    if state.html_to_blank:
        if not rest.strip():
            _need(complete)
            return Line(FREE, False, replace(state, html=None, html_to_blank=False))
        return Line(FREE, False, state if complete else None)
    if not complete:
        return Line(FREE)
    assert state.html is not None
    ended = state.html.search(rest) is not None
    return Line(FREE, False, replace(state, html=None) if ended else state)


def _new_blocks(
    containers: tuple[int | None, ...], s: str, at: int, paragraph: bool, tip: bool, complete: bool
) -> Line:
    """Open the containers and the leaf block that start at column ``at`` of the line. With
    ``paragraph`` the line would continue an open paragraph (which an empty list item, a list
    not starting at 1 or some HTML cannot interrupt); with ``tip`` a paragraph is open at all
    (which indented code cannot interrupt)."""
    containers = tuple(containers)
    while True:
        spaces = _indent(s, at)
        rest = s[at + spaces :]
        if not rest.strip(" \t"):
            _need(complete)
            return Line(FREE, False, BlockState(containers))
        if spaces >= 4:
            if tip:
                return Line(TEXT, not paragraph, BlockState(containers, True), at)
            return Line(FREE, False, BlockState(containers) if complete else None)  # indented code
        first = rest[0]
        if first == ">":
            containers += (None,)
            at += spaces + 1
            if at >= len(s):
                _need(complete)
            elif s[at] == " ":
                at += 1
            paragraph = tip = False
            continue
        item = _list_item(rest, at + spaces, paragraph, complete)
        if item is not None:
            containers += (item[0],)
            at = item[1]
            paragraph = tip = False
            if not s[at:].strip(" \t"):
                return Line(FREE, False, BlockState(containers, empty_item=True))
            continue
        if first in "`~":
            _need(complete)
            fence = _FENCE.fullmatch(rest)
            if fence and not (first == "`" and "`" in fence.group(2)):
                run = fence.group(1)
                return Line(HOLD, False, BlockState(containers, False, (run[0], len(run))))
        if first == "#":
            if _ATX.match(rest):
                return Line(HOLD, False, BlockState(containers) if complete else None)
            if len(rest) <= 6 and rest == "#" * len(rest):
                _need(complete)
        if first in "-*_" and _THEMATIC_SO_FAR.fullmatch(rest):
            _need(complete)
            if _THEMATIC.fullmatch(rest.rstrip(" \t")):
                return Line(HOLD, False, BlockState(containers))
        if first in "=-" and paragraph and _SETEXT.fullmatch(rest):
            _need(complete)
            return Line(HOLD, False, BlockState(containers))
        if first == "<":
            _need(complete)
            for start, end, interrupts in _HTML_STARTS:
                if start.match(rest) and (interrupts or not tip):
                    if end is not None and end.search(rest, 1):
                        return Line(FREE, False, BlockState(containers))  # starts and ends here
                    return Line(FREE, False, BlockState(containers, False, None, end, end is None))
        if not paragraph and complete and _DEFINITION.fullmatch(rest):
            # A link reference definition is no paragraph: what follows it starts afresh.
            return Line(TEXT, True, BlockState(containers), at)
        return Line(TEXT, not paragraph, BlockState(containers, True), at)


def _list_item(rest: str, column: int, paragraph: bool, complete: bool) -> tuple[int, int] | None:
    """A list marker at the start of ``rest`` (at ``column``): the item's content column and
    where its content starts, or None."""
    if rest[0] in "-*+":
        marker = _BULLET.match(rest)
        if marker is None:
            return None
        if _THEMATIC_SO_FAR.fullmatch(rest):
            _need(complete)
            if _THEMATIC.fullmatch(rest.rstrip(" \t")):
                return None
        width = 1
        ordered_one = True
    elif rest[0].isdigit():
        if _ORDERED_SO_FAR.fullmatch(rest):
            _need(complete)
        marker = _ORDERED.match(rest)
        if marker is None:
            return None
        width = marker.end()
        ordered_one = marker.group(1) == "1"
    else:
        return None
    after = rest[width:]
    if not after.strip(" \t"):
        _need(complete)
        if paragraph:
            return None  # an empty item cannot interrupt a paragraph
        return column + width + 1, column + len(rest)
    if paragraph and not ordered_one:
        return None  # an ordered list interrupting a paragraph must start at 1
    spaces = _indent(after, 0)
    if spaces > 4:
        spaces = 1  # the content is indented code, one space after the marker
    return column + width + spaces, column + width + spaces
