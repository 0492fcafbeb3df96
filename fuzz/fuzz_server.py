"""Property-based fuzzing of the server's request side: its request translator and headers (hypothesis).

What it runs
    Generated Chat Completions request bodies (every known field, with values of the right shape,
    of any JSON shape, nested up to 1,100 levels, with any text) and request headers (keys and
    ``anthropic-beta`` values of any Latin-1 bytes a client can send).

What it checks (any failure is a finding)
    1. ``translate_request`` either returns a request or raises ``InvalidRequest`` (a 400): no other
       exception, for any body.
    2. Through a real ``chunkline serve`` app under uvicorn, in front of the fake upstream, no body
       and no header gives a 500: every answer is a 4xx or the upstream's own outcome.

Running
    make fuzz [FUZZ_SECONDS=60]          runs this for a third of the time, fuzz_pipeline.py the rest
    .venv/bin/python fuzz/fuzz_server.py --seconds 20 [--seed N]

A finding prints hypothesis's falsifying example and is saved as build/fuzz/server-crash-*.json;
the exit status is then 1.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "server"))
sys.path.insert(0, str(ROOT / "tests"))

from fake_anthropic import FakeAnthropic  # noqa: E402
from serverkit import ServerThread  # noqa: E402

from chunkline.server.errors import InvalidRequest  # noqa: E402
from chunkline.server.settings import Settings  # noqa: E402
from chunkline.server.translate import translate_request  # noqa: E402

FINDINGS = ROOT / "build" / "fuzz"
_SERVER_RECURSION_LIMIT = sys.getrecursionlimit()

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["", "auto", "none", "required", "function", "text", "user", "json_schema", "high"]),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def _deep(draw: Any) -> Any:
    """A value nested far deeper than anything real: past repr's and orjson's writing depths."""
    value: Any = draw(_scalars)
    # Around the depths that matter: orjson writes 254 levels, repr() recurses about 990 deep,
    # orjson reads 1,024.
    depth = draw(st.sampled_from([100, 253, 255, 980, 1_000, 1_019, 1_023]))
    as_list = draw(st.booleans())  # one draw, not one per level: hypothesis bounds its draws
    for _ in range(depth):
        value = [value] if as_list else {"role": value}
    return value


_any = st.one_of(_json, _json, _json, _deep())
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


_deep_body = st.builds(_with_deep, st.sampled_from(_FIELDS), _deep())
_body = st.one_of(_valid, _deep_body, _body, _body, _any)  # and bodies that are not even objects
_header_text = st.binary(max_size=40).map(lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7F))
_headers = st.fixed_dictionaries(
    {},
    optional={
        "authorization": st.sampled_from([b"Bearer sk-fuzz", b"Bearer ", b"bearer"])
        | _header_text.map(lambda b: b"Bearer " + b),
        "x-api-key": _header_text,
        "anthropic-beta": _header_text,
    },
)


def _dumps(value: Any) -> str:
    """JSON for any depth (json.dumps recurses, and stops near 1,000 levels)."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Raw):
            out.append(item.text)
        elif isinstance(item, list):
            stack.append(_Raw("]"))
            for index, element in reversed(list(enumerate(item))):
                stack.append(element)
                if index:
                    stack.append(_Raw(","))
            out.append("[")
        elif isinstance(item, dict):
            stack.append(_Raw("}"))
            for index, (key, element) in reversed(list(enumerate(item.items()))):
                stack.append(element)
                stack.append(_Raw(json.dumps(str(key)) + ":"))
                if index:
                    stack.append(_Raw(","))
            out.append("{")
        else:
            out.append(json.dumps(item))
    return "".join(out)


class _Raw:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class Finding(Exception):
    pass


def _check_translator(body: Any) -> None:
    failure: list[BaseException] = []

    def translate() -> None:
        try:
            translate_request(body, Settings())
        except InvalidRequest:
            pass
        except Exception as exc:
            failure.append(exc)

    # On a fresh stack, as in a server's request task (hypothesis's own frames would make the
    # stack deeper than the server's).
    thread = threading.Thread(target=translate)
    thread.start()
    thread.join()
    if failure:
        exc = failure[0]
        raise Finding(f"translate_request raised {type(exc).__name__}: {exc}") from exc


def _check_server(client: httpx.Client, body: Any, headers: dict[str, bytes]) -> None:
    content = _dumps(body).encode("utf-8", "surrogatepass")
    headers = {"content-type": b"application/json", **headers}
    try:
        response = client.post("/v1/chat/completions", content=content, headers=headers)  # type: ignore[arg-type]
    except httpx.LocalProtocolError:
        return  # a header h11 will not send (say, with trailing whitespace): no finding
    if response.status_code == 500:
        raise Finding(f"HTTP 500: {response.text[:300]}")


def run(seconds: float, first_seed: int) -> int:
    upstream = FakeAnthropic().start()
    server = ServerThread(Settings(upstream=upstream.url, first_byte_timeout=2, idle_timeout=2)).start()
    examples = 0
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:

            @settings(
                max_examples=50,
                deadline=None,
                database=None,
                phases=[Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
            @given(_body, _headers, st.booleans())
            def check(body: Any, headers: dict[str, bytes], over_http: bool) -> None:
                nonlocal examples
                examples += 1
                # hypothesis raises the recursion limit while it runs a test; the server runs
                # with Python's default, where a deep repr() fails.
                raised = sys.getrecursionlimit()
                sys.setrecursionlimit(_SERVER_RECURSION_LIMIT)
                try:
                    _check_translator(body)
                    if over_http:
                        _check_server(client, body, headers)
                finally:
                    sys.setrecursionlimit(raised)

            stop_at = time.monotonic() + seconds
            round_seed = first_seed
            while time.monotonic() < stop_at:
                try:
                    seed(round_seed)(check)()
                except Exception as finding:  # a Finding, or hypothesis failing to print one
                    FINDINGS.mkdir(parents=True, exist_ok=True)
                    text = "".join(traceback.format_exception(finding))
                    name = FINDINGS / f"server-crash-{hashlib.sha1(text.encode()).hexdigest()[:12]}.txt"
                    name.write_text(text)
                    print(
                        f"fuzz_server: a finding (seed {round_seed}), saved as {name}:\n{text}",
                        file=sys.stderr,
                    )
                    return 1
                round_seed += 1
    finally:
        server.stop()
        upstream.stop()
    print(
        f"fuzz_server: {examples} examples in {seconds:g} s (seeds {first_seed}-{round_seed - 1}), no finding"
    )
    return 0


def main(argv: list[str]) -> int:
    seconds = float(argv[argv.index("--seconds") + 1]) if "--seconds" in argv else 20.0
    first_seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else int(time.time()) % 1_000_000
    return run(seconds, first_seed)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
