"""The command line: ``convert`` streams input through a route; ``routes``, ``stages``, ``plugins`` list."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import IO, Any

from . import __version__
from .errors import ConfigError, PluginError, StreamError
from .events import ErrorEvent
from .listing import print_plugins, print_stages
from .pipeline import DEFAULT_SOURCE, DEFAULT_TARGET, Pipeline
from .plugins import DISABLE_ENV
from .routing import print_routes
from .stageflags import add_block_flag, add_stage_flags, edit_stages, parse_options
from .stagelist import StageList, default_stages

__all__ = ["main"]

# Big enough that a fast file converts in few calls; read1 returns whatever a pipe has sooner,
# so a slow producer (tail -f, a live response) is still converted as it arrives.
READ_SIZE = 64 * 1024


class _UsageError(Exception):
    """A mistake on the command line that argparse itself cannot see (exit code 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    parser = _parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            # The command's own usage, not the top-level one: `convert x --frobnicate`.
            args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exc:
        # argparse has already printed its message; in-process callers want a code, not an exit.
        return exc.code if isinstance(exc.code, int) else 2
    try:
        code: int = args.run(args)
        return code
    except (ConfigError, _UsageError) as exc:
        return _fail(str(exc), 2)
    except PluginError as exc:
        return _fail(f"{exc} (to skip a plugin, set {DISABLE_ENV}=NAME)", 2)
    except StreamError as exc:
        return _fail(f"{exc.type}: {exc}", 1)
    except BrokenPipeError:
        # The reader went away (say, `| head`): stop quietly, and keep Python from complaining
        # again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}{f': {exc.filename!r}' if exc.filename else ''}", 1)
    except KeyboardInterrupt:
        return 130


def _fail(message: str, code: int) -> int:
    print(f"chunkline: error: {message}", file=sys.stderr)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chunkline",
        description="Translate LLM API streams between formats (Anthropic Messages, OpenAI Chat "
        "Completions, OpenAI Responses) through a pipeline of pluggable stages.",
        epilog="Run 'chunkline COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"chunkline {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    convert = commands.add_parser(
        "convert",
        help="convert a stream from one format to another (default: Anthropic Messages to OpenAI Chat)",
        description="Read a stream in the --from format (default: an Anthropic Messages stream, SSE "
        "or JSON lines) from FILE or stdin and write it in the --to format (default: the OpenAI Chat "
        "Completions SSE stream), each event as soon as it is complete. 'chunkline routes' lists "
        "the formats.",
        epilog="Examples:\n"
        "  chunkline convert response.sse\n"
        "  curl -sN https://api.anthropic.com/v1/messages ... | chunkline convert --include-usage\n"
        "  chunkline convert events.jsonl --chunking words:3 --thinking tags -o out.sse\n"
        "  chunkline convert in.sse --stages parse,decode   # print the decoded events\n"
        "  chunkline convert in.sse --to openai-responses\n"
        "\nA stage list that does not end in 'serialize' prints each item's repr on a line.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    convert.add_argument("file", nargs="?", default="-", metavar="FILE", help="input file; '-' is stdin")
    convert.add_argument("-o", "--output", default="-", metavar="OUT", help="output file; '-' is stdout")
    convert.add_argument(
        "--exit-zero",
        dest="exit_zero",
        action="store_true",
        help="exit 0 even when the stream ended in an in-band error (default: exit 1; the error "
        "event is written either way)",
    )
    _add_route_flags(convert)
    option = convert.add_argument_group("pipeline options (see 'chunkline stages' for all of them)")
    option.add_argument(
        "--include-usage",
        dest="include_usage",
        action="store_const",
        const=True,
        help="report token usage (as stream_options.include_usage does)",
    )
    option.add_argument("--usage", metavar="chunk|final", help="where usage goes (default: chunk)")
    option.add_argument(
        "--thinking",
        metavar="MODE",
        help="native (default: the target's own reasoning; on openai-chat delta.reasoning_content), "
        "tags, drop, or a mode of the target (openai-chat: reasoning_content, reasoning)",
    )
    option.add_argument(
        "--chunking",
        metavar="POLICY",
        help="passthrough (default), words:N, chars:N, sentences, or a plugin's policy",
    )
    option.add_argument(
        "--input-format",
        dest="input_format",
        metavar="sse|jsonl",
        help="how the input is framed (default: jsonl for a *.jsonl FILE, else sse)",
    )
    option.add_argument("--model", metavar="NAME", help="the model name clients see")
    option.add_argument(
        "--on-error",
        dest="on_error",
        metavar="inband|raise",
        help="inband (default): end the stream with an error event; raise: exit 1 with the error",
    )
    option.add_argument(
        "--no-ping",
        dest="ping",
        action="store_const",
        const="drop",
        help="drop upstream keep-alives instead of writing ': ping' comments",
    )
    option.add_argument(
        "--stages",
        metavar="A,B,...",
        help="the stage list, comma-separated (default: the built-in stages and plugin stages)",
    )
    add_stage_flags(option)
    add_block_flag(convert)
    convert.set_defaults(run=_convert)

    stages = commands.add_parser(
        "stages",
        help="list the registered stages and chunking policies",
        description="List the registered stages (the default stage list first, in order), their "
        "options, and the chunking policies.",
    )
    stages.add_argument("--json", action="store_true", help="print JSON")
    _add_route_flags(stages)
    add_block_flag(stages)
    stages.set_defaults(run=_stages)

    routes = commands.add_parser(
        "routes",
        help="list the formats, the routes between them, and which plugin provides each stage",
        description="List every format a plugin reads (a source, --from) or writes (a target, --to), "
        "every route from a source to a target with its default stage list, and the plugin that "
        "provides each stage.",
    )
    routes.add_argument("--json", action="store_true", help="print JSON")
    add_block_flag(routes)
    routes.set_defaults(run=_routes)

    plugins = commands.add_parser(
        "plugins",
        help="list the loaded plugins",
        description=f"List the loaded plugins: built-in and installed. {DISABLE_ENV}=A,B blocks plugins.",
    )
    plugins.add_argument("--json", action="store_true", help="print JSON")
    add_block_flag(plugins)
    plugins.set_defaults(run=_plugins)

    from .server.cli import add_serve_command  # the serve subcommand; imports no server dependency

    add_serve_command(commands)
    for command in commands.choices.values():
        command.set_defaults(command_parser=command)
    return parser


def _add_route_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--from",
        dest="source",
        default=DEFAULT_SOURCE,
        metavar="FORMAT",
        help=f"the input's format (default: {DEFAULT_SOURCE}; 'chunkline routes' lists them)",
    )
    command.add_argument(
        "--to",
        dest="target",
        default=DEFAULT_TARGET,
        metavar="FORMAT",
        help=f"the output's format (default: {DEFAULT_TARGET})",
    )


# -- convert ---------------------------------------------------------------------------------------

# The flags that set a pipeline option of the same name (dest), when given.
_FLAG_OPTIONS = (
    "include_usage",
    "usage",
    "thinking",
    "chunking",
    "input_format",
    "model",
    "on_error",
    "ping",
)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The pipeline options the command line sets; anything not given keeps the stage's default."""
    options = {name: getattr(args, name) for name in _FLAG_OPTIONS if getattr(args, name) is not None}
    for name, value in parse_options(args.extra).items():
        if name in options:
            raise _UsageError(f"option {name!r} is given twice")
        options[name] = value
    return options


def _stage_list(args: argparse.Namespace) -> StageList | None:
    """The stage list from --stages and the --add/--remove/--replace edits, or None for the default."""
    edits = args.add or args.remove or args.replace
    if args.stages is None and not edits:
        return None
    base = default_stages(source=args.source, target=args.target, block=args.block)
    if args.stages is not None:
        names = [name.strip() for name in args.stages.split(",") if name.strip()]
        if not names:
            raise _UsageError("--stages needs at least one stage name")
        base = StageList(names, base.registry)
    return edit_stages(base, add=args.add, remove=args.remove, replace=args.replace)


def _build(args: argparse.Namespace) -> Pipeline:
    stages = _stage_list(args)
    options = _options(args)
    route = {"source": args.source, "target": args.target}
    pipeline = Pipeline(stages, block=args.block, **route, **options)
    # A *.jsonl file is JSON lines unless said otherwise, but only where the stage list has a stage
    # that reads input_format (a custom list may not).
    guess_jsonl = args.file.endswith(".jsonl") and "input_format" not in options
    if guess_jsonl and "input_format" in pipeline.options:
        pipeline = Pipeline(stages, block=args.block, input_format="jsonl", **route, **options)
    return pipeline


def _convert(args: argparse.Namespace) -> int:
    pipeline = _build(args)
    with contextlib.ExitStack() as files:
        source = _open(files, args.file, "rb", sys.stdin.buffer)
        sink = _open(files, args.output, "wb", sys.stdout.buffer)
        error = _pump(pipeline, source, sink)
    if error is not None and not args.exit_zero:
        return _fail(f"the stream ended in an in-band error, written to the output: {error}", 1)
    return 0


def _open(files: contextlib.ExitStack, path: str, mode: str, standard: IO[bytes]) -> IO[bytes]:
    if path == "-":
        return standard
    try:
        stream: IO[bytes] = files.enter_context(open(path, mode))  # noqa: SIM115 - the stack closes it
    except OSError as exc:
        raise _UsageError(f"cannot open {path!r}: {exc.strerror or exc}") from None
    return stream


def _pump(pipeline: Pipeline, source: IO[bytes], sink: IO[bytes]) -> str | None:
    """Convert ``source`` into ``sink``; the in-band error the stream ended in, if any."""
    conversion = pipeline.open()
    read = getattr(source, "read1", source.read)
    last: list[Any] = []
    try:
        # Stop at [DONE]: an upstream (or `tail -f`) that stays open must not keep the output open (R5).
        while not conversion.finished and (data := read(READ_SIZE)):
            if out := conversion.feed(data):
                _write(sink, out)
                last = out
        if out := conversion.close():
            _write(sink, out)
            last = out
    except StreamError as exc:
        # Send what was converted before the fault, as a client would have received it.
        _write(sink, exc.output)
        raise
    # An error ends the stream, so it is in the last outputs (with the end marker after it).
    return next((error for item in last if (error := _in_band_error(item)) is not None), None)


# How the serializers write an error event (the Chat Completions shape; event-named formats).
_ERROR_PREFIXES = (b'data: {"error":', b"event: error\n")


def _in_band_error(item: Any) -> str | None:
    """``type: message`` of an error item (an ErrorEvent, or one serialized), else None."""
    if isinstance(item, ErrorEvent):
        return f"{item.type}: {item.message}"
    if not isinstance(item, bytes) or not item.startswith(_ERROR_PREFIXES):
        return None
    try:
        body = json.loads(item[item.index(b"data: ") + 6 :])
        error = body.get("error", body)
        return f"{error.get('type')}: {error.get('message')}"
    except (ValueError, AttributeError):
        return "an error event"


def _write(sink: IO[bytes], items: Iterable[Any]) -> None:
    parts = [_as_bytes(item) for item in items]
    if parts:
        sink.write(b"".join(parts))
        sink.flush()


def _as_bytes(item: Any) -> bytes:
    if isinstance(item, bytes | bytearray | memoryview):
        return bytes(item)
    if isinstance(item, str):
        return item.encode()
    return repr(item).encode() + b"\n"


# -- stages and plugins ----------------------------------------------------------------------------


def _listing_pipeline(args: argparse.Namespace) -> Pipeline:
    # No stages: only the plugins are loaded, so listing never depends on building any stage.
    route = {"source": args.source, "target": args.target} if hasattr(args, "source") else {}
    return Pipeline(stages=[], block=args.block, **route)


def _stages(args: argparse.Namespace) -> int:
    print_stages(_listing_pipeline(args), args.json)
    return 0


def _routes(args: argparse.Namespace) -> int:
    print_routes(_listing_pipeline(args), args.json)
    return 0


def _plugins(args: argparse.Namespace) -> int:
    print_plugins(_listing_pipeline(args), args.json)
    return 0
