"""What ``make demo`` runs: real recordings converted on each route, then read back by the official SDK
of the receiving side (openai for Chat Completions and Responses, anthropic for Messages)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from .demo_output import RULE, field, mock_client, print_events, quote
from .demo_routes import OPENAI_COMPAT_RECORDING, show_anthropic_route, show_responses_route
from .errors import ChunklineError
from .pipeline import Pipeline

__all__ = ["RECORDINGS", "main"]

RECORDINGS = ("otel_text_then_parallel_tool_use_args.sse", "llm_thinking_long.sse")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m chunkline.demo",
        description="Convert real recordings on each route and read the result with the official SDKs. "
        "Given files (Anthropic recordings), show the Chat Completions route for each.",
    )
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE", help="Anthropic SSE recordings")
    parser.add_argument("--full", action="store_true", help="print every event of each stream")
    args = parser.parse_args(argv)
    try:
        import anthropic
        import openai
    except ImportError:
        print("The demo needs the openai and anthropic SDKs: pip install 'chunkline[demo]'", file=sys.stderr)
        return 2
    examples = _examples_dir()
    files: list[Path] = args.files or [examples / name for name in RECORDINGS]
    tour = not args.files
    files_needed = [*files, examples / OPENAI_COMPAT_RECORDING] if tour else files
    missing = [str(path) for path in files_needed if not path.is_file()]
    if missing:
        print(f"demo: no such recording: {', '.join(missing)}", file=sys.stderr)
        return 2
    # One pipeline for every stream: it is built once per configuration, not per response.
    pipeline = Pipeline(include_usage=True)
    try:
        for path in files:
            _show(pipeline, path, openai, full=args.full)
        if tour:
            show_responses_route(files[0], openai, full=args.full)
            show_anthropic_route(examples / OPENAI_COMPAT_RECORDING, anthropic, full=args.full)
    except (ChunklineError, openai.OpenAIError, anthropic.AnthropicError) as exc:
        print(f"demo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def _examples_dir() -> Path:
    # In a checkout (the editable install make demo makes) examples/ sits beside src/; from an
    # installed wheel, look in the working directory.
    checkout = Path(__file__).resolve().parents[2] / "examples"
    return checkout if checkout.is_dir() else Path.cwd() / "examples"


def _show(pipeline: Pipeline, path: Path, openai: ModuleType, *, full: bool) -> None:
    data = path.read_bytes()
    outputs: list[bytes] = pipeline.convert(data)
    print(RULE)
    bundled = "  (a real Claude recording; see examples/NOTICE.md)" if path.name in RECORDINGS else ""
    print(path.name + bundled)
    print(
        f"Anthropic stream: {_count_events(data)} events, {len(data)} bytes  ->  "
        f"OpenAI stream: {len(outputs)} events, {sum(map(len, outputs))} bytes"
    )
    print(RULE)
    print(f"\n-- The OpenAI SSE stream (chunkline convert --include-usage {path.name}) --\n")
    print_events(outputs, full=full)
    print("-- What the openai SDK made of it (chat.completions.stream, strict validation) --\n")
    client = mock_client(openai.OpenAI, outputs)
    with client.chat.completions.stream(
        model="claude",
        messages=[{"role": "user", "content": "(recorded)"}],
        stream_options={"include_usage": True},
    ) as stream:
        _print_completion(stream.get_final_completion())
    print()


def _count_events(data: bytes) -> int:
    return sum(1 for line in data.splitlines() if line.startswith(b"event:"))


def _print_completion(completion: Any) -> None:
    choice = completion.choices[0]
    message = choice.message
    field("finish_reason", choice.finish_reason)
    field("content", quote(message.content))
    reasoning = getattr(message, "reasoning_content", None)
    if reasoning is not None:
        field("reasoning_content", quote(reasoning))
    calls = message.tool_calls or []
    for number, call in enumerate(calls):
        arguments = json.loads(call.function.arguments)  # fails loudly if the JSON came out broken
        text = f"{call.function.name}({json.dumps(arguments, ensure_ascii=False)})  id={call.id}"
        field("tool_calls" if number == 0 else "", text)
    if not calls:
        field("tool_calls", "none")
    usage = completion.usage
    if usage is not None:
        cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
        field(
            "usage",
            f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion = "
            f"{usage.total_tokens} tokens ({cached} cached)",
        )


if __name__ == "__main__":
    raise SystemExit(main())
