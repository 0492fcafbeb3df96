"""Property-based fuzzing of the Responses and Anthropic Messages request translators and routes (hypothesis).

What it runs
    Generated OpenAI Responses request bodies (``POST /v1/responses``: every input item type,
    reasoning items with chunkline's ``encrypted_content`` and damaged ones, content parts, data
    URLs, function, namespace and hosted tools, ``tool_choice``, ``text.format``, ``reasoning``,
    the stateless and unsupported fields) and Anthropic Messages bodies (``POST /v1/messages`` on
    ``--upstream-format openai-chat``: system text or blocks, text, image, tool_use, tool_result,
    thinking, redacted_thinking and document blocks, tools, ``tool_choice``, ``thinking``, stop
    sequences, metadata), with values of the right shape, of any JSON shape, nested up to 1,023
    levels (also in one place of an otherwise valid request), with any text.

What it checks (any failure is a finding)
    1. ``translate_responses_request`` and ``translate_messages_request``, given the body as the
       server parses it, return a request or raise a 4xx ``APIError`` (``InvalidRequest``): no
       other exception, on a fresh thread stack with the default recursion limit.
    2. The body they return can be written by ``orjson.dumps``, as the server sends it upstream
       (or is nested past orjson's 254 levels, which the server answers with a 400 saying so).
    3. Through a real ``chunkline serve`` app under uvicorn (the default app in front of the fake
       Anthropic upstream; ``upstream_format="openai-chat"`` in front of the fake chat upstream,
       where ``/v1/messages/count_tokens`` gets a share too), no body gives a 500.

Running
    make fuzz [FUZZ_SECONDS=60]          runs this for a quarter of the time (see the Makefile)
    .venv/bin/python fuzz/fuzz_translators.py --seconds 20 [--seed N]

The time is split evenly between the two translators. A finding prints hypothesis's falsifying
example and is saved as build/fuzz/translators-crash-*.txt; the exit status is then 1.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import httpx
from fuzzkit import (
    ROOT,
    arguments,
    as_server_reads,
    check_no_500,
    check_translator,
    round_settings,
    run_rounds,
)
from hypothesis import given
from hypothesis import strategies as st
from translator_bodies import messages_bodies, responses_bodies

sys.path.insert(0, str(ROOT / "tests" / "server"))
sys.path.insert(0, str(ROOT / "tests"))

from fake_anthropic import FakeAnthropic
from fake_openai_chat import FakeOpenAIChat
from serverkit import ServerThread

from chunkline.server.anthropic_request import translate_messages_request
from chunkline.server.responses import translate_responses_request
from chunkline.server.settings import Settings

_RESPONSES_SETTINGS = [Settings(), Settings(hosted_tools="reject", temperature_above_1="reject")]
_MAP = {"claude-*": "echo", "claude-opus-4-1": "echo"}


def _responses(value: Any, which: int) -> Any:
    return translate_responses_request(value, _RESPONSES_SETTINGS[which])


def _messages(value: Any, which: int) -> Any:
    return translate_messages_request(value, _MAP if which else {}, reasoning_effort=bool(which))


def _status_scenario(body: Any) -> bool:
    """A body whose model names the fake upstream's error-status scenario: its 500 is passed on."""
    parsed, value = as_server_reads(body)
    model = value.get("model") if parsed and isinstance(value, dict) else None
    return isinstance(model, str) and model.startswith("status")


def _fuzz(
    tool: str,
    translator: Callable[[Any, int], Any],
    bodies: Any,
    client: httpx.Client,
    paths: list[str],
    headers: dict[str, str],
    seconds: float,
    first_seed: int,
) -> tuple[int, int, int]:
    """``(status, examples, next seed)`` of fuzzing one translator and its route."""
    examples = 0

    @round_settings
    @given(bodies, st.integers(0, 1), st.sampled_from([None, None, *paths]))
    def check(body: Any, which: int, path: str | None) -> None:
        nonlocal examples
        examples += 1
        check_translator(tool, lambda value: translator(value, which), body)
        if path is not None:
            check_no_500(client, path, body, headers, _status_scenario)

    status, next_seed = run_rounds("translators", check, seconds, first_seed)
    return status, examples, next_seed


def run(seconds: float, first_seed: int) -> int:
    # A random model name makes the fake Anthropic upstream drop the connection (a 502, no
    # finding); its traceback and the server's warning would bury the report.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    logging.getLogger("chunkline").setLevel(logging.ERROR)
    anthropic = FakeAnthropic().start()
    chat = FakeOpenAIChat().start()
    quick = {"first_byte_timeout": 2, "idle_timeout": 2}
    responses_server = ServerThread(Settings(upstream=anthropic.url, **quick)).start()  # type: ignore[arg-type]
    messages_server = ServerThread(
        Settings(upstream=f"{chat.url}/v1", upstream_format="openai-chat", **quick)  # type: ignore[arg-type]
    ).start()
    status = 0
    try:
        runs = [
            ("translate_responses_request", _responses, responses_bodies, responses_server,
             ["/v1/responses"], {"authorization": "Bearer sk-fuzz"}),
            ("translate_messages_request", _messages, messages_bodies, messages_server,
             ["/v1/messages", "/v1/messages/count_tokens"], {"x-api-key": "sk-fuzz"}),
        ]  # fmt: skip
        for tool, translator, bodies, server, paths, headers in runs:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                status, examples, next_seed = _fuzz(
                    tool, translator, bodies, client, paths, headers, seconds / 2, first_seed
                )
            if status:
                return status
            seeds = f"seeds {first_seed}-{next_seed - 1}"
            print(f"fuzz_translators: {tool}: {examples} examples in {seconds / 2:g} s ({seeds}), no finding")
    finally:
        for stoppable in (responses_server, messages_server, anthropic, chat):
            stoppable.stop()
    return status


def main(argv: list[str]) -> int:
    return run(*arguments(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
