"""Coverage-guided fuzzing of the whole chunkline pipeline (atheris, or a pure-Python fallback).

What it runs
    Each input is two header bytes and the upstream bytes: byte 0 picks one of the VARIANTS below
    (the default pipeline, and option sets that change every stage's path: usage reports, tiny
    limits, chunking with thinking tags, JSON-lines input, usage on the finish chunk with dropped
    pings, and on_error="raise"); byte 1 + 1 is the size of the reads the input is fed in again.

What it checks (any failure is a finding)
    1. No exception escapes ``Pipeline.convert``, ``Conversion.feed`` or ``close`` (with
       on_error="raise", only a chunkline.StreamError, and it must agree with the in-band error).
    2. The output is a valid OpenAI stream: every item one SSE event, every data payload JSON, the
       role chunk first, one id, contiguous tool-call indices, and exactly one finish chunk or one
       error event, then ``data: [DONE]`` last (tests/strategies.py ``read_openai_stream``).
    3. Fed in reads of any size, the output is byte for byte the same (R44).
    4. A finish only if the input holds a ``message_stop`` (never a fabricated success, R43/R51).

Seeds
    Every recording in tests/fixtures/anthropic/ (SSE, and the .jsonl ones raw too) under several
    variants is written into the corpus directory at start (files already there are kept).

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

BUILTINS = (
    "chunker",
    "decode",
    "envelope",
    "finish",
    "parse",
    "policies",
    "serialize",
    "thinking",
    "tool_calls",
    "usage",
)

if atheris is not None and __name__ == "__main__":
    # Every chunkline module, the built-in stages included (pluggy loads those by name later).
    # Only when run as the fuzzer: imported (by the tests), nothing is instrumented.
    with atheris.instrument_imports(include=["chunkline"]):
        import chunkline

        for _name in BUILTINS:
            __import__(f"chunkline.builtins.{_name}")
else:
    import chunkline

from strategies import read_openai_stream  # noqa: E402

CREATED = 1_700_000_000
VARIANTS: list[dict[str, Any]] = [
    {},
    {"include_usage": True},
    {"max_event_bytes": 1024, "max_content_blocks": 4, "max_tool_argument_bytes": 64},
    {"chunking": "words:2", "thinking": "tags"},
    {"input_format": "jsonl"},
    {"include_usage": True, "usage": "final", "thinking": "reasoning", "ping": "drop"},
    {"on_error": "raise"},
]
JSONL_VARIANT = 4
RAISE_VARIANT = 6
PIPELINES = [chunkline.Pipeline(created=CREATED, **options) for options in VARIANTS]
IN_BAND = {
    i: chunkline.Pipeline(created=CREATED, **{**o, "on_error": "inband"}) for i, o in enumerate(VARIANTS)
}
DONE = b"data: [DONE]\n\n"


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
    in_band = IN_BAND[index]
    out = in_band.convert(body)
    stream = read_openai_stream(out)  # (2): raises AssertionError on an invalid stream
    assert fed(in_band, body, size) == out, "the output depends on how the input is split"  # (3)
    if stream.finish_chunks:
        assert b"message_stop" in body, "a finish for input without message_stop"  # (4)
    if index == RAISE_VARIANT:  # (1): raise agrees with in-band
        try:
            raised = PIPELINES[index].convert(body)
        except chunkline.StreamError as exc:
            assert stream.error is not None, f"raised {exc!r} for a stream that finishes"
            assert (exc.type, exc.message) == (stream.error["type"], stream.error["message"])
            assert exc.output == out[:-2]
        else:
            assert stream.error is None and raised == out


def seeds() -> dict[str, bytes]:
    """The seed inputs: every recording under several variants (header bytes + upstream bytes)."""
    import harness  # the tests' fixture loader

    out: dict[str, bytes] = {}
    for path in harness.fixture_paths():
        sse = harness.load_complete_sse(path)
        for variant, size in ((0, 63), (1, 6), (2, 255), (3, 0), (5, 31), (RAISE_VARIANT, 127)):
            out[f"{path.stem}-v{variant}"] = bytes([variant, size]) + sse
        if path.suffix == ".jsonl":
            out[f"{path.stem}-jsonl"] = bytes([JSONL_VARIANT, 15]) + path.read_bytes()
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
    for data in pool:  # the seeds themselves first
        run_one(data, artifacts)
        execs += 1
    while time.monotonic() - started < seconds:
        run_one(mutate(rng, rng.choice(pool), pool), artifacts)
        execs += 1
    elapsed = time.monotonic() - started
    print(
        f"fuzz_pipeline (pure-Python fallback, random mutation, not coverage guided): "
        f"{execs} inputs in {elapsed:.0f}s, seed {seed}, {len(pool)} seeds, no finding",
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
