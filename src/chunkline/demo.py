"""What ``make demo`` runs: real Claude recordings converted, then read back by the official openai SDK."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import ChunklineError
from .pipeline import Pipeline

__all__ = ["RECORDINGS", "main"]

RECORDINGS = ("otel_text_then_parallel_tool_use_args.sse", "llm_thinking_long.sse")
EDGE_EVENTS = 3  # events shown from each end of a stream, unless --full
WIDTH = 100
RULE = "=" * WIDTH


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m chunkline.demo",
        description="Convert real Anthropic recordings and read the result with the openai SDK.",
    )
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE", help="Anthropic SSE recordings")
    parser.add_argument("--full", action="store_true", help="print every event of each stream")
    args = parser.parse_args(argv)
    try:
        import openai
    except ImportError:
        print("The demo needs the openai SDK: pip install 'chunkline[demo]'", file=sys.stderr)
        return 2
    files: list[Path] = args.files or [_examples_dir() / name for name in RECORDINGS]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        print(f"demo: no such recording: {', '.join(missing)}", file=sys.stderr)
        return 2
    # One pipeline for every stream: it is built once per configuration, not per response.
    pipeline = Pipeline(include_usage=True)
    try:
        for path in files:
            _show(pipeline, path, openai, full=args.full)
    except (ChunklineError, openai.OpenAIError) as exc:
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
    _print_events(outputs, full=full)
    print("-- What the openai SDK made of it (chat.completions.stream, strict validation) --\n")
    completion = _read_with_sdk(openai, outputs)
    _print_completion(completion)
    print()


def _count_events(data: bytes) -> int:
    return sum(1 for line in data.splitlines() if line.startswith(b"event:"))


def _print_events(outputs: list[bytes], *, full: bool) -> None:
    if full or len(outputs) <= 2 * EDGE_EVENTS + 1:
        shown = [o.decode() for o in outputs]
    else:
        hidden = len(outputs) - 2 * EDGE_EVENTS
        head = [o.decode() for o in outputs[:EDGE_EVENTS]]
        tail = [o.decode() for o in outputs[-EDGE_EVENTS:]]
        shown = [*head, f"   [... {hidden} more events; --full shows them ...]\n\n", *tail]
    sys.stdout.write("".join(shown))


def _http_module(openai: ModuleType) -> ModuleType:
    # openai releases have been built on httpx and later on httpx2: mock the one this SDK takes.
    for name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if issubclass(openai.DefaultHttpxClient, module.Client):
            return module
    raise RuntimeError("cannot tell which HTTP library the installed openai SDK uses")


def _read_with_sdk(openai: ModuleType, outputs: list[bytes]) -> Any:
    """Serve ``outputs`` as a Chat Completions response and let the SDK accumulate it."""
    http = _http_module(openai)

    def respond(request: Any) -> Any:
        # One event per body chunk, as a live server would send them.
        headers = {"content-type": "text/event-stream"}
        return http.Response(200, headers=headers, content=iter(outputs))

    client = openai.OpenAI(
        api_key="not-needed",
        base_url="http://chunkline.invalid/v1",
        http_client=http.Client(transport=http.MockTransport(respond)),
        max_retries=0,
        _strict_response_validation=True,
    )
    with client.chat.completions.stream(
        model="claude",
        messages=[{"role": "user", "content": "(recorded)"}],
        stream_options={"include_usage": True},
    ) as stream:
        return stream.get_final_completion()


def _print_completion(completion: Any) -> None:
    choice = completion.choices[0]
    message = choice.message
    _field("finish_reason", choice.finish_reason)
    _field("content", _quote(message.content))
    reasoning = getattr(message, "reasoning_content", None)
    if reasoning is not None:
        _field("reasoning_content", _quote(reasoning))
    calls = message.tool_calls or []
    for number, call in enumerate(calls):
        arguments = json.loads(call.function.arguments)  # fails loudly if the JSON came out broken
        text = f"{call.function.name}({json.dumps(arguments, ensure_ascii=False)})  id={call.id}"
        _field("tool_calls" if number == 0 else "", text)
    if not calls:
        _field("tool_calls", "none")
    usage = completion.usage
    if usage is not None:
        cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
        _field(
            "usage",
            f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion = "
            f"{usage.total_tokens} tokens ({cached} cached)",
        )


def _quote(text: str | None, limit: int = 400) -> str:
    if text is None:
        return "None"
    shown = text if len(text) <= limit else text[:limit] + "..."
    return json.dumps(shown, ensure_ascii=False)


def _field(name: str, value: Any) -> None:
    lines = textwrap.wrap(str(value), width=WIDTH - 20) or [""]
    print(f"  {name:<18}{lines[0]}")
    for line in lines[1:]:
        print(f"  {'':<18}{line}")


if __name__ == "__main__":
    raise SystemExit(main())
