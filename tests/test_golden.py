"""Golden files: the default conversion of every recording, compared byte for byte."""

from __future__ import annotations

import pytest

import harness

REGEN = "python tests/regen_golden.py"

FIXTURES = harness.fixture_paths()


def first_difference(want: bytes, got: bytes) -> str:
    want_events, got_events = want.split(b"\n\n"), got.split(b"\n\n")
    for number, (w, g) in enumerate(zip(want_events, got_events, strict=False)):
        if w != g:
            return f"event {number} differs:\n  golden: {w[:300]!r}\n  now:    {g[:300]!r}"
    return f"the golden file has {len(want_events)} events, the output {len(got_events)}"


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.name for p in FIXTURES])
def test_output_matches_golden_file(fixture) -> None:
    golden = harness.golden_path(fixture)
    assert golden.exists(), f"no golden file {golden.name}; create it with `{REGEN}`"
    want = golden.read_bytes()
    got = harness.golden_output(fixture)
    if got != want:
        pytest.fail(
            f"the output for {fixture.name} no longer matches {golden.name}; "
            + first_difference(want, got)
            + f"\nIf (and only if) this change is intended, check the new output against CONFORMANCE "
            f"and rewrite the golden files with `{REGEN}`.",
            pytrace=False,
        )


def test_no_stale_golden_files() -> None:
    wanted = {harness.golden_path(p) for p in FIXTURES}
    stale = sorted(p.name for p in harness.GOLDEN.glob("*.openai.sse") if p not in wanted)
    assert not stale, f"golden files without a fixture: {stale}; `{REGEN}` removes them"
