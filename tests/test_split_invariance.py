"""Split invariance (R44): every recording gives the same output however its bytes are cut into reads."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable

import pytest

import chunkline
import harness

FIXTURES = harness.fixture_paths()
IDS = [p.name for p in FIXTURES]
RANDOM_SPLITS = 20
SEED = 44  # R44


def pieces_of(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    bounds = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def fed(pipeline: chunkline.Pipeline, pieces: list[bytes]) -> list[bytes]:
    conversion = pipeline.open()
    out: list[bytes] = []
    for piece in pieces:
        out += conversion.feed(piece)
    out += conversion.close()
    return out


def random_cuts(data: bytes, name: str) -> list[int]:
    rng = random.Random(f"{SEED}:{name}")
    return rng.sample(range(1, len(data)), min(RANDOM_SPLITS, len(data) - 1))


def inputs(fixture) -> list[bytes]:
    """The recording as the API sent it, and verbatim too where that differs (see harness)."""
    complete = harness.load_complete_sse(fixture)
    verbatim = harness.load_sse(fixture)
    return [complete] if verbatim == complete else [complete, verbatim]


def assert_whole_events(out: list[bytes]) -> None:
    for item in out:
        assert type(item) is bytes and item.endswith(b"\n\n") and item.count(b"\n\n") == 1, item[:80]


@pytest.mark.parametrize("fixture", FIXTURES, ids=IDS)
def test_split_invariance(fixture) -> None:
    pipeline = chunkline.Pipeline(created=harness.CREATED)
    for data in inputs(fixture):
        whole = pipeline.convert(data)
        assert_whole_events(whole)
        assert fed(pipeline, [data]) == whole
        assert list(pipeline.transform_sync([data])) == whole
        splits = {
            "byte by byte": pieces_of(data, range(1, len(data))),
            "7-byte pieces": pieces_of(data, range(7, len(data), 7)),
            "random cuts": pieces_of(data, random_cuts(data, fixture.name)),
        }
        for how, pieces in splits.items():
            assert b"".join(pieces) == data
            out = fed(pipeline, pieces)
            assert_whole_events(out)
            assert b"".join(out) == b"".join(whole), f"{fixture.name}: {how} differs"
            assert out == whole, f"{fixture.name}: {how} frames the events differently"


OPTION_SETS = {
    "usage+tags": {"include_usage": True, "thinking": "tags"},
    "words": {"chunking": "words:3"},
    "sentences": {"chunking": "sentences", "thinking": "reasoning"},
    "chars+final": {"chunking": "chars:5", "include_usage": True, "usage": "final", "ping": "drop"},
}


@pytest.mark.parametrize("options", OPTION_SETS.values(), ids=OPTION_SETS.keys())
@pytest.mark.parametrize("fixture", FIXTURES, ids=IDS)
def test_split_invariance_with_options(fixture, options) -> None:
    pipeline = chunkline.Pipeline(created=harness.CREATED, **options)
    data = harness.load_complete_sse(fixture)
    whole = pipeline.convert(data)
    assert list(pipeline.transform_sync(pieces_of(data, random_cuts(data, fixture.name)))) == whole
    assert fed(pipeline, pieces_of(data, range(3, len(data), 3))) == whole
    # empty reads change nothing either
    assert fed(pipeline, [b"", *pieces_of(data, range(11, len(data), 11)), b""]) == whole


@pytest.mark.parametrize("ending", [b"\r\n", b"\r"], ids=["crlf", "cr"])
@pytest.mark.parametrize("fixture", FIXTURES, ids=IDS)
def test_line_endings_split_anywhere(fixture, ending: bytes) -> None:
    """R44: CRLF and CR line endings read like LF, also when a read ends between CR and LF."""
    pipeline = chunkline.Pipeline(created=harness.CREATED)
    data = harness.load_complete_sse(fixture)
    want = pipeline.convert(data)
    other = data.replace(b"\n", ending)
    assert pipeline.convert(other) == want
    assert fed(pipeline, pieces_of(other, range(7, len(other), 7))) == want
    cuts = [i + 1 for i in range(len(other)) if other[i : i + 1] == b"\r"]  # right after every CR
    assert fed(pipeline, pieces_of(other, cuts)) == want


JSONL = [p for p in FIXTURES if p.suffix == ".jsonl"]


@pytest.mark.parametrize("fixture", JSONL, ids=[p.name for p in JSONL])
def test_jsonl_split_invariance(fixture) -> None:
    pipeline = chunkline.Pipeline(created=harness.CREATED, input_format="jsonl")
    data = fixture.read_bytes()
    whole = pipeline.convert(data)
    assert fed(pipeline, pieces_of(data, range(1, len(data)))) == whole
    assert fed(pipeline, pieces_of(data, random_cuts(data, fixture.name))) == whole
