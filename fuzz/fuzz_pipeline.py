"""Coverage-guided fuzzing of the whole chunkline pipeline, on every built-in route (atheris or pure Python).

What it runs
    Each input is two header bytes and the upstream bytes: byte 0 picks one of the VARIANTS below,
    a route and its options: the default route (anthropic-messages -> openai-chat) plain and with
    option sets that change every stage's path (usage reports, tiny limits, chunking with thinking
    tags, JSON-lines input, usage on the finish chunk with dropped pings, on_error="raise"); the
    openai-responses target (Anthropic SSE in) and the openai-chat -> anthropic-messages route
    (chat chunk SSE in), each plain, with its thinking modes and chunking, tiny limits, JSON-lines
    input and on_error="raise". Byte 1 + 1 is the size of the reads the input is fed in again.

What it checks (any failure is a finding)
    1. No exception escapes ``Pipeline.convert``, ``Conversion.feed`` or ``close`` (with
       on_error="raise", only a chunkline.StreamError, and it must agree with the in-band error).
    2. The output is a valid stream of the route's target. openai-chat: every item one SSE event,
       every data payload JSON, the role chunk first, one id, contiguous tool-call indices, exactly
       one finish chunk or one error event, then ``data: [DONE]`` last (tests/strategies.py
       ``read_openai_stream``). openai-responses and anthropic-messages: fuzz/route_checks.py
       (``event: X`` naming its data's type; sequence numbers, items announced before anything
       refers to them and one terminal event, last; message_start first, blocks 0, 1, 2... started
       before their deltas and stopped before message_delta, and one message_stop or error, last).
    3. Fed in reads of any size, the output is byte for byte the same (R44).
    4. A finish only if the input can hold what ends it: a ``message_stop`` (Anthropic input, R43,
       R51, RS12) or a ``finish_reason`` (chat input): never a fabricated success.

Seeds
    Every recording in tests/fixtures/anthropic/ (SSE, and the .jsonl ones raw too) under several
    variants of the two routes that read it, and every chat recording in tests/fixtures/openai/ and
    tests/fixtures/openai_compat/ under the chat route's variants, with the hand-written inputs in
    fuzz/seeds/ (anthropic_*.sse and chat_*.sse alike), are written into the corpus directory at
    start (files already there are kept).

Running
    make fuzz [FUZZ_SECONDS=60]     installs atheris into .venv if missing, seeds build/fuzz/corpus,
                                    fuzzes for that long; exit status 0 = no finding, else non-zero
                                    with the input saved as build/fuzz/crash-*.
    .venv/bin/python fuzz/fuzz_pipeline.py -max_total_time=60 -dict=fuzz/pipeline.dict build/fuzz/corpus
    .venv/bin/python fuzz/fuzz_pipeline.py build/fuzz/crash-XXXX                  (replay one input)
    .venv/bin/python fuzz/fuzz_pipeline.py --fallback --seconds 60 [--seed N]

Fallback
    atheris needs a wheel for the running CPython (3.11 here has one). Where ``import atheris``
    fails, or with ``--fallback``, the same checks run under a pure-Python driver: random mutations
    (byte flips, inserts of SSE/JSON/UTF-8 tokens, deletions, splices, truncations) of the seeds for
    the time budget. It is not coverage guided, so it finds less per second; it is honest about
    that in its summary line.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import pkgutil
import random
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

try:
    import atheris
except ImportError:  # pragma: no cover - depends on the machine
    atheris = None

if atheris is not None and __name__ == "__main__" and "--fallback" not in sys.argv:
    # Every chunkline module, the built-in stages included (pluggy loads those by name later).
    # Only when run as the fuzzer: imported (by the tests) or as the fallback, nothing is
    # instrumented (nothing would read the coverage, and it costs half the speed).
    with atheris.instrument_imports(include=["chunkline"]):
        import chunkline
        import chunkline.builtins

        for _module in pkgutil.iter_modules(chunkline.builtins.__path__):
            __import__(f"chunkline.builtins.{_module.name}")
else:
    import chunkline

from route_checks import anthropic_fault, responses_fault, saw_message_stop  # noqa: E402

from strategies import read_openai_stream  # noqa: E402

CREATED = 1_700_000_000
CHAT, RESPONSES, ANTHROPIC = "openai-chat", "openai-responses", "anthropic-messages"
ROUTES: dict[str, dict[str, Any]] = {
    CHAT: {"created": CREATED},
    RESPONSES: {"target": RESPONSES, "created": CREATED},
    ANTHROPIC: {"source": CHAT, "target": ANTHROPIC},
}
TINY = {"max_event_bytes": 1024, "max_tool_argument_bytes": 64}
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    (CHAT, {}),
    (CHAT, {"include_usage": True}),
    (CHAT, {**TINY, "max_content_blocks": 4}),
    (CHAT, {"chunking": "words:2", "thinking": "tags"}),
    (CHAT, {"input_format": "jsonl"}),
    (CHAT, {"include_usage": True, "usage": "final", "thinking": "reasoning", "ping": "drop"}),
    (CHAT, {"on_error": "raise"}),
    (RESPONSES, {}),
    (RESPONSES, {"thinking": "reasoning_text", "reasoning_encrypted_content": True, "chunking": "words:2"}),
    (RESPONSES, {**TINY, "max_content_blocks": 4, "tool_namespaces": {"get_weather": ("ns", "weather")}}),
    (RESPONSES, {"input_format": "jsonl", "thinking": "tags", "finish_reasons": {"pause_turn": "stop"}}),
    (RESPONSES, {"on_error": "raise"}),
    (ANTHROPIC, {}),
    (ANTHROPIC, {"thinking": "tags", "chunking": "chars:3", "stop_sequences": ["\n"], "ping": "drop"}),
    (ANTHROPIC, TINY),
    (ANTHROPIC, {"input_format": "jsonl", "thinking": "drop"}),
    (ANTHROPIC, {"on_error": "raise"}),
]
# Per route: the variant seeded with JSON-lines files raw, and the on_error="raise" one.
JSONL_VARIANT = {CHAT: 4, RESPONSES: 10, ANTHROPIC: 15}
RAISE_VARIANTS = {6, 11, 16}
# Per route: the variants (and read sizes) every recording it reads is seeded under.
SEEDED = {
    CHAT: ((0, 63), (1, 6), (2, 255), (3, 0), (5, 31), (6, 127)),
    RESPONSES: ((7, 63), (8, 6), (9, 255), (11, 127)),
    ANTHROPIC: ((12, 63), (13, 6), (14, 255), (16, 127)),
}
PIPELINES = [chunkline.Pipeline(**ROUTES[route], **options) for route, options in VARIANTS]
IN_BAND = [
    chunkline.Pipeline(**ROUTES[route], **{**options, "on_error": "inband"}) for route, options in VARIANTS
]


EXECUTIONS = dict.fromkeys(ROUTES, 0)


def count(route: str) -> None:
    # libFuzzer counts inputs, not routes, and ends the process without running Python's atexit:
    # the split by route is printed as it goes (and by the fallback at its end).
    EXECUTIONS[route] += 1
    if sum(EXECUTIONS.values()) % 20_000 == 0:
        print(f"fuzz_pipeline: {by_route()}", file=sys.stderr)


def by_route() -> str:
    return "inputs by target: " + ", ".join(f"{route} {n}" for route, n in EXECUTIONS.items())


def fed(pipeline: chunkline.Pipeline, data: bytes, size: int) -> list[bytes]:
    conversion = pipeline.open()
    out: list[bytes] = []
    for start in range(0, len(data), size):
        out += conversion.feed(data[start : start + size])
    return out + conversion.close()


def check(data: bytes) -> None:
    """Run one fuzz input through its variant and assert the invariants (module docstring)."""
    if len(data) < 2:
        return
    index = data[0] % len(VARIANTS)
    size = data[1] + 1
    body = data[2:]
    route = VARIANTS[index][0]
    count(route)
    in_band = IN_BAND[index]
    out = in_band.convert(body)
    fault = read(route, out, body)  # (2) and (4)
    if route == CHAT:
        assert fed(in_band, body, size) == out, "the output depends on how the input is split"  # (3)
    else:
        assert b"".join(fed(in_band, body, size)) == b"".join(out), "the output depends on the reads"
    if index in RAISE_VARIANTS:  # (1): raise agrees with in-band
        try:
            raised = PIPELINES[index].convert(body)
        except chunkline.StreamError as exc:
            assert fault is not None, f"raised {exc!r} for a stream that finishes"
            assert exc.message == fault[1], (exc.message, fault)
            assert route == ANTHROPIC or exc.type == fault[0], (exc.type, fault)
            if route == CHAT:
                assert exc.output == out[:-2]  # all but the error event and [DONE]
            else:
                assert_only_the_end(out, b"".join(exc.output))
        else:
            assert fault is None, f"no exception for a stream that failed in-band: {fault}"
            assert raised == out


def read(route: str, out: list[bytes], body: bytes) -> tuple[str, str] | None:
    """Check ``out`` as the route's target stream; the in-band fault it ends with, if any."""
    if route == RESPONSES:
        return responses_fault(out, body)
    if route == ANTHROPIC:
        return anthropic_fault(out, body)
    stream = read_openai_stream(out)  # raises AssertionError on an invalid stream
    if stream.finish_chunks:
        assert saw_message_stop(body), "a finish for input without message_stop"
    error = stream.error
    return None if error is None else (error["type"], error["message"])


def assert_only_the_end(out: list[bytes], before: bytes) -> None:
    """A raise's ``.output`` is the in-band output up to its error event, or, on openai-responses
    for a fault before the response opened, up to the opening that fault made."""
    whole = b"".join(out)
    assert whole.startswith(before), "the raised output is not what came before the error"
    rest = [frame.split(b"\n", 1)[0] for frame in whole[len(before) :].split(b"\n\n") if frame]
    assert rest in (
        [b"event: error"],
        [b"event: response.failed"],
        [b"event: response.created", b"event: response.in_progress", b"event: response.failed"],
    ), rest


# Hand-written inputs for what no recording has: a tool_use id repeated (RS12), chat error objects,
# reasoning_details with a signature, interleaved and index-less tool calls, a vLLM stop_reason.
SEEDS = Path(__file__).with_name("seeds")


def seeds() -> dict[str, bytes]:
    """The seed inputs: every recording under its routes' variants (header bytes + input bytes)."""
    import chat_route  # the tests' chat fixture loader
    import harness  # the tests' fixture loader

    out: dict[str, bytes] = {}
    for path in [*harness.fixture_paths(), *sorted(SEEDS.glob("anthropic_*.sse"))]:
        sse = harness.load_complete_sse(path)
        for route in (CHAT, RESPONSES):
            for variant, size in SEEDED[route]:
                out[f"{path.stem}-v{variant}"] = bytes([variant, size]) + sse
            if path.suffix == ".jsonl":
                out[f"{path.stem}-jsonl{JSONL_VARIANT[route]}"] = (
                    bytes([JSONL_VARIANT[route], 15]) + path.read_bytes()
                )
    for path in [*chat_route.chat_fixture_paths(), *sorted(SEEDS.glob("chat_*.sse"))]:
        sse = chat_route.load_chat_sse(path)
        for variant, size in SEEDED[ANTHROPIC]:
            out[f"{path.stem}-v{variant}"] = bytes([variant, size]) + sse
        if path.suffix == ".jsonl":
            out[f"{path.stem}-jsonl"] = bytes([JSONL_VARIANT[ANTHROPIC], 15]) + path.read_bytes()
    return out


def write_seeds(corpus: Path) -> int:
    corpus.mkdir(parents=True, exist_ok=True)
    written = 0
    for name, data in seeds().items():
        target = corpus / f"seed-{name}"
        if not target.exists():
            target.write_bytes(data)
            written += 1
    return written


# -- the pure-Python fallback ----------------------------------------------------------------------

DICTIONARY = Path(__file__).with_name("pipeline.dict")


def tokens() -> list[bytes]:
    """The libFuzzer dictionary's values (``name="value"`` lines, ``\\xNN`` and ``\\"`` escapes)."""
    out = []
    for line in DICTIONARY.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            value = line.split("=", 1)[1].strip()[1:-1]
            out.append(codecs.escape_decode(value.encode())[0])
    return out


TOKENS = tokens()


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        how = rng.randrange(7)
        at = rng.randint(2, max(2, len(buf)))
        if how == 0 and len(buf) > 2:
            buf[rng.randrange(2, len(buf))] = rng.randrange(256)
        elif how == 1:
            buf[at:at] = rng.choice(TOKENS)
        elif how == 2:
            del buf[at : at + rng.randint(1, 64)]
        elif how == 3:
            other = rng.choice(pool)
            start = rng.randrange(len(other))
            buf[at:at] = other[start : start + rng.randint(1, 512)]
        elif how == 4:
            del buf[at:]
        elif how == 5 and len(buf) > 2:
            start = rng.randrange(2, len(buf))
            buf[at:at] = buf[start : start + rng.randint(1, 256)] * rng.randint(1, 4)
        else:
            buf[:2] = bytes([rng.randrange(256), rng.randrange(256)])
    return bytes(buf)


def fallback(seconds: float, seed: int, artifacts: Path) -> int:
    rng = random.Random(seed)
    pool = list(seeds().values())
    started = time.monotonic()
    execs = 0
    for data in pool:  # the seeds themselves first, as far as the time allows
        if time.monotonic() - started >= seconds:
            break
        run_one(data, artifacts)
        execs += 1
    while time.monotonic() - started < seconds:
        run_one(mutate(rng, rng.choice(pool), pool), artifacts)
        execs += 1
    elapsed = time.monotonic() - started
    print(
        f"fuzz_pipeline (pure-Python fallback, random mutation, not coverage guided): "
        f"{execs} inputs in {elapsed:.0f}s ({by_route()}), seed {seed}, {len(pool)} seeds, no finding",
        file=sys.stderr,
    )
    return 0


def run_one(data: bytes, artifacts: Path) -> None:
    try:
        check(data)
    except Exception:
        artifacts.mkdir(parents=True, exist_ok=True)
        path = artifacts / f"crash-{hashlib.sha1(data).hexdigest()}"
        path.write_bytes(data)
        traceback.print_exc()
        print(f"fuzz_pipeline: finding; input saved as {path}", file=sys.stderr)
        sys.exit(1)


def main(argv: list[str]) -> int:
    use_fallback = "--fallback" in argv or atheris is None
    if use_fallback:
        if atheris is None and "--fallback" not in argv:
            print("fuzz_pipeline: atheris is not importable; using the pure-Python fallback", file=sys.stderr)
        # The libFuzzer flags `make fuzz` passes mean the same here.
        seconds = float(_value(argv, "--seconds", _value(argv, "-max_total_time", "60")))
        seed = int(_value(argv, "--seed", str(int(time.time()))))
        artifacts = Path(_value(argv, "-artifact_prefix", str(ROOT / "build" / "fuzz")))
        return fallback(seconds, seed, artifacts)
    for arg in argv[1:]:
        if not arg.startswith("-") and (not os.path.exists(arg) or os.path.isdir(arg)):
            print(f"fuzz_pipeline: {write_seeds(Path(arg))} seed inputs written to {arg}", file=sys.stderr)
    test_one: Callable[[bytes], None] = check
    atheris.Setup(argv, test_one)
    atheris.Fuzz()
    return 0


def _value(argv: list[str], flag: str, default: str) -> str:
    """``--flag VALUE`` or libFuzzer's ``-flag=VALUE``."""
    for position, arg in enumerate(argv):
        if arg == flag and position + 1 < len(argv):
            return argv[position + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return default


if __name__ == "__main__":
    sys.exit(main(sys.argv))
