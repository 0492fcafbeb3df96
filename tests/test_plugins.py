"""Tests of plugin loading: built-ins, plugins passed in, entry-point plugins, blocking and broken plugins."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import chunkline
from chunkline import DEFAULT_STAGES, Pipeline, PluginError, events
from chunkline.plugins import DEFAULT_PLUGINS
from minimal_streams import contents, text_sse

BUILTIN_NAMES = [
    "chunkline.builtins.parse",
    "chunkline.builtins.decode",
    "chunkline.builtins.thinking",
    "chunkline.builtins.tool_calls",
    "chunkline.builtins.chunker",
    "chunkline.builtins.policies",
    "chunkline.builtins.finish",
    "chunkline.builtins.usage",
    "chunkline.builtins.envelope",
    "chunkline.builtins.serialize",
]

GOOD_PLUGIN = """
import chunkline
from chunkline import events

LOADED = True


class Shout(chunkline.Stage):
    handles = (events.TextDelta,)
    emits = (events.TextDelta,)

    def feed(self, item):
        self.emit(events.TextDelta(item.part, item.text.upper()))


@chunkline.hookimpl
def register_stages(register):
    register(chunkline.StageSpec("shout", lambda options: Shout(), after="chunker"))
"""


@pytest.fixture(autouse=True)
def _no_disabled_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHUNKLINE_DISABLE_PLUGINS", raising=False)


def names(pipe: Pipeline) -> list[str]:
    return [info.name for info in pipe.plugins]


# -- an installed distribution, made in tmp_path -----------------------------------------------


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    """Returns ``install(source, entry_point="myplugin", version="0.1")``: writes ``myplugin.py``
    and a ``myplugin-<version>.dist-info`` with a ``[chunkline]`` entry point into a directory on
    ``sys.path``, so ``importlib.metadata.entry_points(group="chunkline")`` finds it."""
    sys.modules.pop("myplugin", None)

    def install(source: str, entry_point: str = "myplugin", version: str = "0.1") -> Path:
        (tmp_path / "myplugin.py").write_text(textwrap.dedent(source))
        dist_info = tmp_path / f"myplugin-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: myplugin\nVersion: {version}\n")
        (dist_info / "entry_points.txt").write_text(f"[chunkline]\nmyplugin = {entry_point}\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        importlib.invalidate_caches()
        return tmp_path

    yield install
    sys.modules.pop("myplugin", None)
    importlib.invalidate_caches()


def test_the_fixture_distribution_is_visible_to_importlib_metadata(install: Callable[..., Path]) -> None:
    install(GOOD_PLUGIN)
    found = [ep for ep in importlib.metadata.entry_points(group="chunkline") if ep.name == "myplugin"]
    assert len(found) == 1
    assert found[0].value == "myplugin"
    assert found[0].dist is not None
    assert found[0].dist.version == "0.1"


def test_an_installed_plugin_loads_automatically(install: Callable[..., Path]) -> None:
    install(GOOD_PLUGIN)
    pipe = Pipeline(created=0)
    info = next(info for info in pipe.plugins if info.name == "myplugin")
    assert info.version == "0.1"
    assert "myplugin" in info.source
    assert "built-in" not in info.source
    assert names(pipe)[: len(BUILTIN_NAMES)] == BUILTIN_NAMES  # built-ins come first
    stages = list(pipe.stage_names)
    assert stages[stages.index("chunker") + 1] == "shout"
    assert contents(pipe.convert(text_sse("Hello", " there"))) == ["", "HELLO", " THERE"]
    assert sys.modules["myplugin"].LOADED


def test_an_installed_plugin_also_passed_in_is_loaded_once(install: Callable[..., Path]) -> None:
    install(GOOD_PLUGIN)
    module = importlib.import_module("myplugin")
    pipe = Pipeline(plugins=[module], created=0)
    assert [info.name for info in pipe.plugins].count("myplugin") == 1
    assert contents(pipe.convert(text_sse("hi"))) == ["", "HI"]


def test_list_plugins_shows_the_installed_plugin_and_its_version(install: Callable[..., Path]) -> None:
    install(GOOD_PLUGIN, version="2.5.1")
    listed = {info.name: info for info in chunkline.list_plugins()}
    assert listed["myplugin"].version == "2.5.1"
    assert listed["myplugin"].stages == ("shout",)
    assert listed["myplugin"].policies == ()
    assert listed["chunkline.builtins.parse"] == chunkline.PluginInfo(
        "chunkline.builtins.parse", "built-in", chunkline.__version__, stages=("parse",)
    )
    assert "myplugin" not in {info.name for info in chunkline.list_plugins(block=["myplugin"])}
    assert "myplugin" not in {info.name for info in chunkline.list_plugins(load_entrypoints=False)}


def test_load_entrypoints_false_skips_installed_plugins(install: Callable[..., Path]) -> None:
    install(GOOD_PLUGIN)
    pipe = Pipeline(load_entrypoints=False, created=0)
    assert names(pipe) == BUILTIN_NAMES
    assert "shout" not in pipe.stage_names
    assert "myplugin" not in sys.modules  # not even imported
    assert contents(pipe.convert(text_sse("Hello"))) == ["", "Hello"]


def test_block_skips_an_installed_plugin_by_name(install: Callable[..., Path]) -> None:
    install(GOOD_PLUGIN)
    pipe = Pipeline(block=["myplugin"], created=0)
    assert "myplugin" not in names(pipe)
    assert "shout" not in pipe.stage_names
    assert "myplugin" not in sys.modules


@pytest.mark.parametrize("value", ["myplugin", " myplugin ", "other,myplugin", "myplugin,,", "x, myplugin"])
def test_the_environment_variable_blocks_plugins(
    install: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    install(GOOD_PLUGIN)
    monkeypatch.setenv("CHUNKLINE_DISABLE_PLUGINS", value)
    pipe = Pipeline(created=0)
    assert "myplugin" not in names(pipe)
    assert "shout" not in pipe.stage_names


def test_the_environment_variable_and_block_add_up(
    install: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    install(GOOD_PLUGIN)
    monkeypatch.setenv("CHUNKLINE_DISABLE_PLUGINS", "myplugin")
    pipe = Pipeline(block=["usage"], created=0)
    assert "myplugin" not in names(pipe)
    assert "chunkline.builtins.usage" not in names(pipe)


def test_an_empty_environment_variable_blocks_nothing(
    install: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    install(GOOD_PLUGIN)
    monkeypatch.setenv("CHUNKLINE_DISABLE_PLUGINS", " , ")
    assert "myplugin" in names(Pipeline(created=0))


# -- broken installed plugins ------------------------------------------------------------------

BROKEN = {
    "import_error": """
        raise ImportError("a dependency is missing")
    """,
    "syntax_error": """
        def register_stages(register:
    """,
    "misspelled_argument": """
        import chunkline

        @chunkline.hookimpl
        def register_stages(regster):
            pass
    """,
    "misspelled_hook": """
        import chunkline

        @chunkline.hookimpl
        def register_stage(register):
            pass
    """,
    "hook_raises": """
        import chunkline

        @chunkline.hookimpl
        def register_stages(register):
            raise RuntimeError("broken on purpose")
    """,
    "registers_junk": """
        import chunkline

        @chunkline.hookimpl
        def register_stages(register):
            register("shout")
    """,
    "duplicate_stage": """
        import chunkline

        @chunkline.hookimpl
        def register_stages(register):
            register(chunkline.StageSpec("serialize", lambda options: chunkline.Stage()))
    """,
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_installed_plugin_is_a_plugin_error_naming_it(
    install: Callable[..., Path], kind: str
) -> None:
    install(BROKEN[kind])
    with pytest.raises(PluginError) as excinfo:
        Pipeline()
    assert "myplugin" in str(excinfo.value)


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_installed_plugin_can_be_blocked(
    install: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    install(BROKEN[kind])
    assert "myplugin" not in names(Pipeline(block=["myplugin"]))
    assert "myplugin" not in names(Pipeline(load_entrypoints=False))
    monkeypatch.setenv("CHUNKLINE_DISABLE_PLUGINS", "myplugin")
    assert list(Pipeline().stage_names) == list(DEFAULT_STAGES)


def test_an_entry_point_naming_a_missing_attribute_is_a_plugin_error(install: Callable[..., Path]) -> None:
    install(GOOD_PLUGIN, entry_point="myplugin:no_such_thing")
    with pytest.raises(PluginError, match="myplugin"):
        Pipeline()


def test_an_entry_point_naming_a_missing_module_is_a_plugin_error(install: Callable[..., Path]) -> None:
    install(GOOD_PLUGIN, entry_point="myplugin_gone")
    with pytest.raises(PluginError, match="myplugin"):
        Pipeline()


def test_a_misspelled_argument_error_says_what_is_wrong(install: Callable[..., Path]) -> None:
    install(BROKEN["misspelled_argument"])
    with pytest.raises(PluginError) as excinfo:
        Pipeline()
    assert "regster" in str(excinfo.value)


def test_an_import_error_keeps_its_cause(install: Callable[..., Path]) -> None:
    install(BROKEN["import_error"])
    with pytest.raises(PluginError) as excinfo:
        Pipeline()
    assert isinstance(excinfo.value.__cause__, ImportError)
    assert "a dependency is missing" in str(excinfo.value)


def test_plugin_error_is_a_chunkline_error() -> None:
    assert issubclass(PluginError, chunkline.ChunklineError)


# -- built-in plugins --------------------------------------------------------------------------


def test_the_builtins_are_plugins_listed_in_order() -> None:
    assert list(DEFAULT_PLUGINS) == BUILTIN_NAMES
    pipe = Pipeline(load_entrypoints=False)
    assert [(i.name, i.source, i.version) for i in pipe.plugins] == [
        (name, "built-in", chunkline.__version__) for name in BUILTIN_NAMES
    ]
    registered = {i.name.rsplit(".", 1)[1]: (i.stages, i.policies) for i in pipe.plugins}
    assert registered.pop("policies") == ((), ("passthrough", "words", "chars", "sentences"))
    assert registered == {name: ((name,), ()) for name in DEFAULT_STAGES}


@pytest.mark.parametrize("name", ["serialize", "chunkline.builtins.serialize"])
def test_a_builtin_can_be_blocked_by_short_or_full_name(name: str) -> None:
    pipe = Pipeline(load_entrypoints=False, block=[name], created=0)
    assert "chunkline.builtins.serialize" not in names(pipe)
    assert list(pipe.stage_names) == list(DEFAULT_STAGES[:-1])
    out = pipe.convert(text_sse("Hi"))
    # Nothing serializes: the chunks (and the markers no stage consumes) come out as objects.
    assert not any(isinstance(item, bytes) for item in out)
    chunks = [json.loads(item.payload) for item in out if isinstance(item, events.Chunk)]
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "Hi", None]
    assert isinstance(out[-1], events.Done)


def test_a_builtin_can_be_blocked_by_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUNKLINE_DISABLE_PLUGINS", "usage,chunkline.builtins.chunker")
    pipe = Pipeline(load_entrypoints=False)
    assert "chunkline.builtins.usage" not in names(pipe)
    assert "chunkline.builtins.chunker" not in names(pipe)
    assert "usage" not in pipe.stage_names
    assert "chunker" not in pipe.stage_names


def test_blocking_the_plugin_of_a_format_leaves_no_route_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUNKLINE_DISABLE_PLUGINS", "chunkline.builtins.envelope")
    with pytest.raises(chunkline.RouteError, match=r"'openai-chat'.*formats: anthropic-messages"):
        Pipeline(load_entrypoints=False)


def test_blocking_a_builtin_removes_its_options() -> None:
    with pytest.raises(chunkline.OptionError, match="'ping'"):
        Pipeline(load_entrypoints=False, block=["serialize"], ping="drop")


def test_naming_a_blocked_stage_is_a_stage_name_error() -> None:
    with pytest.raises(chunkline.StageNameError, match="'serialize'"):
        Pipeline(load_entrypoints=False, block=["serialize"], stages=["decode", "serialize"])


def test_blocking_the_policies_plugin_leaves_no_chunking_policy() -> None:
    with pytest.raises(chunkline.OptionError, match="chunking"):
        Pipeline(load_entrypoints=False, block=["policies"])


# -- plugins passed to Pipeline ----------------------------------------------------------------


def shout_module(name: str = "shout_plugin") -> types.ModuleType:
    module = types.ModuleType(name)
    exec(textwrap.dedent(GOOD_PLUGIN), module.__dict__)
    return module


def test_a_module_passed_as_a_plugin_is_used() -> None:
    pipe = Pipeline(plugins=[shout_module()], load_entrypoints=False, created=0)
    assert pipe.plugins[-1] == chunkline.PluginInfo(
        "shout_plugin", "passed to Pipeline(plugins=...)", None, stages=("shout",)
    )
    assert names(pipe)[:-1] == BUILTIN_NAMES
    assert "shout" in pipe.stage_names
    assert contents(pipe.convert(text_sse("hey"))) == ["", "HEY"]


def test_an_object_passed_as_a_plugin_is_used() -> None:
    class ShoutPlugin:
        @chunkline.hookimpl
        def register_stages(self, register: Any) -> None:
            shout_module().register_stages(register)

    pipe = Pipeline(plugins=[ShoutPlugin()], load_entrypoints=False, created=0)
    assert len(pipe.plugins) == len(BUILTIN_NAMES) + 1
    assert "ShoutPlugin" in pipe.plugins[-1].name
    assert contents(pipe.convert(text_sse("hey"))) == ["", "HEY"]


def test_a_passed_plugin_can_be_blocked_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    module = shout_module()
    pipe = Pipeline(plugins=[module], load_entrypoints=False, block=["shout_plugin"])
    assert "shout_plugin" not in names(pipe)
    assert "shout" not in pipe.stage_names
    monkeypatch.setenv("CHUNKLINE_DISABLE_PLUGINS", "shout_plugin")
    assert "shout" not in Pipeline(plugins=[module], load_entrypoints=False).stage_names


def test_passed_plugins_come_after_installed_ones(install: Callable[..., Path]) -> None:
    install(GOOD_PLUGIN)
    quiet = types.ModuleType("quiet_plugin")
    pipe = Pipeline(plugins=[quiet])
    assert names(pipe).index("myplugin") < names(pipe).index("quiet_plugin")


def test_plugins_do_not_leak_between_pipelines() -> None:
    assert "shout" in Pipeline(plugins=[shout_module()], load_entrypoints=False).stage_names
    assert "shout" not in Pipeline(load_entrypoints=False).stage_names
    assert names(Pipeline(load_entrypoints=False)) == BUILTIN_NAMES


def test_the_same_plugin_twice_is_a_plugin_error() -> None:
    module = shout_module()
    with pytest.raises(PluginError, match="shout_plugin"):
        Pipeline(plugins=[module, module], load_entrypoints=False)


def test_a_plugin_named_like_a_builtin_is_a_plugin_error() -> None:
    with pytest.raises(PluginError, match=r"chunkline\.builtins\.parse"):
        Pipeline(plugins=[shout_module("chunkline.builtins.parse")], load_entrypoints=False)


def test_a_passed_plugin_with_a_bad_hookimpl_is_a_plugin_error_naming_it() -> None:
    module = types.ModuleType("typo_plugin")
    exec(
        "import chunkline\n@chunkline.hookimpl\ndef register_stages(regster):\n    pass\n",
        module.__dict__,
    )
    with pytest.raises(PluginError) as excinfo:
        Pipeline(plugins=[module], load_entrypoints=False)
    assert "typo_plugin" in str(excinfo.value)
    assert "regster" in str(excinfo.value)


def test_a_passed_plugin_with_an_unknown_hook_is_a_plugin_error_naming_it() -> None:
    module = types.ModuleType("unknown_hook_plugin")
    exec(
        "import chunkline\n@chunkline.hookimpl\ndef register_everything(register):\n    pass\n",
        module.__dict__,
    )
    with pytest.raises(PluginError) as excinfo:
        Pipeline(plugins=[module], load_entrypoints=False)
    assert "unknown_hook_plugin" in str(excinfo.value)
    assert "register_everything" in str(excinfo.value)


def test_a_plugin_implementing_no_hooks_is_harmless() -> None:
    pipe = Pipeline(plugins=[types.ModuleType("empty_plugin")], load_entrypoints=False)
    assert names(pipe)[-1] == "empty_plugin"
    assert list(pipe.stage_names) == list(DEFAULT_STAGES)
