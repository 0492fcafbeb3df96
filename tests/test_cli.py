"""The command line: convert (files, stdin, every flag, errors), the stages and plugins listings."""

from __future__ import annotations

import io
import json
import os
import re
import selectors
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import chunkline
from chunkline.cli import main

MESSAGE = {
    "id": "msg_cli",
    "type": "message",
    "role": "assistant",
    "model": "claude-test",
    "content": [],
    "stop_reason": None,
    "stop_sequence": None,
    "usage": {"input_tokens": 7, "output_tokens": 1},
}


def _events(*, thinking: bool = False, truncated: bool = False) -> list[dict[str, Any]]:
    """A minimal valid stream saying "Hello world", optionally with a thinking block first."""
    events: list[dict[str, Any]] = [{"type": "message_start", "message": MESSAGE}, {"type": "ping"}]
    text_index = 0
    if thinking:
        text_index = 1
        events += [
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": ""},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "Hmm."},
            },
            {"type": "content_block_stop", "index": 0},
        ]
    events += [
        {"type": "content_block_start", "index": text_index, "content_block": {"type": "text", "text": ""}},
        {
            "type": "content_block_delta",
            "index": text_index,
            "delta": {"type": "text_delta", "text": "Hello world"},
        },
        {"type": "content_block_stop", "index": text_index},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 5},
        },
        {"type": "message_stop"},
    ]
    return events[:4] if truncated else events


def _sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def _jsonl(events: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def _chunks(output: str) -> list[dict[str, Any]]:
    """The JSON payloads of an OpenAI SSE stream (not [DONE], not comments)."""
    payloads = [line[6:] for line in output.splitlines() if line.startswith("data: ")]
    return [json.loads(p) for p in payloads if p != "[DONE]"]


def _content(chunks: list[dict[str, Any]], field: str = "content") -> list[str]:
    return [
        c["choices"][0]["delta"][field]
        for c in chunks
        if c["choices"] and c["choices"][0]["delta"].get(field)
    ]


@pytest.fixture
def stream(tmp_path: Path) -> Path:
    path = tmp_path / "in.sse"
    path.write_bytes(_sse(_events()))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


# -- convert ---------------------------------------------------------------------------------------


def test_convert_file(capsys: pytest.CaptureFixture[str], stream: Path) -> None:
    code, out, err = run(capsys, "convert", str(stream))
    assert (code, err) == (0, "")
    chunks = _chunks(out)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert _content(chunks) == ["Hello world"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert ": ping\n\n" in out
    assert out.endswith("data: [DONE]\n\n")


def test_convert_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(_sse(_events()))))
    # A fixed `created`: two runs a second apart must still compare equal.
    code, out, _ = run(capsys, "convert", "--option", "created=1700000000")
    assert code == 0
    assert _content(_chunks(out)) == ["Hello world"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(_sse(_events()))))
    assert run(capsys, "convert", "-", "--option", "created=1700000000")[1] == out


def test_output_file(capsys: pytest.CaptureFixture[str], stream: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.sse"
    code, out, _ = run(capsys, "convert", str(stream), "-o", str(target))
    assert (code, out) == (0, "")
    assert _content(_chunks(target.read_text())) == ["Hello world"]


def test_jsonl_file_is_read_as_json_lines(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(_jsonl(_events()))
    code, out, _ = run(capsys, "convert", str(path))
    assert code == 0
    assert _content(_chunks(out)) == ["Hello world"]
    # Told otherwise, the SSE parser finds no events in bare JSON lines and says what to do
    # (in-band, and exit 1).
    code, out, err = run(capsys, "convert", str(path), "--input-format", "sse")
    assert code == 1
    [error] = _chunks(out)
    assert error["error"]["type"] == "invalid_upstream_response"
    hint = "no server-sent events in the input; is it JSON lines? try --input-format jsonl"
    assert error["error"]["message"].startswith(hint)
    assert err.startswith("chunkline: error: the stream ended in an in-band error") and hint in err
    # --input-format decides, whatever the file is called.
    renamed = path.rename(tmp_path / "recorded.txt")
    out = run(capsys, "convert", str(renamed), "--input-format", "jsonl")[1]
    assert _content(_chunks(out)) == ["Hello world"]


def test_include_usage(capsys: pytest.CaptureFixture[str], stream: Path) -> None:
    chunks = _chunks(run(capsys, "convert", str(stream), "--include-usage")[1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 7
    assert chunks[-1]["usage"]["completion_tokens"] == 5
    assert "usage" not in _chunks(run(capsys, "convert", str(stream))[1])[-1]


def test_usage_final(capsys: pytest.CaptureFixture[str], stream: Path) -> None:
    chunks = _chunks(run(capsys, "convert", str(stream), "--include-usage", "--usage", "final")[1])
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["total_tokens"] == 12


@pytest.mark.parametrize(
    ("mode", "field"),
    [("reasoning_content", "reasoning_content"), ("reasoning", "reasoning"), ("tags", None)],
)
def test_thinking(capsys: pytest.CaptureFixture[str], tmp_path: Path, mode: str, field: str | None) -> None:
    path = tmp_path / "thinking.sse"
    path.write_bytes(_sse(_events(thinking=True)))
    chunks = _chunks(run(capsys, "convert", str(path), "--thinking", mode)[1])
    if field:
        assert (_content(chunks, field), _content(chunks)) == (["Hmm."], ["Hello world"])
    else:
        text = "".join(_content(chunks))
        assert text.startswith("<think>") and "Hmm." in text and text.endswith("Hello world")
    dropped = _chunks(run(capsys, "convert", str(path), "--thinking", "drop")[1])
    assert _content(dropped) == ["Hello world"]
    assert "Hmm." not in json.dumps(dropped)


def test_chunking(capsys: pytest.CaptureFixture[str], stream: Path) -> None:
    pieces = _content(_chunks(run(capsys, "convert", str(stream), "--chunking", "chars:4")[1]))
    assert pieces == ["Hell", "o wo", "rld"]


def test_model_and_generic_options(capsys: pytest.CaptureFixture[str], stream: Path) -> None:
    args = ["--model", "gpt-4o", "--option", 'response_id="chatcmpl-x"', "--option", "created=123"]
    chunks = _chunks(run(capsys, "convert", str(stream), *args)[1])
    assert {(c["model"], c["id"], c["created"]) for c in chunks} == {("gpt-4o", "chatcmpl-x", 123)}


def test_option_value_that_is_not_json_is_a_string(capsys: pytest.CaptureFixture[str], stream: Path) -> None:
    chunks = _chunks(run(capsys, "convert", str(stream), "--option", "model=my-model")[1])
    assert chunks[0]["model"] == "my-model"


def test_no_ping(capsys: pytest.CaptureFixture[str], stream: Path) -> None:
    out = run(capsys, "convert", str(stream), "--no-ping")[1]
    assert ": ping" not in out
    assert _content(_chunks(out)) == ["Hello world"]


def test_stages_list_without_serialize_prints_items(capsys: pytest.CaptureFixture[str], stream: Path) -> None:
    code, out, _ = run(capsys, "convert", str(stream), "--stages", "parse, decode")
    assert code == 0
    assert out.splitlines()[0].startswith("ResponseStart(")
    assert "TextDelta(part=0, text='Hello world')" in out


def test_stages_list_of_default_stages(capsys: pytest.CaptureFixture[str], stream: Path) -> None:
    names = ",".join(chunkline.DEFAULT_STAGES)
    # One `created` for both runs: the clock may pass a second between them.
    fixed = ("--option", "created=1700000000")
    listed = run(capsys, "convert", str(stream), "--stages", names, *fixed)[1]
    assert listed == run(capsys, "convert", str(stream), *fixed)[1]


def test_truncated_input_inband(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "cut.sse"
    path.write_bytes(_sse(_events(truncated=True)))
    code, out, err = run(capsys, "convert", str(path))
    assert code == 1  # the error event is written, and the exit code says so too
    assert err.startswith("chunkline: error: the stream ended in an in-band error, written to the output: ")
    assert err.count("\n") == 1 and "upstream_truncated: the upstream stream ended" in err
    assert _chunks(out)[-1]["error"]["type"] == "upstream_truncated"
    assert out.endswith("data: [DONE]\n\n")
    # --exit-zero: the old behaviour, for pipelines that read the error in-band.
    code, again, err = run(capsys, "convert", str(path), "--exit-zero")
    created = re.compile(r'"created":\d+')
    assert (code, err, created.sub("", again)) == (0, "", created.sub("", out))


def test_an_api_error_body_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """What curl prints for a bad key: the API's JSON error, not a stream."""
    path = tmp_path / "curl-output.sse"
    path.write_bytes(
        b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}'
    )
    code, out, err = run(capsys, "convert", str(path))
    assert code == 1
    [error] = _chunks(out)
    assert error["error"]["message"].startswith("authentication_error: invalid x-api-key")
    assert "authentication_error: invalid x-api-key" in err


def test_a_last_event_without_its_blank_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "saved.sse"
    path.write_bytes(_sse(_events()).rstrip(b"\n"))
    code, out, _ = run(capsys, "convert", str(path))
    assert code == 1
    message = _chunks(out)[-1]["error"]["message"]
    assert message.startswith("the input's last event ('message_stop') has no blank line after it")


def test_an_unknown_flag_prints_the_commands_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "convert", "x", "--frobnicate")
    assert (code, out) == (2, "")
    assert err.startswith("usage: chunkline convert ")
    assert err.endswith("chunkline convert: error: unrecognized arguments: --frobnicate\n")


def test_truncated_input_raise(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "cut.sse"
    path.write_bytes(_sse(_events(truncated=True)))
    code, out, err = run(capsys, "convert", str(path), "--on-error", "raise")
    assert code == 1
    assert err.startswith("chunkline: error: upstream_truncated: ")
    # What was converted before the fault is still written, and no error event or [DONE].
    assert _chunks(out)[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "[DONE]" not in out and '"error"' not in out


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--thinking", "loud"], "chunkline: error: option 'thinking' (stage 'thinking'): must be one of"),
        (["--chunking", "paragraphs"], "chunkline: error: chunking: unknown policy 'paragraphs'"),
        (["--chunking", "words:x"], "chunkline: error: chunking: 'words:x'"),
        (["--usage", "both"], "chunkline: error: option 'usage'"),
        (["--on-error", "ignore"], "chunkline: error: option 'on_error'"),
        (["--stages", "parse,nope"], "chunkline: error: unknown stage 'nope'"),
        (["--stages", ","], "chunkline: error: --stages needs at least one stage name"),
        (["--stages", "parse,decode", "--thinking", "drop"], "belongs to stage 'thinking'"),
        (["--option", "colour=1"], "chunkline: error: unknown option 'colour'"),
        (["--option", "novalue"], "chunkline: error: --option takes NAME=VALUE"),
        (["--model", "a", "--option", "model=b"], "chunkline: error: option 'model' is given twice"),
        (["--option", "created=-5"], "chunkline: error: option 'created'"),
    ],
)
def test_bad_configuration_exits_2(
    capsys: pytest.CaptureFixture[str], stream: Path, args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "convert", str(stream), *args)
    assert code == 2
    assert out == ""
    assert message in err
    assert err.count("\n") == 1


def test_missing_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "convert", str(tmp_path / "nope.sse"))
    assert code == 2
    assert err == f"chunkline: error: cannot open '{tmp_path / 'nope.sse'}': No such file or directory\n"


def test_failing_plugin_exits_2(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        name, value, dist = "broken", "broken_plugin:hooks", None

        def load(self) -> Any:
            raise ImportError("No module named 'broken_plugin'")

    monkeypatch.setattr("chunkline.plugins._entry_points", lambda: [Broken()])
    code, _, err = run(capsys, "plugins")
    assert code == 2
    assert err.startswith("chunkline: error: plugin 'broken' from broken_plugin:hooks failed to load")
    assert "CHUNKLINE_DISABLE_PLUGINS=NAME" in err
    monkeypatch.setenv("CHUNKLINE_DISABLE_PLUGINS", "broken")
    assert run(capsys, "plugins")[0] == 0


def test_usage_errors_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["convert", "--thinking"]) == 2
    assert "chunkline: error:" in capsys.readouterr().err
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"chunkline {chunkline.__version__}\n"
    for command in ([], ["convert"], ["stages"], ["plugins"]):
        assert main([*command, "--help"]) == 0
        assert "usage: chunkline" in capsys.readouterr().out


# -- stages and plugins ----------------------------------------------------------------------------


def test_stages_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "stages")
    assert code == 0
    marked = [line.split()[1] for line in out.splitlines() if line.startswith("* ")]
    assert marked == list(chunkline.DEFAULT_STAGES)
    assert f"[chunkline.builtins.thinking {chunkline.__version__}]" in out
    assert "thinking = 'native'" in out
    policies = out[out.index("Chunking policies") :]
    for name in ("passthrough", "words", "chars", "sentences"):
        assert f"  {name} " in policies


def test_stages_json(capsys: pytest.CaptureFixture[str]) -> None:
    listing = json.loads(run(capsys, "stages", "--json")[1])
    stages = {row["name"]: row for row in listing["stages"]}
    assert [row["name"] for row in listing["stages"] if row["default"]] == list(chunkline.DEFAULT_STAGES)
    assert stages["parse"]["plugin"] == "chunkline.builtins.parse"
    options = {o["name"]: o for o in stages["envelope"]["options"]}
    assert options["include_usage"]["default"] is False
    assert options["usage"]["allowed"] == "one of 'chunk', 'final'"
    assert stages["finish"]["options"][0]["default"] == {}
    assert {p["name"] for p in listing["chunking_policies"]} >= {"passthrough", "words", "chars", "sentences"}


def test_plugins_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plugins")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "SOURCE", "REGISTERS"]
    version = chunkline.__version__
    assert any(
        line.split() == ["chunkline.builtins.parse", version, "built-in", "stage", "parse"] for line in lines
    )
    policies = "policies passthrough, words, chars, sentences"
    assert any(line.startswith("chunkline.builtins.policies") and line.endswith(policies) for line in lines)
    infos = json.loads(run(capsys, "plugins", "--json")[1])
    assert {
        "name": "chunkline.builtins.serialize",
        "source": "built-in",
        "version": version,
        "stages": ["serialize"],
        "policies": [],
    } in infos


def test_blocked_plugin_leaves_stages_listing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # "markdown" too: the example policy plugin is installed in the dev environment (make test).
    monkeypatch.setenv("CHUNKLINE_DISABLE_PLUGINS", "policies,markdown")
    listing = json.loads(run(capsys, "stages", "--json")[1])
    assert listing["chunking_policies"] == []


# -- as a program ----------------------------------------------------------------------------------


def _program(*args: str) -> list[str]:
    return [sys.executable, "-m", "chunkline", *args]


def test_subprocess_convert_and_errors(stream: Path) -> None:
    done = subprocess.run(
        _program("convert", str(stream), "--include-usage"), capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert _content(_chunks(done.stdout.decode())) == ["Hello world"]
    failed = subprocess.run(
        _program("convert", "--thinking", "x", str(stream)), capture_output=True, check=False
    )
    assert failed.returncode == 2
    assert failed.stderr.decode().startswith("chunkline: error: option 'thinking'")
    assert b"Traceback" not in failed.stderr


def test_subprocess_streams_output_as_input_arrives(stream: Path) -> None:
    """The first chunks come out while stdin is still open: the CLI does not wait for EOF."""
    data = stream.read_bytes()
    first_event_end = data.index(b"\n\n") + 2
    # Without PYTHONUNBUFFERED (which any value turns on), so the CLI's own flushing is tested.
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    with subprocess.Popen(
        _program("convert"), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(data[:first_event_end])
        proc.stdin.flush()
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=30)
        assert ready, "no output before the input ended"
        first = os.read(proc.stdout.fileno(), 65536)
        assert first.startswith(b'data: {"id":"chatcmpl-msg_cli"')
        proc.stdin.write(data[first_event_end:])
        proc.stdin.close()
        rest = proc.stdout.read()
        assert proc.wait(timeout=30) == 0
    assert (first + rest).endswith(b"data: [DONE]\n\n")


def test_subprocess_ends_at_done_while_stdin_stays_open(stream: Path) -> None:
    """After [DONE] the CLI exits, however long its input stays open (R5)."""
    with subprocess.Popen(
        _program("convert"), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(stream.read_bytes() + b": an upstream that keeps its connection open\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0  # the output is small enough to wait in the pipe
        out = proc.stdout.read()
        proc.stdin.close()
    assert out.endswith(b"data: [DONE]\n\n")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_write_error_exits_1(capsys: pytest.CaptureFixture[str], stream: Path) -> None:
    code, _, err = run(capsys, "convert", str(stream), "-o", "/dev/full")
    assert code == 1
    assert err == "chunkline: error: No space left on device\n"
