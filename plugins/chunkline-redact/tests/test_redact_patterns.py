"""The secret patterns: each built-in kind, the options and their errors, and the regex analysis."""

from __future__ import annotations

import re
from typing import Any

import chunkline_redact
import pytest
from chunkline_redact import BUILTIN_PATTERNS, redact_text
from chunkline_redact._regex import analyze
from chunkline_redact.patterns import pattern_set
from hypothesis import given, settings
from hypothesis import strategies as st

import chunkline

# Realistic-looking examples of each kind (made up; none is a real credential).
EXAMPLES = {
    "anthropic_key": "sk-ant-api03-" + "Xy7_-" * 18 + "QQAA",
    "openai_key": "sk-proj-" + "Ab3_x-" * 25,
    "aws_access_key": "AKIAIOSFODNN7EXAMPLE",
    "github_token": "ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8",
    "google_api_key": "AIza" + "SyD-9tSrke72PouQMnMX_7" + "xxxxxxxxxxxxx",
    "slack_token": "xoxb-" + "123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx",
    "stripe_key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "email": "ada.lovelace+notes@mail.example.co.uk",
}


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_each_builtin_kind_is_masked_in_prose(kind: str) -> None:
    secret = EXAMPLES[kind]
    text = f"Here it is: {secret}, use it well.\n"
    assert redact_text(text) == f"Here it is: [REDACTED:{kind}], use it well.\n"


def test_legacy_openai_keys_and_other_github_token_kinds() -> None:
    legacy = "sk-" + "T3BlbkFJ" * 6
    assert redact_text(f"({legacy})") == "([REDACTED:openai_key])"
    assert redact_text("github_pat_" + "11ABCDEFG0" * 8 + "xy") == "[REDACTED:github_token]"
    assert redact_text("ASIA" + "Y" * 16) == "[REDACTED:aws_access_key]"
    assert redact_text("rk_test_" + "z" * 30) == "[REDACTED:stripe_key]"


def test_only_the_token_of_a_bearer_header_is_masked() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    assert redact_text(f"Authorization: Bearer {token}") == "Authorization: Bearer [REDACTED:bearer_token]"
    assert (
        redact_text(f"authorization: bearer\t{token}==") == "authorization: bearer\t[REDACTED:bearer_token]"
    )


@pytest.mark.parametrize(
    "text",
    [
        "a task-force-with-a-very-long-hyphenated-name met",  # "sk-" inside a word
        "Use Bearer authentication for this API.",  # too short to be a token
        "user@localhost and @handles",  # no domain with a top-level name
        "AKIAIOSFODNN7EXAMPLEX",  # 21 characters: not an access key id
        "XAKIAIOSFODNN7EXAMPLE",  # glued to more capitals
        "sk-short",
        "the cupbearer abcdefghijklmnopqrstuvwx",  # "bearer" inside a word
    ],
)
def test_lookalikes_are_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_where_two_kinds_could_start_at_one_place_the_first_in_order_wins() -> None:
    key = EXAMPLES["openai_key"]
    assert redact_text(f"Bearer {key}") == "Bearer [REDACTED:openai_key]"


def test_kinds_can_be_chosen_and_added() -> None:
    text = f"{EXAMPLES['email']} {EXAMPLES['aws_access_key']} TICKET-123456"
    assert (
        redact_text(text, patterns=["email"])
        == f"[REDACTED:email] {EXAMPLES['aws_access_key']} TICKET-123456"
    )
    assert redact_text(text, patterns="aws_access_key, email") == (
        "[REDACTED:email] [REDACTED:aws_access_key] TICKET-123456"
    )
    assert redact_text(text, patterns=[], extra_patterns={"ticket": r"TICKET-[0-9]{6}"}) == (
        f"{EXAMPLES['email']} {EXAMPLES['aws_access_key']} [REDACTED:ticket]"
    )
    # A custom pattern under a built-in name replaces it.
    assert (
        redact_text("x@y.io", extra_patterns={"email": r"[a-z]@[a-z]\.io"}, replacement="<{kind}>")
        == "<email>"
    )
    assert redact_text(text, replacement="***") == "*** *** TICKET-123456"


def pipeline(**options: Any) -> chunkline.Pipeline:
    stages = chunkline.default_stages(plugins=[chunkline_redact], load_entrypoints=False).add("redact")
    return chunkline.Pipeline(stages, plugins=[chunkline_redact], load_entrypoints=False, **options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"redact_patterns": ["email", "nope"]},
            "unknown pattern 'nope'; the built-in patterns are anthropic_key",
        ),
        ({"redact_patterns": ["email", "email"]}, "names a pattern twice"),
        ({"redact_patterns": 3}, "must be a list of built-in pattern names"),
        ({"redact_extra_patterns": {"x": "a("}}, r"pattern 'x': 'a\(' is not a valid regular expression"),
        ({"redact_extra_patterns": {"x": "a?"}}, "can match an empty string"),
        ({"redact_extra_patterns": {"x": "key-[0-9]+"}}, r"has no upper bound on its length.*\{m,n\}"),
        ({"redact_extra_patterns": {"x": "a{1,}"}}, "has no upper bound on its length"),
        ({"redact_extra_patterns": {"x": "a{1,5000}"}}, "can match up to 5000 characters; the longest"),
        ({"redact_extra_patterns": {"x": r"(a)\1"}}, "backreferences"),
        ({"redact_extra_patterns": {"9x": "a"}}, "pattern name '9x' must be a letter"),
        ({"redact_extra_patterns": ["a"]}, "must be a dict of name to regular expression"),
        ({"redact_extra_patterns": {"x": 5}}, "must be a regular expression in a str"),
        ({"redact_replacement": 'say "no"'}, "would break the JSON of tool-call arguments"),
        ({"redact_replacement": "back\\slash"}, "would break the JSON"),
        ({"redact_replacement": "line\nbreak"}, "would break the JSON"),
        ({"redact_replacement": "{name}"}, "not a valid template: only {kind} may be used"),
        ({"redact_replacement": None}, "must be a str"),
        ({"redact_reasoning": "yes"}, "must be True or False"),
    ],
)
def test_bad_options_are_option_errors_naming_the_option(options: dict[str, Any], message: str) -> None:
    name = next(iter(options))
    with pytest.raises(chunkline.OptionError, match=rf"option '{name}' \(stage 'redact'\): .*{message}"):
        pipeline(**options)


def test_options_belong_to_the_redact_stage() -> None:
    with pytest.raises(
        chunkline.OptionError, match="belongs to stage 'redact', which is not in this pipeline"
    ):
        chunkline.Pipeline(plugins=[chunkline_redact], load_entrypoints=False, redact_replacement="x")


# -- the analysis behind streaming ---------------------------------------------------------------


def test_lengths_and_reach_are_worked_out_from_the_pattern() -> None:
    aws = analyze(BUILTIN_PATTERNS["aws_access_key"], limit=4096)
    assert (aws.max_length, aws.reach, aws.context) == (20, 21, 1)  # the lookahead reads one more
    bearer = analyze(BUILTIN_PATTERNS["bearer_token"], limit=4096)
    assert bearer.context == len("bearer ") + 1
    assert bearer.max_length == 1026
    custom = analyze(r"(?i)id=(?:[a-f0-9]{8}|x{2,3})\b", limit=4096)
    assert (custom.max_length, custom.reach) == (11, 12)


CUSTOM_PATTERNS = [
    r"(?i)token[:=][a-z0-9]{4,12}",
    r"(?P<p>ab|a)(?:c{1,3}|d)(?=x)",
    r"(?<=key=)[A-Z]{3,6}\b",
    r"(?>ab|a)b{1,2}",
    r"q{2,4}+r",
    r"(?:[^\s@]{1,5})@z",
    r"(?s:.{2})!",
    r"\d{3}-\d{2}",
]
ALPHABET = "abcdqrxzkKeyT=:-!@ \n0123456789ABCDEFtokenIDS"


@settings(max_examples=300, deadline=None)
@given(st.text(ALPHABET, max_size=40), st.sampled_from(CUSTOM_PATTERNS + list(BUILTIN_PATTERNS.values())))
def test_the_rebuilt_regex_matches_exactly_what_the_pattern_does(text: str, pattern: str) -> None:
    rebuilt = re.compile(analyze(pattern, limit=4096).scoped)
    original = re.compile(pattern)
    assert [m.span() for m in rebuilt.finditer(text)] == [m.span() for m in original.finditer(text)]


def _outcome(pattern: re.Pattern[str], text: str, at: int) -> tuple[int, int] | None:
    match = pattern.match(text, at)
    return match.span() if match else None


@settings(max_examples=400, deadline=None)
@given(st.data(), st.sampled_from(CUSTOM_PATTERNS + list(BUILTIN_PATTERNS.values())))
def test_wherever_more_text_could_change_a_match_the_closure_says_a_secret_may_be_coming(
    data: st.DataObject, pattern: str
) -> None:
    """If matching at a place gives a different answer on a prefix of the text than on the
    whole, the place must count as "a secret may still be starting"; otherwise streaming would
    release text that a later delta turns into (or out of) a secret."""
    compiled = re.compile(pattern)
    analysis = analyze(pattern, limit=4096)
    closure = re.compile(f"(?:{analysis.closure})\\Z")
    before = data.draw(st.sampled_from(["", " ", "key=", "Bearer ", "x"]))
    try:
        body = data.draw(st.from_regex(compiled, fullmatch=True).filter(lambda s: len(s) < 60))
    except Exception:  # a construct hypothesis cannot generate from
        body = data.draw(st.text(ALPHABET, max_size=20))
    text = before + body + data.draw(st.text(ALPHABET, max_size=3))
    at = len(before)
    whole = _outcome(compiled, text, at)
    for cut in range(at, len(text)):
        if _outcome(compiled, text[:cut], at) != whole:
            assert closure.match(text[:cut], at), (pattern, text[:cut], at)


def test_a_set_with_no_kinds_masks_nothing_and_holds_nothing() -> None:
    empty = pattern_set((), (), "x")
    assert empty.redact("sk-ant-api03-" + "a" * 40) == "sk-ant-api03-" + "a" * 40
    assert redact_text("ada@example.com", patterns=[]) == "ada@example.com"


# One alternation of the patterns as written: the plain definition of masking a whole text, with
# none of the shortcuts (required literals, rebuilt regexes) that the stage takes.
_PLAIN = re.compile("|".join(f"(?P<k{i}>{p})" for i, p in enumerate(BUILTIN_PATTERNS.values())))
_KINDS = list(BUILTIN_PATTERNS)
FRAGMENTS = [
    *EXAMPLES.values(),
    "sk-",
    "sk-ant-",
    "proj-",
    "AKIA",
    "ghp_",
    "github_pat_",
    "AIza",
    "xoxb-",
    "sk_live_",
    "rk_test_",
    "Bearer ",
    "bearer\t",
    "@",
    ".",
    ".com",
    "-",
    "_",
    " ",
    "\n",
    "word",
    "X" * 16,
    "a" * 22,
    "9" * 16,
    "é",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=14).map("".join))
def test_masking_equals_one_plain_alternation_of_the_patterns(text: str) -> None:
    plain = _PLAIN.sub(lambda m: f"[REDACTED:{_KINDS[int((m.lastgroup or 'k0')[1:])]}]", text)
    assert redact_text(text) == plain


def test_literals_that_a_kind_needs_combine_across_alternatives() -> None:
    stripe = analyze(BUILTIN_PATTERNS["stripe_key"], limit=4096)
    assert stripe.required[0] == (("sk_live_", "sk_test_", "rk_live_", "rk_test_"), False)
    aws = analyze(BUILTIN_PATTERNS["aws_access_key"], limit=4096)
    assert aws.required[0] == (("AKIA", "ASIA", "ABIA", "ACCA"), False)
    assert analyze(BUILTIN_PATTERNS["bearer_token"], limit=4096).required[0] == (("bearer",), True)
