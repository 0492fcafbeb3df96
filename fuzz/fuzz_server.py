"""Property-based fuzzing of the server's request side: its request translator and headers (hypothesis).

What it runs
    Generated Chat Completions request bodies (every known field, with values of the right shape,
    of any JSON shape, nested up to 1,023 levels, with any text) and request headers (keys and
    ``anthropic-beta`` values of any Latin-1 bytes a client can send).

What it checks (any failure is a finding)
    1. ``translate_request`` either returns a request or raises ``InvalidRequest`` (a 400): no other
       exception, for any body.
    2. What it returns can be written by ``orjson.dumps``, as the server sends it upstream (or is
       nested past orjson's 254 levels, which the server answers with a 400 saying so).
    3. Through a real ``chunkline serve`` app under uvicorn, in front of the fake upstream, no body
       and no header gives a 500: every answer is a 4xx or the upstream's own outcome.

Running
    make fuzz [FUZZ_SECONDS=60]          runs this for a quarter of the time (see the Makefile)
    .venv/bin/python fuzz/fuzz_server.py --seconds 20 [--seed N]

A finding prints hypothesis's falsifying example and is saved as build/fuzz/server-crash-*.txt;
the exit status is then 1.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx
from fuzzkit import (
    ROOT,
    any_value,
    arguments,
    check_no_500,
    check_translator,
    deep,
    header_text,
    round_settings,
    run_rounds,
)
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(ROOT / "tests" / "server"))
sys.path.insert(0, str(ROOT / "tests"))

from fake_anthropic import FakeAnthropic
from serverkit import ServerThread

from chunkline.server.settings import Settings
from chunkline.server.translate import translate_request

_any = any_value
_part = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image_url", "file", "input_audio", "refusal"]) | _any},
    optional={"text": st.text(max_size=20) | _any, "image_url": _any, "file": _any},
)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "function"]) | _any},
    optional={
        "content": st.text(max_size=40) | st.lists(_part, max_size=3) | _any,
        "tool_calls": st.lists(
            st.fixed_dictionaries(
                {"id": st.text(max_size=8) | _any, "type": st.just("function") | _any},
                optional={
                    "function": st.fixed_dictionaries({"name": st.text(max_size=8), "arguments": _any})
                },
            ),
            max_size=2,
        )
        | _any,
        "tool_call_id": st.text(max_size=8) | _any,
        "name": st.text(max_size=8) | _any,
        "function_call": _any,
    },
)
_tool = st.fixed_dictionaries(
    {"type": st.just("function") | _any},
    optional={
        "function": st.fixed_dictionaries(
            {"name": st.text(max_size=10) | _any},
            optional={"parameters": _any, "description": _any, "strict": _any},
        )
        | _any
    },
)
_body = st.fixed_dictionaries(
    {
        "model": st.just("echo") | st.text(max_size=10) | _any,
        "messages": st.lists(_message, max_size=4) | _any,
    },
    optional={
        "stream": st.booleans() | _any,
        "stream_options": st.fixed_dictionaries({}, optional={"include_usage": _any}) | _any,
        "max_tokens": st.integers(min_value=-2, max_value=10**6) | _any,
        "max_completion_tokens": _any,
        "temperature": st.floats(min_value=0, max_value=2) | _any,
        "top_p": _any,
        "stop": st.lists(st.text(max_size=5), max_size=3) | _any,
        "tools": st.lists(_tool, max_size=3) | _any,
        "tool_choice": _any,
        "functions": _any,
        "function_call": _any,
        "parallel_tool_calls": _any,
        "reasoning_effort": st.sampled_from(["low", "medium", "high", "none"]) | _any,
        "response_format": st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "json_object", "json_schema"])}, optional={"json_schema": _any}
        )
        | _any,
        "user": _any,
        "n": _any,
        "logprobs": _any,
        "metadata": _any,
        "modalities": _any,
    },
)
# A request that translates, so that its headers reach the upstream request too.
_valid = st.fixed_dictionaries(
    {"model": st.just("echo"), "messages": st.just([{"role": "user", "content": "fuzz"}])},
    optional={"stream": st.booleans(), "max_tokens": st.integers(min_value=1, max_value=100)},
)
# A deep value in one place of an otherwise valid request (random bodies rarely get that far).
_FIELDS = ["role", "content", "tool_calls", "name", "tools", "tool_choice", "stop", "response_format",
           "reasoning_effort", "temperature", "stream_options", "user", "model", "functions"]  # fmt: skip


def _with_deep(field: str, value: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "user", "content": "fuzz"}
    body: dict[str, Any] = {"model": "echo", "messages": [message]}
    if field in ("role", "content", "tool_calls", "name"):
        message[field] = value
    else:
        body[field] = value
    return body


_deep_body = st.builds(_with_deep, st.sampled_from(_FIELDS), deep())
_body = st.one_of(_valid, _deep_body, _body, _body, _any)  # and bodies that are not even objects
_headers = st.fixed_dictionaries(
    {},
    optional={
        "authorization": st.sampled_from([b"Bearer sk-fuzz", b"Bearer ", b"bearer"])
        | header_text.map(lambda b: b"Bearer " + b),
        "x-api-key": header_text,
        "anthropic-beta": header_text,
    },
)


def run(seconds: float, first_seed: int) -> int:
    upstream = FakeAnthropic().start()
    server = ServerThread(Settings(upstream=upstream.url, first_byte_timeout=2, idle_timeout=2)).start()
    examples = 0
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:

            @round_settings
            @given(_body, _headers, st.booleans())
            def check(body: Any, headers: dict[str, bytes], over_http: bool) -> None:
                nonlocal examples
                examples += 1
                check_translator("translate_request", lambda v: translate_request(v, Settings()), body)
                if over_http:
                    check_no_500(client, "/v1/chat/completions", body, headers)

            status, next_seed = run_rounds("server", check, seconds, first_seed)
    finally:
        server.stop()
        upstream.stop()
    if status == 0:
        seeds = f"seeds {first_seed}-{next_seed - 1}"
        print(f"fuzz_server: {examples} examples in {seconds:g} s ({seeds}), no finding")
    return status


def main(argv: list[str]) -> int:
    return run(*arguments(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
