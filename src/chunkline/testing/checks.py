"""Assertions for plugin authors: split invariance of pipelines and stages, losslessness of policies."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from chunkline import ChunkPolicy, ChunkPolicySpec, Pipeline, StageSpec, StreamError

from .running import coalesce, feed_pieces, random_pieces, resplit, stage_pipeline

__all__ = ["assert_lossless", "assert_split_invariant", "assert_stage_split_invariant"]

#: The ``created`` time pinned when a pipeline's outputs are compared (they are otherwise stamped
#: with the clock, and two conversions a second apart would differ).
PINNED_CREATED = 1_700_000_000

_Outcome = tuple[list[Any], StreamError | None]


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _positions(length: int, most: int) -> list[int]:
    """Cut points 1..length-1: all of them, or ``most`` spread evenly."""
    if length < 2 or most < 1:
        return []
    if length - 1 <= most:
        return list(range(1, length))
    return sorted({1 + (length - 2) * i // (most - 1) for i in range(most)} if most > 1 else {length // 2})


def _differ(expected: list[Any], got: list[Any]) -> str:
    for index, (a, b) in enumerate(zip(expected, got, strict=False)):
        if a != b:
            return f"output #{index}: expected {_short(a)}, got {_short(b)}"
    if len(expected) != len(got):
        shorter = min(len(expected), len(got))
        extra = (got if len(got) > shorter else expected)[shorter]
        which = "got" if len(got) > shorter else "expected"
        return f"{len(expected)} outputs expected, {len(got)} got; first {which} only: {_short(extra)}"
    return "no difference"


def _splits(data: bytes, random_splits: int, two_way: int, seed: int) -> Iterator[tuple[str, list[bytes]]]:
    yield "byte by byte", [data[i : i + 1] for i in range(len(data))]
    for cut in _positions(len(data), two_way):
        yield f"in two pieces, cut at byte {cut}", [data[:cut], data[cut:]]
    rng = random.Random(seed)
    for number in range(random_splits):
        pieces = random_pieces(data, rng, max_size=rng.choice((4, 32, 256)))
        sizes = [len(p) for p in pieces]
        shown = f"{sizes[:12]}{'...' if len(sizes) > 12 else ''}"
        yield f"in random pieces (split #{number}, seed {seed}; sizes {shown})", pieces


def assert_split_invariant(
    pipeline: Pipeline,
    data: bytes,
    *,
    random_splits: int = 20,
    two_way: int = 64,
    seed: int = 0,
    **overrides: Any,
) -> list[Any]:
    """Assert that ``pipeline`` gives the same outputs for ``data`` however it is split: fed
    whole, byte by byte, in two pieces at up to ``two_way`` cut points, and in
    ``random_splits`` random splits (reproducible from ``seed``). A stream fault raised with
    ``on_error="raise"`` must be the same each time too (and is then raised, as the whole input
    raises it). The ``created`` time is pinned (unless given) so that outputs compare. Returns
    the outputs of the whole input."""
    data = bytes(data)
    if "created" in pipeline.options and pipeline.options["created"] is None:
        overrides.setdefault("created", PINNED_CREATED)

    def outcome(pieces: Iterable[bytes]) -> _Outcome:
        try:
            return feed_pieces(pipeline, pieces, **overrides), None
        except StreamError as exc:
            return exc.output, exc

    expected, fault = outcome([data])
    for label, pieces in _splits(data, random_splits, two_way, seed):
        got, got_fault = outcome(pieces)
        if _named(got_fault) != _named(fault):
            detail = f"the whole input raised {_named(fault)}, this split raised {_named(got_fault)}"
        elif got != expected:
            detail = _differ(expected, got)
        else:
            continue
        raise AssertionError(f"the output changes when the input is fed {label}: {detail}")
    if fault is not None:
        raise fault  # the same fault for every split: what the whole input raises
    return expected


def _named(fault: StreamError | None) -> tuple[str, str] | None:
    return None if fault is None else (type(fault).__name__, str(fault))


PolicyLike = str | ChunkPolicySpec | Callable[[], ChunkPolicy]
"""A chunking policy to check: a registered name (``"words:3"``), a ``ChunkPolicySpec`` (made
with no argument), or a function returning a new policy."""


def _policy_factory(
    policy: PolicyLike, plugins: Iterable[object], load_entrypoints: bool, block: Iterable[str]
) -> Callable[[], ChunkPolicy]:
    if isinstance(policy, str):
        pipeline = Pipeline(
            ["chunker"], plugins=plugins, load_entrypoints=load_entrypoints, block=block, chunking=policy
        )
        factory: Callable[[], ChunkPolicy] = pipeline.options["chunking"]
        return factory
    if isinstance(policy, ChunkPolicySpec):
        spec = policy
        return lambda: spec.factory(None)
    if callable(policy):
        return policy
    raise TypeError(f"expected a policy name, a ChunkPolicySpec or a factory, not {policy!r}")


_FLUSH = None


def _pieces_of(result: Any, call: str) -> list[str]:
    if not isinstance(result, list) or not all(isinstance(piece, str) for piece in result):
        raise AssertionError(f"the policy's {call} returned {_short(result)}, not a list of str")
    return result


def _run_policy(make: Callable[[], ChunkPolicy], steps: Sequence[str | None]) -> list[str]:
    """Feed each str step (None: flush), then flush twice (the second must give nothing)."""
    policy = make()
    out: list[str] = []
    for step in steps:
        if step is None:
            out += _pieces_of(policy.flush(), "flush()")
        else:
            out += _pieces_of(policy.feed(step), "feed()")
    out += _pieces_of(policy.flush(), "flush()")
    again = _pieces_of(policy.flush(), "flush()")
    if "".join(again):
        raise AssertionError(f"a second flush() with nothing fed in between gave {_short(again)}")
    return out


def _first_difference(a: str, b: str) -> int:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


def assert_lossless(
    policy: PolicyLike,
    texts: str | Sequence[str],
    *,
    random_splits: int = 20,
    two_way: int = 32,
    seed: int = 0,
    plugins: Iterable[object] = (),
    load_entrypoints: bool = True,
    block: Iterable[str] = (),
) -> list[str]:
    """Assert that a chunking policy is lossless for ``texts`` (the upstream's text deltas):
    the pieces it returns, joined, are exactly the text fed, whichever way the text is split
    (as given, whole, one character at a time, in two at up to ``two_way`` places, and in
    ``random_splits`` random ways) and wherever a block boundary flushes it. Every result must
    be a list of str, and a flush with nothing held must give nothing. Returns the pieces for
    ``texts`` as given."""
    plugins = list(plugins)
    block = list(block)
    make = _policy_factory(policy, plugins, load_entrypoints, block)
    given = [texts] if isinstance(texts, str) else list(texts)
    whole = "".join(given)
    rng = random.Random(seed)
    runs: list[tuple[str, list[str | None]]] = [
        ("fed as given", list(given)),
        ("fed as given, flushed after each piece", [s for piece in given for s in (piece, _FLUSH)]),
        ("fed whole", [whole]),
        ("fed one character at a time", list(whole)),
    ]
    for cut in _positions(len(whole), two_way):
        runs.append((f"fed in two pieces, cut at {cut}", [whole[:cut], whole[cut:]]))
    for number in range(random_splits):
        steps: list[str | None] = []
        position = 0
        while position < len(whole):
            size = rng.randint(1, rng.choice((3, 16, 80)))
            steps.append(whole[position : position + size])
            position += size
            if rng.random() < 0.15:
                steps.append(_FLUSH)
        runs.append((f"fed in random pieces with flushes (split #{number}, seed {seed})", steps))
    first: list[str] | None = None
    for label, steps in runs:
        pieces = _run_policy(make, steps)
        joined = "".join(pieces)
        if joined != whole:
            at = _first_difference(whole, joined)
            raise AssertionError(
                f"the policy is not lossless when {label}: from character {at} the input reads "
                f"{_short(whole[at : at + 60])} but the output reads {_short(joined[at : at + 60])} "
                f"(input {len(whole)} characters, output {len(joined)})"
            )
        if first is None:
            first = pieces
    return first or []


def assert_stage_split_invariant(
    stage: str | StageSpec,
    items: Sequence[Any],
    *,
    random_splits: int = 20,
    seed: int = 0,
    plugins: Iterable[object] = (),
    load_entrypoints: bool = True,
    block: Iterable[str] = (),
    **options: Any,
) -> list[Any]:
    """Assert that one stage's output, with adjacent deltas joined (`coalesce`), does not
    depend on how the text of its input deltas is cut: each delta whole, one character at a
    time, and cut in ``random_splits`` random ways. Returns the joined output for whole deltas.
    A stage that rewrites text (masking, say) must still decide the same way however the text
    arrives."""
    opener = stage_pipeline(stage, plugins=plugins, load_entrypoints=load_entrypoints, block=block, **options)

    def run(feed: list[Any]) -> list[Any]:
        runner = opener()
        return coalesce(runner.feed_all(feed) + runner.close())

    expected = run(resplit(items, lambda text: [text]))
    rng = random.Random(seed)

    def random_cut(text: str) -> list[str]:
        cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(0, 6)))) if text else []
        bounds = [0, *cuts, len(text)]
        return [text[a:b] for a, b in itertools.pairwise(bounds)]

    runs: list[tuple[str, list[Any]]] = [
        ("as given", list(items)),
        ("one character at a time", resplit(items, list)),
    ]
    for number in range(random_splits):
        runs.append((f"in random pieces (split #{number}, seed {seed})", resplit(items, random_cut)))
    for label, feed in runs:
        got = run(feed)
        if got != expected:
            raise AssertionError(
                f"the stage's output changes when its input deltas are cut {label}: {_differ(expected, got)}"
            )
    return expected
