"""Tests of stage lists in code (StageList, default_stages) and the command line's stage-list flags."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

import pytest

import chunkline
from chunkline import DEFAULT_STAGES, OptionError, Pipeline, StageList, StageNameError, default_stages, events
from chunkline.cli import main
from minimal_streams import contents, text_sse


class Tag(chunkline.Stage):
    """Wraps each text delta in a marker given by the stage's own option."""

    handles = (events.TextDelta,)
    emits = (events.TextDelta,)

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def feed(self, item: Any) -> None:
        self.emit(events.TextDelta(item.part, f"{self.marker}{item.text}{self.marker}"))


def _marker(value: Any, registry: Any) -> Any:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a non-empty string, not {value!r}")
    return value


def tag_plugin(*, optional: bool = True, after: str | None = "tool_calls") -> types.ModuleType:
    module = types.ModuleType("tag_plugin")

    @chunkline.hookimpl
    def register_stages(register: Any) -> None:
        register(
            chunkline.StageSpec(
                "tag",
                lambda options: Tag(options["tag_marker"]),
                options=(chunkline.Option("tag_marker", "|", "The marker around each delta.", _marker),),
                after=after,
                optional=optional,
            )
        )

    module.register_stages = register_stages  # type: ignore[attr-defined]
    return module


@pytest.fixture(autouse=True)
def _no_disabled_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHUNKLINE_DISABLE_PLUGINS", raising=False)


def stages(**kwargs: Any) -> StageList:
    return default_stages(load_entrypoints=False, **kwargs)


def test_default_stages_is_the_default_list() -> None:
    listed = stages()
    assert listed == DEFAULT_STAGES
    assert isinstance(listed, tuple)
    assert repr(listed) == f"StageList({list(DEFAULT_STAGES)!r})"
    assert Pipeline(listed, load_entrypoints=False).stage_names == DEFAULT_STAGES


def test_edits_return_new_lists_and_leave_the_original() -> None:
    base = stages()
    edited = base.remove("thinking").insert_after("decode", "thinking")
    assert edited == base
    moved = base.remove("usage").insert_before("finish", "usage")
    assert moved.index("usage") == moved.index("finish") - 1
    assert base == DEFAULT_STAGES
    assert base.remove("thinking", "chunker") == tuple(
        n for n in DEFAULT_STAGES if n not in {"thinking", "chunker"}
    )


def test_an_optional_stage_stays_out_of_the_default_list_until_added() -> None:
    plugin = tag_plugin()
    base = stages(plugins=[plugin])
    assert "tag" not in base
    added = base.add("tag")
    assert added[added.index("tool_calls") + 1] == "tag"
    assert base.insert_after("chunker", "tag")[base.index("chunker") + 1] == "tag"
    pipe = Pipeline(added, plugins=[plugin], load_entrypoints=False, created=0)
    assert contents(pipe.convert(text_sse("a", "b"))) == ["", "|a|", "|b|"]


def test_a_plugin_stage_that_is_not_optional_joins_the_default_list() -> None:
    listed = stages(plugins=[tag_plugin(optional=False)])
    assert listed[listed.index("tool_calls") + 1] == "tag"


def test_options_go_to_the_stage_that_declares_them() -> None:
    plugin = tag_plugin()
    listed = stages(plugins=[plugin]).add("tag")
    pipe = Pipeline(listed, plugins=[plugin], load_entrypoints=False, created=0, tag_marker="*")
    assert pipe.options["tag_marker"] == "*"
    assert contents(pipe.convert(text_sse("x"))) == ["", "*x*"]
    with pytest.raises(OptionError, match=r"option 'tag_marker' \(stage 'tag'\): must be a non-empty string"):
        Pipeline(listed, plugins=[plugin], load_entrypoints=False, tag_marker="")
    with pytest.raises(
        OptionError, match="belongs to stage 'tag', which is not in this pipeline's stage list"
    ):
        Pipeline(plugins=[plugin], load_entrypoints=False, tag_marker="*")


def test_replace_swaps_a_stage_in_place() -> None:
    plugin = tag_plugin()
    listed = stages(plugins=[plugin]).replace("thinking", "tag")
    assert listed.index("tag") == DEFAULT_STAGES.index("thinking")
    assert "thinking" not in listed
    assert listed.replace("tag", "tag") == listed


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.insert_after("nope", "usage"), r"no stage 'nope' in the stage list \['parse'"),
        (lambda s: s.insert_before("nope", "usage"), "no stage 'nope' in the stage list"),
        (lambda s: s.remove("thinking", "nope"), "no stage 'nope' in the stage list"),
        (lambda s: s.replace("nope", "usage"), "no stage 'nope' in the stage list"),
        (lambda s: s.insert_after("parse", "decode"), "stage 'decode' is already in the stage list"),
        (lambda s: s.replace("chunker", "finish"), "stage 'finish' is already in the stage list"),
        (lambda s: s.add("usage"), "stage 'usage' is already in the stage list"),
        (lambda s: s.insert_after("parse", "zzz"), "unknown stage 'zzz'; registered stages: chunker, decode"),
        (lambda s: s.add("zzz"), "unknown stage 'zzz'; registered stages"),
        (
            lambda s: s.remove("tool_calls").add("tag"),
            r"runs after 'tool_calls', which is not in the stage list",
        ),
    ],
)
def test_mistakes_name_the_stage(edit: Any, message: str) -> None:
    with pytest.raises(StageNameError, match=message):
        edit(stages(plugins=[tag_plugin()]))


def test_add_needs_a_place() -> None:
    with pytest.raises(StageNameError, match="stage 'tag' does not say where it runs"):
        stages(plugins=[tag_plugin(after=None)]).add("tag")
    with pytest.raises(StageNameError, match=r"start from chunkline.default_stages\(\)"):
        StageList(["parse"]).add("tag")


def test_a_plain_stage_list_checks_duplicates_but_not_registration() -> None:
    assert StageList(["parse", "mine"]).insert_after("parse", "other") == ("parse", "other", "mine")
    with pytest.raises(StageNameError, match="stage 'parse' appears twice"):
        StageList(["parse", "parse"])
    with pytest.raises(StageNameError, match="holds stage names"):
        StageList(["parse", 3])  # type: ignore[list-item]


def test_blocked_plugins_leave_the_default_list() -> None:
    assert "serialize" not in stages(block=["serialize"])


# -- the command line ----------------------------------------------------------------------------------


@pytest.fixture
def tag_installed(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The tag plugin as the command line would find an installed one."""
    plugin = tag_plugin()
    real = chunkline.plugins.make_plugin_manager

    def with_tag(plugins: Any = (), **kwargs: Any) -> Any:
        return real([*plugins, plugin], **kwargs)

    monkeypatch.setattr("chunkline.pipeline.make_plugin_manager", with_tag)
    return plugin


@pytest.fixture
def stream(tmp_path: Path) -> Path:
    path = tmp_path / "in.sse"
    path.write_bytes(text_sse("ab", "c"))
    return path


def convert(capsys: pytest.CaptureFixture[str], stream: Path, *args: str) -> tuple[int, list[str], str]:
    code = main(["convert", str(stream), "--option", "created=0", *args])
    captured = capsys.readouterr()
    frames = captured.out.encode().split(b"\n\n")
    return code, contents(frames) if code == 0 else [], captured.err


def test_cli_add_remove_replace(capsys: pytest.CaptureFixture[str], stream: Path, tag_installed: Any) -> None:
    assert convert(capsys, stream, "--add", "tag")[1] == ["", "|ab|", "|c|"]
    assert convert(capsys, stream, "--add", "tag@chunker", "--option", "tag_marker=#")[1] == [
        "",
        "#ab#",
        "#c#",
    ]
    assert convert(capsys, stream, "--replace", "thinking=tag", "--chunking", "chars:1")[1] == [
        "",
        *"|ab||c|",
    ]
    assert convert(capsys, stream, "--remove", "thinking", "--add", "tag")[1] == ["", "|ab|", "|c|"]


def test_cli_stage_list_mistakes_exit_2(
    capsys: pytest.CaptureFixture[str], stream: Path, tag_installed: Any
) -> None:
    for args, message in [
        (["--add", "zzz"], "unknown stage 'zzz'"),
        (["--add", "tag@"], "--add takes NAME or NAME@STAGE"),
        (["--replace", "thinking"], "--replace takes OLD=NEW"),
        (["--remove", "nope"], "no stage 'nope' in the stage list"),
        (["--add", "usage"], "stage 'usage' is already in the stage list"),
        (["--stages", "parse,parse"], "stage 'parse' appears twice"),
    ]:
        code, _, err = convert(capsys, stream, *args)
        assert code == 2, args
        assert message in err, (args, err)


def test_cli_block(capsys: pytest.CaptureFixture[str], stream: Path, tag_installed: Any) -> None:
    code, _, err = convert(capsys, stream, "--add", "tag", "--block", "tag_plugin")
    assert code == 2
    assert "unknown stage 'tag'" in err
    assert main(["plugins", "--json", "--block", "tag_plugin", "--block", "usage"]) == 0
    listed = {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert "tag_plugin" not in listed
    assert "chunkline.builtins.usage" not in listed


def test_cli_listings_show_the_optional_stage(capsys: pytest.CaptureFixture[str], tag_installed: Any) -> None:
    assert main(["stages"]) == 0
    out = capsys.readouterr().out
    assert "+ tag  [tag_plugin, runs after tool_calls]" in out
    assert main(["stages", "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out)["stages"] if r["name"] == "tag")
    assert (row["default"], row["optional"], row["after"], row["plugin"]) == (
        False,
        True,
        "tool_calls",
        "tag_plugin",
    )
    assert main(["plugins"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("tag_plugin"))
    assert line.split()[-2:] == ["stage", "tag"]
