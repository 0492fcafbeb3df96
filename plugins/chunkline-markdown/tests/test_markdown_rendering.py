"""The rendering property, checked with a real CommonMark parser: no cut the policy makes falls inside
a code span, a fenced code line, a link, an image or an autolink, as markdown-it-py parses the text."""

from __future__ import annotations

from typing import Any

import pytest
from chunkline_markdown import MarkdownPolicy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_spans import MarkdownSpans, cut_points

ORACLE = MarkdownSpans()


def cuts_of(text: str, deltas: list[str], limit: int | None = None) -> list[str]:
    """Feed the deltas, flush only at the end; return the pieces sent."""
    policy = MarkdownPolicy(limit)
    pieces = [piece for delta in deltas for piece in policy.feed(delta)]
    pieces += policy.flush()
    assert "".join(pieces) == text
    return pieces


def split(text: str, sizes: list[int]) -> list[str]:
    deltas, at = [], 0
    for size in sizes or [len(text) or 1]:
        if at >= len(text):
            break
        deltas.append(text[at : at + size])
        at += size
    if at < len(text):
        deltas.append(text[at:])
    return deltas


# -- the checker itself ----------------------------------------------------------------------------


def test_the_checker_finds_what_the_parser_finds() -> None:
    text = "a `b c` [d](e) ![f](g) <https://h.i> ``j`\nk``\n\n```py\nx = 1\n```\n"
    spans = {(text[start:end], kind) for start, end, kind in ORACLE.spans(text)}
    assert ("`b c`", "backticks") in spans
    assert ("[d](e)", "link") in spans
    assert ("![f](g)", "image") in spans
    assert ("<https://h.i>", "autolink") in spans
    assert ("``j`\nk``", "backticks") in spans
    assert ("```py\n", "fence") in spans and ("x = 1\n", "fence") in spans
    assert ORACLE.violations(text, [text.index("c`")]) == ["cut at 5 inside backticks '`b c`'"]
    assert ORACLE.violations(text, [text.index("x = 1") + 2])
    assert not ORACLE.violations(text, [text.index("x = 1")])  # a line start in a fence is fine


def test_the_checker_follows_containers_and_lazy_lines() -> None:
    text = "> a `b\nc` d\n\n- [x\n  y](z)\n"
    spans = {text[start:end] for start, end, _ in ORACLE.spans(text)}
    assert "`b\nc`" in spans
    assert "[x\n  y](z)" in spans


# -- hand-written Markdown -------------------------------------------------------------------------

DOCUMENTS = [
    'Install with `pip install chunkline` and read [the docs](https://example.com/docs "Docs").\n',
    "1. First:\n   ```bash\n   echo `whoami`\n   ls [a-z]*\n   ```\n2. Then `x`.\n   - nested ![i](i.png)\n",
    "> Quote with `code\n> over lines` and a [link\n> text](url)\n> ~~~\n> fenced [not](link)\n> ~~~\n",
    "    indented `code\n\npara ``with ` inside`` <span title='a`b'>x</span> `after`\n",
    "Setext `h`\n===\n\n# ATX [h](x) #\n\n***\n\n"
    '[ref]: http://example.com "T"\n[text][ref] and [ref][] and [ref].\n',
    "<details>\n<summary>S</summary>\n\n```\n`inside` [fence](x)\n```\n</details>\n\n<!-- a `b\n-->\n",
    "Unclosed ` tick and [bracket ( here\n\nNext paragraph `ok` <mail@example.com>.\n",
    "````\n```\nnested fence\n```\n````\n~~~ info `ticks` fine\n~~~\n",
    "- a\n\n  ```\n  code\n  ```\n- b `c\n  d` e\n\n  > quote [in\n  > list](x)\n",
    '[a link](\n/url\n"on lines") and [another](</b c>\n  (t)) `x`\n',
    "[deep](" + "(" * 32 + "x" + ")" * 32 + ") and [too deep](" + "(" * 33 + "x `y" + ")" * 33 + " z`)\n",
    "*emphasis* **strong** \\`escaped\\` \\[not a link\\] &amp; "
    "`` ` `` [a [nested] link](u (p)) ![a](<b c> 't')\n",
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_no_cut_breaks_a_span_in_hand_written_markdown(text: str) -> None:
    for size in (1, 2, 3, 5, 8, 13, len(text)):
        pieces = cuts_of(text, split(text, [size] * len(text)))
        assert ORACLE.violations(text, cut_points(pieces)) == [], size


@pytest.mark.parametrize("text", DOCUMENTS)
def test_crlf_line_endings_are_line_endings(text: str) -> None:
    crlf = text.replace("\n", "\r\n")
    for size in (1, 3, 8, len(crlf)):
        pieces = cuts_of(crlf, split(crlf, [size] * len(crlf)))
        # The parser reads "\r\n" as "\n": the cuts where they fall in that text (a cut between
        # "\r" and "\n" counts as one before the line break).
        cuts = [len(crlf[:cut].replace("\r\n", "\n").removesuffix("\r")) for cut in cut_points(pieces)]
        assert ORACLE.violations(text, cuts) == [], size


def test_text_outside_spans_goes_out_at_once() -> None:
    text = "Plain words, then `code`, then more words.\n"
    pieces = cuts_of(text, list(text))
    # One piece per character, except the code span: it waits for its closing backtick, and that
    # one for the next character (a longer run would be a different closer).
    before, after = text.split("`code`,")
    assert pieces == [*before, "`code`,", *after]


# -- generated Markdown ------------------------------------------------------------------------------


class _Draw:
    """Random choices drawn through hypothesis, so that failing documents shrink."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw

    def choice(self, options: list[str] | tuple[str, ...]) -> str:
        return str(self.draw(st.sampled_from(options)))

    def chance(self, p: float) -> bool:
        return bool(self.draw(st.integers(0, 99)) < p * 100)

    def count(self, low: int, high: int) -> int:
        return int(self.draw(st.integers(low, high)))


WORDS = (
    "alpha",
    "x",
    "it's",
    "*em*",
    "**b**",
    "\\`",
    "\\[",
    "a\\\\",
    "!",
    "(",
    ")",
    "]",
    "[",
    "<",
    ">",
    "`",
    "``",
    "```",
    "&amp;",
    "~",
    "http://x.y",
    "![",
    "\t",
)


def _inline(r: _Draw, depth: int = 0) -> str:
    kind = r.count(0, 9)
    if kind <= 3:
        return r.choice(WORDS)
    if kind == 4:
        ticks = r.choice(["`", "``", "```"])
        inner = " ".join(
            r.choice(["code", "a`b", "[x](y)", "<b>", "x\ny", "``", "\\"]) for _ in range(r.count(1, 3))
        )
        return ticks + inner + (ticks if r.chance(0.85) else "")
    if kind == 5:
        text = " ".join(_inline(r, depth + 1) if depth < 2 else "t" for _ in range(r.count(1, 3)))
        dest = r.choice(["http://e.com/a", "<a b>", "/p(a)r", "u", "", "x\\)y", "a\n b"])
        title = r.choice(["", ' "T)t"', " 'q'", " (p)", '\n"multi\nline"'])
        return f"{'!' if r.chance(0.25) else ''}[{text}]({dest}{title}{')' if r.chance(0.9) else ''}"
    if kind == 6:
        return r.choice(["[ref]", "[text][ref]", "[ref][]", "[nope]", "[a [b] c]"])
    if kind == 7:
        return r.choice(
            [
                "<https://e.com/p?q=1>",
                "<mail@e.com>",
                "<not a link>",
                "<span title='`'>",
                "<http://a`b>",
                "<!-- c `x -->",
                "<a\nhref='x'>",
            ]
        )
    return r.choice([" ", "\n", "  \n"])


def _block(r: _Draw, depth: int = 0) -> str:
    kind = r.count(0, 9)
    if kind <= 2:
        return " ".join(_inline(r) for _ in range(r.count(1, 10)))
    if kind == 3:
        fence = r.choice(["```", "~~~", "````"])
        info = r.choice(["", "python", "js {x}", "a`b"])
        body = "\n".join(
            r.choice(["code `x` [a](b)", "```", "  ~~~", "", "x = [1,", "]", "    indented"])
            for _ in range(r.count(0, 4))
        )
        return f"{fence}{info}\n{body}\n{fence if r.chance(0.85) else ''}".rstrip("\n")
    if kind == 4:
        return "    indented `code\n    more"
    if kind in (5, 6) and depth < 3:
        marker = r.choice(["- ", "* ", "1. ", "2) ", "10. "])
        pad = " " * len(marker)
        return "\n".join(
            marker + _block(r, depth + 1).replace("\n", "\n" + pad) for _ in range(r.count(1, 3))
        )
    if kind == 7 and depth < 3:
        return "\n".join(
            ("> " + line) if r.chance(0.9) else line for line in _block(r, depth + 1).split("\n")
        )
    if kind == 8:
        return r.choice(
            ["# Heading `x`", "## [a](b) ##", "***", "---", "Title\n===", "#nothead", "<details>\n`a\n\nb`"]
        )
    return r.choice(['[ref]: http://example.com/ref "T"', "<div>\n`a\n</div>", "<!-- c `x\n-->"])


@st.composite
def markdown_documents(draw: Any) -> str:
    r = _Draw(draw)
    blocks = [_block(r) for _ in range(r.count(1, 5))]
    return r.choice(["\n\n", "\n"]).join(blocks) + r.choice(["", "\n"])


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(markdown_documents(), st.lists(st.integers(1, 12), max_size=200))
def test_no_cut_breaks_a_span_in_generated_markdown(text: str, sizes: list[int]) -> None:
    pieces = cuts_of(text, split(text, sizes))
    assert ORACLE.violations(text, cut_points(pieces)) == []
