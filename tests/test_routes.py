"""Routes: formats registered by plugins, route stage lists, route errors, and `chunkline routes`."""

from __future__ import annotations

import json
from typing import Any

import pytest

import chunkline
from chunkline.cli import main
from chunkline.events import Chunk, Done, ErrorEvent, Finish, TextDelta, TextEnd, TextStart
from chunkline.testing import AnthropicStream


class _PlainText(chunkline.Stage):
    """A tiny target: the answer's text as bytes, errors as one line."""

    handles = (TextDelta, ErrorEvent, Done)

    def feed(self, item: Any) -> None:
        if item.__class__ is TextDelta:
            self.emit(item.text.encode())
        elif item.__class__ is ErrorEvent:
            self.emit(f"\nerror: {item.type}\n".encode())


class _TextFormat:
    """A plugin that adds the target format 'plain-text' and one plugin stage anchored on it."""

    __name__ = "plain_text_format"

    @chunkline.hookimpl
    def register_stages(self, register: Any) -> None:
        register(chunkline.StageSpec("plain", lambda options: _PlainText()))

    @chunkline.hookimpl
    def register_formats(self, register: Any) -> None:
        register(chunkline.EncoderSpec("plain-text", ("plain",), "Only the text.", ("verbatim",)))


def pipeline(**kwargs: Any) -> chunkline.Pipeline:
    return chunkline.Pipeline(load_entrypoints=False, **kwargs)


def test_the_default_route_is_anthropic_messages_to_openai_chat() -> None:
    pipe = pipeline()
    assert (pipe.source, pipe.target) == ("anthropic-messages", "openai-chat")
    assert pipe.stage_names == chunkline.DEFAULT_STAGES
    assert pipe.stage_names == pipeline(source="anthropic-messages", target="openai-chat").stage_names
    assert chunkline.DEFAULT_STAGES[2:7] == chunkline.MIDDLE_STAGES


def test_a_route_is_decoder_middle_encoder() -> None:
    pipe = pipeline(plugins=[_TextFormat()], target="plain-text")
    assert pipe.stage_names == ("parse", "decode", *chunkline.MIDDLE_STAGES, "plain")
    data = AnthropicStream().text("Hello", " world").stop().sse()
    assert b"".join(o for o in pipe.convert(data) if isinstance(o, bytes)) == b"Hello world"
    cut = b"".join(o for o in pipe.convert(data[:-30]) if isinstance(o, bytes))
    assert cut.endswith(b"error: upstream_truncated\n")


def test_default_stages_takes_a_route() -> None:
    stages = chunkline.default_stages(target="plain-text", plugins=[_TextFormat()], load_entrypoints=False)
    assert list(stages) == ["parse", "decode", *chunkline.MIDDLE_STAGES, "plain"]
    assert list(stages.remove("thinking")) == ["parse", "decode", *chunkline.MIDDLE_STAGES[1:], "plain"]


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"source": "gemini"}, r"unknown format 'gemini'; formats: anthropic-messages, .*plain-text"),
        ({"target": "nope"}, r"unknown format 'nope'.*targets: .*plain-text"),
        ({"source": "plain-text"}, r"no installed plugin reads 'plain-text'.*sources: anthropic-messages"),
    ],
)
def test_an_unknown_format_or_missing_route_names_what_exists(route: dict[str, str], message: str) -> None:
    with pytest.raises(chunkline.RouteError, match=message):
        pipeline(plugins=[_TextFormat()], **route)
    assert issubclass(chunkline.RouteError, chunkline.ConfigError)


def test_an_option_of_a_stage_not_on_the_route_says_so() -> None:
    with pytest.raises(chunkline.OptionError, match=r"'include_usage'.*'envelope'.*route anthropic-messages"):
        pipeline(plugins=[_TextFormat()], target="plain-text", include_usage=True)


def test_a_thinking_mode_of_another_target_is_an_error_naming_the_route() -> None:
    with pytest.raises(chunkline.OptionError, match=r"'reasoning' has no meaning on the route .*plain-text"):
        pipeline(plugins=[_TextFormat()], target="plain-text", thinking="reasoning")
    assert pipeline(plugins=[_TextFormat()], target="plain-text", thinking="verbatim")
    assert pipeline(plugins=[_TextFormat()], target="plain-text", thinking="tags")
    with pytest.raises(chunkline.OptionError, match=r"'verbatim' has no meaning on the route"):
        pipeline(plugins=[_TextFormat()], thinking="verbatim")


def test_two_plugins_encoding_one_format_is_an_error_unless_replacing() -> None:
    class Again:
        __name__ = "again"

        @chunkline.hookimpl
        def register_formats(self, register: Any) -> None:
            register(chunkline.EncoderSpec("plain-text", ("plain",)))

    with pytest.raises(chunkline.PluginError, match=r"encoder of 'plain-text' is registered by both"):
        pipeline(plugins=[_TextFormat(), Again()])

    class Replacing:
        __name__ = "replacing"

        @chunkline.hookimpl
        def register_formats(self, register: Any) -> None:
            register(chunkline.EncoderSpec("plain-text", ("plain",), "Mine."), replace=True)

    registration = pipeline(plugins=[_TextFormat(), Replacing()]).registry.encoders["plain-text"]
    assert (registration.plugin, registration.replaced) == ("replacing", "plain_text_format")


def test_the_middle_stages_take_neutral_events_on_any_route() -> None:
    conversion = pipeline(stages=[*chunkline.MIDDLE_STAGES, "envelope", "serialize"], created=0).open()
    out: list[Any] = []
    for item in (
        chunkline.events.ResponseStart("r", "m"),
        TextStart(3),
        TextDelta(3, "hi"),
        TextEnd(3),
        Finish("pause", "whatever"),
    ):
        out += conversion.feed(item)
    frames = [json.loads(f[6:]) for f in b"".join(out).split(b"\n\n") if f.startswith(b"data: {")]
    assert frames[1]["choices"][0]["delta"] == {"content": "hi"}
    assert frames[-1]["choices"][0]["finish_reason"] == "length"  # an unfinished turn is not "stop"
    assert not any(isinstance(o, Chunk) for o in out)


def test_routes_command_lists_formats_routes_and_plugins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routes", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    formats = {row["name"]: row for row in listing["formats"]}
    assert formats["anthropic-messages"]["decoder"]["plugin"] == "chunkline.builtins.decode"
    assert formats["openai-chat"]["encoder"]["stages"] == ["envelope", "serialize"]
    route = next(
        r for r in listing["routes"] if (r["source"], r["target"]) == ("anthropic-messages", "openai-chat")
    )
    assert route["error"] is None
    roles = {stage["name"]: (stage["role"], stage["plugin"]) for stage in route["stages"]}
    assert roles["decode"] == ("decoder", "chunkline.builtins.decode")
    assert roles["usage"] == ("middle", "chunkline.builtins.usage")
    assert roles["serialize"] == ("encoder", "chunkline.builtins.serialize")
    assert main(["routes"]) == 0
    text = capsys.readouterr().out
    assert "anthropic-messages -> openai-chat" in text and "chunkline.builtins.envelope" in text


def test_convert_takes_from_and_to(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    stream = tmp_path / "in.sse"
    stream.write_bytes(AnthropicStream().text("Hi").stop().sse())
    assert main(["convert", str(stream), "--from", "anthropic-messages", "--to", "openai-chat"]) == 0
    assert '"content":"Hi"' in capsys.readouterr().out
    assert main(["convert", str(stream), "--to", "klingon"]) == 2
    assert "unknown format 'klingon'" in capsys.readouterr().err
