"""Tests of the registration hooks: stage and policy names, duplicates, replacement and unknown names."""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from typing import Any

import pytest

import chunkline
from chunkline import DEFAULT_STAGES, ChunkPolicySpec, Pipeline, PluginError, Stage, StageSpec, events
from chunkline.registry import Registry
from minimal_streams import contents, text_sse


@pytest.fixture(autouse=True)
def _no_disabled_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHUNKLINE_DISABLE_PLUGINS", raising=False)


def plugin(
    name: str,
    stages: Callable[[Any], None] | None = None,
    policies: Callable[[Any], None] | None = None,
) -> types.ModuleType:
    """A plugin module called ``name`` whose hooks run ``stages(register)``/``policies(register)``."""
    module = types.ModuleType(name)
    if stages is not None:

        @chunkline.hookimpl
        def register_stages(register: Any) -> None:
            stages(register)

        module.register_stages = register_stages
    if policies is not None:

        @chunkline.hookimpl
        def register_chunking_policies(register: Any) -> None:
            policies(register)

        module.register_chunking_policies = register_chunking_policies
    return module


def build(*plugins: types.ModuleType, **kwargs: Any) -> Pipeline:
    kwargs.setdefault("created", 0)
    return Pipeline(plugins=plugins, load_entrypoints=False, **kwargs)


class Shout(Stage):
    handles = (events.TextDelta,)

    def feed(self, item: Any) -> None:
        self.emit(events.TextDelta(item.part, item.text.upper()))


def shout(name: str = "shout", **kwargs: Any) -> StageSpec:
    return StageSpec(name, lambda options: Shout(), **kwargs)


class JsonLines(Stage):
    """Writes each chunk, and an error, as one line of JSON; the end and pings write nothing."""

    handles = None

    def feed(self, item: Any) -> None:
        if isinstance(item, events.Chunk):
            self.emit(item.payload + b"\n")
        elif isinstance(item, events.ErrorEvent):
            self.emit(json.dumps({"error": {"type": item.type, "message": item.message}}).encode() + b"\n")


JSON_LINES = StageSpec("serialize", lambda options: JsonLines(), description="JSON lines.")


# -- what the built-ins register ---------------------------------------------------------------


def test_builtin_stages_and_policies_are_registered_by_their_modules() -> None:
    registry = build().registry
    assert set(registry.stages) == set(DEFAULT_STAGES)
    for name in DEFAULT_STAGES:
        registration = registry.stages[name]
        assert registration.spec.name == name
        assert registration.plugin == f"chunkline.builtins.{name}"
        assert registration.replaced is None
        assert registration.spec.description
    assert set(registry.policies) == {"passthrough", "words", "chars", "sentences"}
    assert {r.plugin for r in registry.policies.values()} == {"chunkline.builtins.policies"}


def test_registry_stage_looks_up_by_name() -> None:
    registry = build().registry
    assert registry.stage("decode") is registry.stages["decode"].spec
    with pytest.raises(chunkline.StageNameError, match=r"'nope'.*decode"):
        registry.stage("nope")


def test_registration_order_is_the_order_plugins_were_added() -> None:
    """pluggy calls hooks last-registered-first; the registry keeps registration order."""
    registry = build(
        plugin("p1", lambda r: r(shout("one"))), plugin("p2", lambda r: r(shout("two")))
    ).registry
    assert list(registry.stages) == [*DEFAULT_STAGES, "one", "two"]


# -- registering stages ------------------------------------------------------------------------


def test_a_plugin_can_register_several_stages() -> None:
    def stages(register: Any) -> None:
        register(shout("one"))
        register(shout("two", after="decode"))

    pipe = build(plugin("many", stages))
    assert pipe.registry.stages["one"].plugin == "many"
    assert pipe.registry.stages["two"].plugin == "many"
    assert list(pipe.stage_names)[:3] == ["parse", "decode", "two"]
    assert "one" not in pipe.stage_names


def test_registering_an_existing_stage_name_is_a_plugin_error() -> None:
    with pytest.raises(PluginError) as excinfo:
        build(plugin("copycat", lambda r: r(shout("serialize"))))
    message = str(excinfo.value)
    assert "'serialize'" in message
    assert "'copycat'" in message
    assert "'chunkline.builtins.serialize'" in message
    assert "replace=True" in message


def test_two_plugins_registering_one_new_name_is_a_plugin_error() -> None:
    with pytest.raises(PluginError) as excinfo:
        build(plugin("first", lambda r: r(shout())), plugin("second", lambda r: r(shout())))
    message = str(excinfo.value)
    assert "'shout'" in message
    assert "'first'" in message
    assert "'second'" in message


def test_one_plugin_registering_a_name_twice_is_a_plugin_error() -> None:
    def stages(register: Any) -> None:
        register(shout())
        register(shout())

    with pytest.raises(PluginError, match="'shout'"):
        build(plugin("twice", stages))


def test_registering_something_other_than_a_stage_spec_is_a_plugin_error() -> None:
    with pytest.raises(PluginError, match=r"'junk'.*StageSpec"):
        build(plugin("junk", lambda r: r("shout")))
    with pytest.raises(PluginError, match=r"'mixed_up'.*StageSpec"):
        build(plugin("mixed_up", lambda r: r(ChunkPolicySpec("p", lambda arg: Pairs()))))
    with pytest.raises(PluginError, match=r"'mixed_up'.*ChunkPolicySpec"):
        build(plugin("mixed_up", policies=lambda r: r(shout())))


def test_a_hook_that_raises_is_a_plugin_error_naming_the_plugin_and_hook() -> None:
    def stages(register: Any) -> None:
        raise RuntimeError("on purpose")

    with pytest.raises(PluginError) as excinfo:
        build(plugin("raiser", stages))
    assert "'raiser'" in str(excinfo.value)
    assert "register_stages" in str(excinfo.value)
    assert isinstance(excinfo.value.__cause__, RuntimeError)

    def policies(register: Any) -> None:
        raise KeyError("on purpose")

    with pytest.raises(PluginError, match=r"'raiser'.*register_chunking_policies"):
        build(plugin("raiser", policies=policies))


def test_registration_hooks_run_once_per_pipeline() -> None:
    calls: list[str] = []
    module = plugin("counted", lambda r: calls.append("stages"), lambda r: calls.append("policies"))
    pipe = build(module)
    assert sorted(calls) == ["policies", "stages"]
    conversion = pipe.open()
    conversion.feed(text_sse("hi"))
    conversion.close()
    pipe.convert(text_sse("again"))
    assert sorted(calls) == ["policies", "stages"]
    build(module)
    assert sorted(calls) == ["policies", "policies", "stages", "stages"]


# -- replacing ---------------------------------------------------------------------------------


def test_a_builtin_stage_can_be_replaced_by_name() -> None:
    pipe = build(plugin("jsonl_plugin", lambda r: r(JSON_LINES, replace=True)))
    registration = pipe.registry.stages["serialize"]
    assert registration.spec is JSON_LINES
    assert registration.plugin == "jsonl_plugin"
    assert registration.replaced == "chunkline.builtins.serialize"
    assert list(pipe.stage_names) == list(DEFAULT_STAGES)  # same place in the default list

    out = pipe.convert(text_sse("Hello", " there"))
    assert all(line.endswith(b"\n") and not line.startswith(b"data:") for line in out)
    chunks = [json.loads(line) for line in out]
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "Hello", " there", None]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert b"".join(out).count(b"\n") == len(out)


def test_a_replacement_is_used_in_an_explicit_stage_list_too() -> None:
    pipe = build(plugin("jsonl_plugin", lambda r: r(JSON_LINES, replace=True)), stages=DEFAULT_STAGES)
    assert all(not line.startswith(b"data:") for line in pipe.convert(text_sse("x")))


def test_a_replacement_reports_errors_its_own_way() -> None:
    pipe = build(plugin("jsonl_plugin", lambda r: r(JSON_LINES, replace=True)))
    out = pipe.convert(text_sse("Hello")[:-40])  # cut off: upstream_truncated
    assert json.loads(out[-1])["error"]["type"] == "upstream_truncated"


def test_a_replacement_brings_its_own_options() -> None:
    with pytest.raises(chunkline.OptionError, match="'ping'"):
        build(plugin("jsonl_plugin", lambda r: r(JSON_LINES, replace=True)), ping="drop")

    option = chunkline.Option.boolean("newline", True, "End each line with a newline.")
    spec = StageSpec("serialize", lambda options: JsonLines(), options=(option,))
    pipe = build(plugin("jsonl_plugin", lambda r: r(spec, replace=True)), newline=False)
    assert pipe.options["newline"] is False
    assert "ping" not in pipe.options


def test_replacing_does_not_depend_on_plugin_order() -> None:
    replacer = plugin("jsonl_plugin", lambda r: r(JSON_LINES, replace=True))
    other = plugin("other", lambda r: r(shout()))
    for plugins in ([replacer, other], [other, replacer]):
        assert build(*plugins).registry.stages["serialize"].spec is JSON_LINES


def test_two_replacements_of_one_name_is_a_plugin_error() -> None:
    first = plugin("jsonl_one", lambda r: r(JSON_LINES, replace=True))
    second = plugin("jsonl_two", lambda r: r(JSON_LINES, replace=True))
    with pytest.raises(PluginError) as excinfo:
        build(first, second)
    message = str(excinfo.value)
    assert "'serialize'" in message
    assert "'jsonl_one'" in message
    assert "'jsonl_two'" in message
    # Blocking one of them resolves it.
    assert build(first, second, block=["jsonl_two"]).registry.stages["serialize"].plugin == "jsonl_one"


def test_a_blocked_replacement_leaves_the_original() -> None:
    pipe = build(plugin("jsonl_plugin", lambda r: r(JSON_LINES, replace=True)), block=["jsonl_plugin"])
    assert pipe.registry.stages["serialize"].plugin == "chunkline.builtins.serialize"
    assert pipe.convert(text_sse("x"))[-1] == b"data: [DONE]\n\n"


def test_a_replaced_builtin_can_be_replaced_when_the_original_is_blocked() -> None:
    pipe = build(plugin("jsonl_plugin", lambda r: r(JSON_LINES, replace=True)), block=["serialize"])
    assert pipe.registry.stages["serialize"].spec is JSON_LINES
    assert "serialize" in pipe.stage_names


def test_replacing_a_stage_in_the_middle() -> None:
    class TagThinking(Stage):
        handles = (events.ReasoningDelta,)

        def feed(self, item: Any) -> None:
            self.emit(events.TextDelta(item.part, f"[{item.text}]"))

    spec = StageSpec("thinking", lambda options: TagThinking())
    pipe = build(plugin("brackets", lambda r: r(spec, replace=True)))
    stream = [
        {"type": "message_start", "message": {"id": "m", "model": "c"}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
        {"type": "message_stop"},
    ]
    conversion = pipe.open()
    out = [o for event in stream for o in conversion.feed(event)] + conversion.close()
    assert contents(out) == ["", "[hm]"]
    with pytest.raises(chunkline.OptionError, match="'thinking'"):
        build(plugin("brackets", lambda r: r(spec, replace=True)), thinking="drop")


# -- chunking policies -------------------------------------------------------------------------


class Pairs:
    """Pieces of two characters each."""

    def __init__(self) -> None:
        self.held = ""

    def feed(self, text: str) -> list[str]:
        self.held += text
        cut = len(self.held) - len(self.held) % 2
        ready, self.held = self.held[:cut], self.held[cut:]
        return [ready[i : i + 2] for i in range(0, len(ready), 2)]

    def flush(self) -> list[str]:
        ready, self.held = self.held, ""
        return [ready] if ready else []


def test_a_plugin_policy_is_chosen_by_the_chunking_option() -> None:
    made: list[str | None] = []

    def factory(arg: str | None) -> Pairs:
        made.append(arg)
        return Pairs()

    module = plugin("pairs_plugin", policies=lambda r: r(ChunkPolicySpec("pairs", factory, "Two by two.")))
    pipe = build(module, chunking="pairs")
    assert pipe.registry.policies["pairs"].plugin == "pairs_plugin"
    assert made  # checked when the pipeline is built
    at_build = len(made)
    assert contents(pipe.convert(text_sse("Hello", " you"))) == ["", "He", "ll", "o ", "yo", "u"]
    assert contents(pipe.convert(text_sse("abc"))) == ["", "ab", "c"]
    assert made == [None] * (at_build + 2)  # then one new policy per conversion


def test_a_policy_argument_is_passed_and_checked_at_build() -> None:
    made: list[str | None] = []

    def factory(arg: str | None) -> Pairs:
        made.append(arg)
        if arg not in (None, "ok"):
            raise ValueError(f"only 'ok' is allowed, not {arg!r}")
        return Pairs()

    module = plugin("pairs_plugin", policies=lambda r: r(ChunkPolicySpec("pairs", factory)))
    build(module, chunking="pairs:ok")
    assert made
    assert set(made) == {"ok"}
    with pytest.raises(chunkline.OptionError) as excinfo:
        build(module, chunking="pairs:bad")
    assert "chunking" in str(excinfo.value)
    assert "only 'ok' is allowed" in str(excinfo.value)


def test_an_unknown_policy_lists_the_registered_ones() -> None:
    module = plugin("pairs_plugin", policies=lambda r: r(ChunkPolicySpec("pairs", lambda arg: Pairs())))
    with pytest.raises(chunkline.OptionError) as excinfo:
        build(module, chunking="triples")
    assert "'triples'" in str(excinfo.value)
    for name in ("pairs", "passthrough", "words", "chars", "sentences"):
        assert name in str(excinfo.value)


def test_registering_an_existing_policy_name_is_a_plugin_error() -> None:
    module = plugin("words_plugin", policies=lambda r: r(ChunkPolicySpec("words", lambda arg: Pairs())))
    with pytest.raises(PluginError) as excinfo:
        build(module)
    assert "'words'" in str(excinfo.value)
    assert "'words_plugin'" in str(excinfo.value)
    assert "replace=True" in str(excinfo.value)


def test_a_builtin_policy_can_be_replaced() -> None:
    spec = ChunkPolicySpec("words", lambda arg: Pairs())
    pipe = build(plugin("words_plugin", policies=lambda r: r(spec, replace=True)), chunking="words:7")
    assert pipe.registry.policies["words"].replaced == "chunkline.builtins.policies"
    assert contents(pipe.convert(text_sse("abcde"))) == ["", "ab", "cd", "e"]


def test_two_replacements_of_one_policy_is_a_plugin_error() -> None:
    spec = ChunkPolicySpec("words", lambda arg: Pairs())
    with pytest.raises(PluginError, match="'words'"):
        build(
            plugin("a", policies=lambda r: r(spec, replace=True)),
            plugin("b", policies=lambda r: r(spec, replace=True)),
        )


def test_a_stage_and_a_policy_may_share_a_name() -> None:
    module = plugin(
        "both",
        stages=lambda r: r(shout("pairs")),
        policies=lambda r: r(ChunkPolicySpec("pairs", lambda arg: Pairs())),
    )
    registry = build(module).registry
    assert "pairs" in registry.stages
    assert "pairs" in registry.policies


def test_registry_collect_works_on_a_plugin_manager() -> None:
    pm, _ = chunkline.plugins.make_plugin_manager(load_entrypoints=False)
    registry = Registry.collect(pm)
    assert set(registry.stages) == set(DEFAULT_STAGES)
    factory = registry.policy_factory("chars:4")
    assert factory().feed("abcdefghij") == ["abcd", "efgh"]
