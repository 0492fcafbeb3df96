"""The markdown policy on its own: what it holds and releases, its argument, and losslessness."""

from __future__ import annotations

import chunkline_markdown
import pytest
from chunkline_markdown import MarkdownPolicy
from hypothesis import given, settings
from hypothesis import strategies as st

import chunkline
from chunkline.testing import assert_lossless

PLUGINS = [chunkline_markdown]


def feed_all(deltas: list[str], policy: MarkdownPolicy | None = None) -> list[list[str]]:
    """What each feed returned, then what the final flush returned."""
    policy = policy or MarkdownPolicy()
    return [policy.feed(delta) for delta in deltas] + [policy.flush()]


def test_plain_text_goes_out_as_it_arrives() -> None:
    assert feed_all(["Hello, ", "wor", "ld. Bye"]) == [["Hello, "], ["wor"], ["ld. Bye"], []]


def test_a_code_span_is_held_until_it_closes() -> None:
    assert feed_all(["Run `pip ins", "tall x` now", "."]) == [["Run "], ["`pip install x` now"], ["."], []]


def test_a_longer_backtick_run_needs_a_run_as_long_to_close() -> None:
    out = feed_all(["a ``x ` y", "` z`` b"])
    assert out == [["a "], ["``x ` y` z`` b"], []]


def test_a_trailing_backtick_run_is_held_until_its_length_is_known() -> None:
    policy = MarkdownPolicy()
    assert policy.feed("see `") == ["see "]
    assert policy.feed("`") == []
    assert policy.feed("x``.") == ["``x``."]


def test_an_escaped_backtick_opens_nothing() -> None:
    assert feed_all(["a \\` b", " c"]) == [["a \\` b"], [" c"], []]


def test_a_link_is_held_until_its_closing_parenthesis() -> None:
    out = feed_all(["See [the do", "cs](https://ex", 'ample.com "T")', " now"])
    assert out == [["See "], [], ['[the docs](https://example.com "T")'], [" now"], []]


def test_brackets_that_are_no_inline_link_are_released_at_the_next_character() -> None:
    assert feed_all(["a [b] c"]) == [["a [b] c"], []]
    assert feed_all(["a [b]", " c"]) == [["a "], ["[b] c"], []]
    # "(" after "]" starts a link tail; "( x y" is not one, so it is plain text again.
    assert feed_all(["[b](x y z) and"]) == [["[b](x y z) and"], []]


def test_an_image_starts_at_its_exclamation_mark() -> None:
    assert feed_all(["Look!", "[cat](c.png) ok"]) == [["Look"], ["![cat](c.png) ok"], []]


def test_autolinks_and_raw_html_are_held_whole() -> None:
    assert feed_all(["go <https://exa", "mple.com> now"]) == [["go "], ["<https://example.com> now"], []]
    assert feed_all(["a <span title='`", "'>b</span> `c`."]) == [
        ["a "],
        ["<span title='`'>b</span> `c`."],
        [],
    ]
    assert feed_all(["1 < 2 and", " 3 > 2"]) == [["1 < 2 and"], [" 3 > 2"], []]


def test_a_comment_is_held_until_it_closes_however_long() -> None:
    comment = "<!-- " + "x > " * 2000 + "-->"
    assert feed_all(["a " + comment[:5000], comment[5000:] + " b"]) == [["a "], [comment + " b"], []]
    # Comments that never close, opened inside one another: each is followed to its end once.
    text = "a " + "<!-- >" * 4000
    assert feed_all([text]) == [["a "], [text[2:]]]


def test_fenced_code_goes_out_a_whole_line_at_a_time() -> None:
    out = feed_all(["Code:\n``", "`py\nprint(", "1)\nx = [", "2]\n``", "`\nAfter ", "that."])
    assert out == [
        ["Code:\n"],
        ["```py\n"],
        ["print(1)\n"],
        ["x = [2]\n"],
        ["```\nAfter "],
        ["that."],
        [],
    ]


def test_a_fence_inside_a_list_item_is_followed() -> None:
    text = "1. Install:\n   ```sh\n   pip install x\n   ```\n2. Run it.\n"
    out = feed_all(list(text))
    sent = [piece for pieces in out for piece in pieces]
    assert "".join(sent) == text
    assert "   pip install x\n" in sent  # the code line as one piece
    assert all("pip" not in piece or piece == "   pip install x\n" for piece in sent)


def test_an_unclosed_span_is_released_at_the_end_of_its_paragraph() -> None:
    out = feed_all(["a stray ` backtick", " here\n", "\nNext `pa", "ra` ok"])
    assert out == [["a stray "], [], ["` backtick here\n\nNext "], ["`para` ok"], []]


def test_a_destination_nesting_more_than_32_parentheses_is_no_link() -> None:
    # As in markdown-it and cmark; it also bounds the text a failing destination reads again.
    assert feed_all(["[a](" + "(" * 32, "x" + ")" * 33]) == [[], ["[a](" + "(" * 32 + "x" + ")" * 33], []]
    assert feed_all(["[a](" + "(" * 32, "(x"]) == [[], ["[a](" + "(" * 33 + "x"], []]


def test_link_tails_that_fail_inside_one_another_are_read_again_without_recursion() -> None:
    # Each "(" opens a destination that reaches the " y", where every one of them fails at once.
    text = "[a](" * 300 + " x y"
    assert feed_all([text, " `y` z"]) == [[text], [" `y` z"], []]


def test_the_argument_bounds_what_is_held() -> None:
    policy = MarkdownPolicy(limit=10)
    assert policy.feed("a `12345") == ["a "]
    assert policy.feed("6789012") == ["`123456789012"]  # more than 10 waiting: sent anyway
    assert policy.feed("3` b") == ["3` b"]


def test_flush_sends_everything_and_the_markdown_is_still_followed() -> None:
    policy = MarkdownPolicy()
    assert policy.feed("```\ncode li") == ["```\n"]
    assert policy.flush() == ["code li"]  # the end of a content block: everything goes
    assert policy.feed("ne\nmore co") == ["ne\n"]  # still in the fence: whole lines only
    assert policy.feed("de\n```\nok") == ["more code\n```\nok"]


def policy_with(chunking: str) -> object:
    pipeline = chunkline.Pipeline(["chunker"], plugins=PLUGINS, load_entrypoints=False, chunking=chunking)
    return pipeline.options["chunking"]()


@pytest.mark.parametrize("argument", ["0", "-1", "x", "1.5"])
def test_a_bad_argument_is_an_option_error(argument: str) -> None:
    with pytest.raises(chunkline.OptionError, match=r"chunking: 'markdown:.*': the argument is the most"):
        policy_with(f"markdown:{argument}")


def test_the_policy_is_registered_by_name_with_and_without_its_argument() -> None:
    assert isinstance(policy_with("markdown"), MarkdownPolicy)
    assert isinstance(policy_with("markdown:500"), MarkdownPolicy)


SAMPLES = [
    "Hello **world**, run `pip install x` and read [the docs](https://example.com 'Docs').",
    "1. Step:\n   ```sh\n   echo `date`\n   ```\n2. ![img](a.png)\n\n> quote `x\n> y` end\n",
    "a ` b [c d\n\ne `` f ``` g <h i\n    code `\n~~~\nfence [x](y)\n",
    "\t- tab `x`\n\t  more\n",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_lossless_for_hand_written_markdown(text: str) -> None:
    deltas = [text[i : i + 7] for i in range(0, len(text), 7)]
    pieces = assert_lossless("markdown", deltas, plugins=PLUGINS, load_entrypoints=False)
    assert "".join(pieces) == text
    assert_lossless("markdown:5", [text], plugins=PLUGINS, load_entrypoints=False)


MARKDOWNISH = st.text(st.sampled_from(list("ab `[]()!<>\\\n\t#-*>~1.:/\"'é👋")), max_size=80)


@settings(max_examples=150, deadline=None)
@given(st.lists(MARKDOWNISH, max_size=6), st.sampled_from(["markdown", "markdown:7"]))
def test_lossless_for_any_text_and_any_split(texts: list[str], chunking: str) -> None:
    assert_lossless(chunking, texts, random_splits=4, two_way=8, plugins=PLUGINS, load_entrypoints=False)
