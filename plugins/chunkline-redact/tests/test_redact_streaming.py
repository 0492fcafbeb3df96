"""The redact stage on streamed deltas: split secrets, split invariance, what it holds back, order, JSON."""

from __future__ import annotations

import itertools
import json
from typing import Any

import chunkline_redact
import pytest
from chunkline_redact import redact_text
from chunkline_redact.patterns import DEFAULT_REPLACEMENT, pattern_set
from hypothesis import given, settings
from hypothesis import strategies as st

import chunkline
from chunkline.events import (
    Finish,
    Ping,
    ReasoningDelta,
    ReasoningEnd,
    TextDelta,
    TextEnd,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
)
from chunkline.testing import (
    AnthropicStream,
    assert_stage_split_invariant,
    coalesce,
    open_stage,
    read_openai_stream,
    run_stage,
    sse_from_events,
)

PLUGINS = [chunkline_redact]
ANTHROPIC = "sk-ant-api03-" + "R4nd0m_-" * 12 + "AA"
SECRETS = {
    "anthropic_key": ANTHROPIC,
    "openai_key": "sk-proj-" + "aB3dE_f-" * 8,
    "aws_access_key": "AKIAIOSFODNN7EXAMPLE",
    "github_token": "ghp_" + "0123456789abcdefghijABCDEFGHIJ012345",
    "google_api_key": "AIza" + "0123456789abcdefghij_ABCDEFGHIJ-123",
    "slack_token": "xoxp-" + "1234567890-abcdef",
    "stripe_key": "rk_live_" + "0123456789abcdefXYZ",
    "email": "grace.hopper@navy.example.mil",
}


def run(items: list[Any], **options: Any) -> list[Any]:
    return run_stage("redact", items, plugins=PLUGINS, load_entrypoints=False, **options)


def text_of(items: list[Any]) -> str:
    return "".join(item.text for item in items if isinstance(item, TextDelta))


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_a_secret_split_at_every_place_across_two_deltas_is_masked(kind: str) -> None:
    text = f"key: {SECRETS[kind]} done"
    expected = f"key: [REDACTED:{kind}] done"
    for cut in range(len(text) + 1):
        out = run([TextDelta(0, text[:cut]), TextDelta(0, text[cut:])])
        assert text_of(out) == expected, cut


def test_a_secret_in_one_character_deltas_is_masked() -> None:
    text = f"Keys {ANTHROPIC} and {SECRETS['email']}."
    out = run([TextDelta(0, char) for char in text])
    assert text_of(out) == "Keys [REDACTED:anthropic_key] and [REDACTED:email]."


FRAGMENTS = [
    *SECRETS.values(),
    "sk-ant-",
    "sk-",
    "AKIA",
    "ghp_",
    "@",
    ".",
    ".com",
    "example",
    " ",
    "\n",
    "Bearer ",
    "tok_" + "x" * 20,
    "=",
    "é",
    "word",
    "-",
    "_",
    "0123456789",
]
texts = st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join)


@settings(max_examples=200, deadline=None)
@given(texts, st.data())
def test_any_split_gives_what_masking_the_whole_text_gives(text: str, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.sets(st.integers(0, len(text)), max_size=8)))
    bounds = [0, *cuts, len(text)]
    pieces = [TextDelta(0, text[a:b]) for a, b in itertools.pairwise(bounds)]
    assert text_of(run(pieces)) == redact_text(text)


def test_assert_stage_split_invariant_holds_for_content_reasoning_and_arguments() -> None:
    items = [
        ReasoningDelta(0, f"I'll use {SECRETS['openai_key']} here"),
        ReasoningEnd(0),
        TextDelta(1, f"mail {SECRETS['email']} or Bearer abcdefghijklmnop0123"),
        TextEnd(1),
        ToolCallStart(2, "toolu_1", "send"),
        ToolCallDelta(2, json.dumps({"to": SECRETS["email"], "key": ANTHROPIC, "n": 3})),
        ToolCallEnd(2),
    ]
    out = assert_stage_split_invariant("redact", items, plugins=PLUGINS, load_entrypoints=False)
    assert out[0] == ReasoningDelta(0, "I'll use [REDACTED:openai_key] here")
    assert out[2] == TextDelta(1, "mail [REDACTED:email] or Bearer [REDACTED:bearer_token]")
    assert out[4] == ToolCallStart(2, "toolu_1", "send")
    masked = {"to": "[REDACTED:email]", "key": "[REDACTED:anthropic_key]", "n": 3}
    assert json.loads(out[5].arguments) == masked


# -- what is held back ---------------------------------------------------------------------------


def test_held_text_never_exceeds_the_longest_secret_less_one() -> None:
    patterns = pattern_set(tuple(chunkline_redact.BUILTIN_PATTERNS), (), DEFAULT_REPLACEMENT)
    limit = patterns.max_length - 1
    run_ = open_stage("redact", plugins=PLUGINS, load_entrypoints=False)
    stage = run_.stage
    assert isinstance(stage, chunkline_redact.Redactor)
    text = "Bearer " + "a" * 3000 + " end"  # a token longer than any bearer secret
    out = []
    for char in text:
        out += run_.feed(TextDelta(0, char))
        assert stage.held <= limit
    out += run_.close()
    # The first 1024 characters are taken as the token, whatever follows them.
    assert text_of(out) == "Bearer [REDACTED:bearer_token]" + "a" * (3000 - 1024) + " end"


def test_only_text_where_a_secret_may_be_starting_is_held() -> None:
    run_ = open_stage("redact", plugins=PLUGINS, load_entrypoints=False)
    stage = run_.stage
    assert isinstance(stage, chunkline_redact.Redactor)
    assert text_of(run_.feed(TextDelta(0, "Hello there, "))) == "Hello there, "
    assert stage.held == 0
    assert text_of(run_.feed(TextDelta(0, "my key is sk-ant-ap"))) == "my key is "
    assert stage.held == len("sk-ant-ap")
    assert text_of(run_.feed(TextDelta(0, "i03-" + "x" * 30))) == ""
    assert text_of(run_.feed(TextDelta(0, " and that was it"))) == "[REDACTED:anthropic_key] and that was "
    assert stage.held == len("it")  # a word at the end could still become an e-mail address
    assert text_of(run_.close()) == "it"


def test_without_the_email_kind_words_are_not_held() -> None:
    kinds = [k for k in chunkline_redact.BUILTIN_PATTERNS if k != "email"]
    run_ = open_stage("redact", plugins=PLUGINS, load_entrypoints=False, redact_patterns=kinds)
    assert text_of(run_.feed(TextDelta(0, "Hello wor"))) == "Hello wor"
    assert text_of(run_.feed(TextDelta(0, "ld, sk"))) == "ld, "  # "sk" may start a key
    assert text_of(run_.feed(TextDelta(0, "y is blue"))) == "sky is blue"


def test_anything_that_is_not_text_releases_the_held_text_first() -> None:
    out = run(
        [
            TextDelta(0, "ends with sk-ant-api0"),
            TextEnd(0),
            TextDelta(0, "next ada@exa"),
            ToolCallStart(0, "toolu_1", "f"),
            ToolCallDelta(0, '{"a": "sk-'),
            Finish("tool_calls"),
        ]
    )
    assert out == [
        TextDelta(0, "ends with "),
        TextDelta(0, "sk-ant-api0"),
        TextEnd(0),
        TextDelta(0, "next "),
        TextDelta(0, "ada@exa"),
        ToolCallStart(0, "toolu_1", "f"),
        ToolCallDelta(0, '{"a": "'),
        ToolCallDelta(0, "sk-"),
        Finish("tool_calls"),
    ]


def test_a_keep_alive_inside_a_secret_does_not_split_it() -> None:
    items = [
        TextDelta(0, "key " + ANTHROPIC[:12]),
        Ping(),
        UsageUpdate(output_tokens=3),
        TextDelta(0, ANTHROPIC[12:] + " ok"),
    ]
    out = run(items)
    assert out[:3] == [TextDelta(0, "key "), Ping(), UsageUpdate(output_tokens=3)]
    assert text_of(out) == "key [REDACTED:anthropic_key] ok"
    # From bytes: a ping between two deltas of one text block.
    events = AnthropicStream().text("key " + ANTHROPIC[:12], ANTHROPIC[12:] + " ok").stop().events()
    events.insert(4, {"type": "ping"})
    stages = chunkline.default_stages(plugins=PLUGINS, load_entrypoints=False).add("redact")
    pipeline = chunkline.Pipeline(stages, plugins=PLUGINS, load_entrypoints=False)
    output = pipeline.convert(sse_from_events(events))
    assert b": ping\n\n" in output
    assert read_openai_stream(output).content == "key [REDACTED:anthropic_key] ok"


def test_reasoning_is_masked_unless_switched_off() -> None:
    items = [
        ReasoningDelta(0, "use " + SECRETS["aws_access_key"][:9]),
        ReasoningDelta(0, SECRETS["aws_access_key"][9:] + " now"),
    ]
    assert coalesce(run(items)) == [ReasoningDelta(0, "use [REDACTED:aws_access_key] now")]
    assert coalesce(run(items, redact_reasoning=False)) == [
        ReasoningDelta(0, f"use {SECRETS['aws_access_key']} now")
    ]


# -- tool-call arguments ---------------------------------------------------------------------------


def arguments(fragments: list[str], **options: Any) -> str:
    items = [ToolCallStart(0, "toolu_1", "f"), *(ToolCallDelta(0, f) for f in fragments)]
    out = run(items, **options)
    assert out[0] == ToolCallStart(0, "toolu_1", "f")
    assert all(isinstance(item, ToolCallDelta) and item.part == 0 for item in out[1:])
    return "".join(item.arguments for item in out[1:])


def test_secrets_in_arguments_are_masked_and_the_json_stays_valid() -> None:
    document = {
        "headers": {"Authorization": "Bearer 0123456789abcdefghij"},
        SECRETS["email"]: [SECRETS["stripe_key"], 42, None, True],
        "note": f'line one\nkey {ANTHROPIC}\tend "quoted" \\ slash',
    }
    raw = json.dumps(document)
    for size in (1, 3, 7, len(raw)):
        masked = arguments([raw[i : i + size] for i in range(0, len(raw), size)])
        assert json.loads(masked) == {
            "headers": {"Authorization": "Bearer [REDACTED:bearer_token]"},
            "[REDACTED:email]": ["[REDACTED:stripe_key]", 42, None, True],
            "note": 'line one\nkey [REDACTED:anthropic_key]\tend "quoted" \\ slash',
        }


def test_arguments_are_matched_as_the_text_their_escapes_stand_for() -> None:
    # "\n" before the key is a line break, so the key starts a word; "\u0061" is an "a".
    raw = '{"k": "x\\nAKIAIOSFODNN7EXAMPLE", "e": "ad\\u0061@example.com", "u": "caf\\u00e9 ok"}'
    masked = arguments([raw[:20], raw[20:45], raw[45:]])
    assert masked == ('{"k": "x\\n[REDACTED:aws_access_key]", "e": "[REDACTED:email]", "u": "caf\\u00e9 ok"}')
    assert json.loads(masked)["u"] == "café ok"


def test_text_outside_json_strings_is_never_masked() -> None:
    raw = '{"n": 12345678901234567890, "ok": true}'
    assert arguments([raw], redact_extra_patterns={"digits": "[0-9]{5,20}"}) == raw


def test_arguments_that_are_not_json_pass_through_apart_from_secrets() -> None:
    raw = 'not json "ada@example.com \\u12 tail'
    assert arguments([raw[:12], raw[12:]]) == 'not json "[REDACTED:email] \\u12 tail'


def test_a_release_inside_an_escape_keeps_the_place_in_the_json() -> None:
    # Another call's delta releases what call 0 holds while its escape is still arriving; the
    # next fragment still continues that escape, so the string has not ended and is masked.
    for first, second, masked in [
        ('{"a": "x\\', '" ada@example.com"}', {"a": 'x" [REDACTED:email]'}),
        ('{"a": "x\\u00', 'e9 ada@example.com"}', {"a": "xé [REDACTED:email]"}),
    ]:
        items = [ToolCallStart(0, "a", "f"), ToolCallDelta(0, first)]
        items += [ToolCallStart(1, "b", "g"), ToolCallDelta(0, second)]
        out = run(items)
        deltas = [item for item in out if isinstance(item, ToolCallDelta)]
        assert json.loads("".join(item.arguments for item in deltas if item.part == 0)) == masked


def test_arguments_are_left_alone_when_switched_off() -> None:
    raw = json.dumps({"key": ANTHROPIC})
    assert arguments([raw], redact_tool_arguments=False) == raw


def test_parallel_tool_calls_each_keep_their_own_json_state() -> None:
    out = run(
        [
            ToolCallStart(0, "a", "f"),
            ToolCallDelta(0, '{"x": "ada@exam'),
            ToolCallStart(1, "b", "g"),
            ToolCallDelta(1, '{"y": "s'),
            ToolCallDelta(0, 'ple.com"}'),
            ToolCallDelta(1, "k-proj-" + "z" * 30 + '"}'),
        ]
    )
    by_call = {0: "", 1: ""}
    for item in out:
        if isinstance(item, ToolCallDelta):
            by_call[item.part] += item.arguments
    # Switching calls releases what the other one held: a secret cut by that switch is not
    # joined up (Anthropic streams one tool call after another, so this does not happen there).
    assert json.loads(by_call[0]) == {"x": "ada@example.com"}
    assert json.loads(by_call[1]) == {"y": "sk-proj-" + "z" * 30}
    joined = run([ToolCallStart(1, "b", "g"), ToolCallDelta(1, '{"y": "sk-proj-' + "z" * 30 + '"}')])
    arguments_of = "".join(i.arguments for i in joined if isinstance(i, ToolCallDelta))
    assert json.loads(arguments_of) == {"y": "[REDACTED:openai_key]"}
