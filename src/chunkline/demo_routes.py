"""What ``make demo`` shows of the other routes: a Claude recording as the Responses API streams it,
read back by the openai SDK, and a DeepSeek recording as Anthropic streams it, read by the anthropic SDK."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

from .demo_output import RULE, field, mock_client, print_events, quote
from .pipeline import Pipeline

__all__ = ["OPENAI_COMPAT_RECORDING", "show_anthropic_route", "show_responses_route"]

#: A real DeepSeek stream (reasoning_content, a tool call, usage on the finish chunk), JSON lines.
OPENAI_COMPAT_RECORDING = "deepseek_v4_tool_call.jsonl"


def show_responses_route(path: Path, openai: ModuleType, *, full: bool) -> None:
    """The Anthropic recording through ``anthropic-messages -> openai-responses``."""
    outputs: list[bytes] = Pipeline(target="openai-responses").convert(path.read_bytes())
    print(RULE)
    print(f"{path.name}  ->  the OpenAI Responses API stream ({len(outputs)} events)")
    print(RULE)
    print(f"\n-- chunkline convert --to openai-responses {path.name} --\n")
    print_events(outputs, full=full)
    print("-- What the openai SDK made of it (responses.stream, strict validation) --\n")
    client = mock_client(openai.OpenAI, outputs)
    with client.responses.stream(model="claude", input="(recorded)") as stream:
        response = stream.get_final_response()
    field("status", response.status)
    for item in response.output:
        if item.type == "reasoning":
            field("reasoning", quote("".join(part.text for part in item.summary)))
        elif item.type == "message":
            field("message", quote("".join(part.text for part in item.content if part.type == "output_text")))
        elif item.type == "function_call":
            arguments = json.loads(item.arguments)  # fails loudly if the JSON came out broken
            field(
                "function_call",
                f"{item.name}({json.dumps(arguments, ensure_ascii=False)})  call_id={item.call_id}",
            )
    usage = response.usage
    if usage is not None:
        field(
            "usage",
            f"{usage.input_tokens} input ({usage.input_tokens_details.cached_tokens} cached) + "
            f"{usage.output_tokens} output = {usage.total_tokens} tokens",
        )
    print()


def show_anthropic_route(path: Path, anthropic: ModuleType, *, full: bool) -> None:
    """The OpenAI-compatible recording through ``openai-chat -> anthropic-messages``."""
    pipeline = Pipeline(source="openai-chat", target="anthropic-messages", input_format="jsonl")
    outputs: list[bytes] = pipeline.convert(path.read_bytes())
    print(RULE)
    print(f"{path.name}  (a real DeepSeek stream; see examples/NOTICE.md)")
    print(f"OpenAI-compatible chunks  ->  the Anthropic Messages stream ({len(outputs)} events)")
    print(RULE)
    print(f"\n-- chunkline convert --from openai-chat --to anthropic-messages {path.name} --\n")
    print_events(outputs, full=full)
    print("-- What the anthropic SDK made of it (messages.stream, what Claude Code reads) --\n")
    client = mock_client(anthropic.Anthropic, outputs)
    messages: Any = [{"role": "user", "content": "(recorded)"}]
    with client.messages.stream(model="claude", max_tokens=1024, messages=messages) as stream:
        message = stream.get_final_message()
    field("stop_reason", message.stop_reason)
    for block in message.content:
        if block.type == "thinking":
            field("thinking", quote(block.thinking))
        elif block.type == "text":
            field("text", quote(block.text))
        elif block.type == "tool_use":
            field("tool_use", f"{block.name}({json.dumps(block.input, ensure_ascii=False)})  id={block.id}")
    usage = message.usage
    field(
        "usage",
        f"{usage.input_tokens} input + {usage.cache_read_input_tokens or 0} cache read, "
        f"{usage.output_tokens} output",
    )
    print()
