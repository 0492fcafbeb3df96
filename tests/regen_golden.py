"""Rewrites tests/golden/*.openai.sse from the current converter; run it only when a change is intended."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import harness


def main() -> int:
    harness.GOLDEN.mkdir(exist_ok=True)
    wanted = set()
    changed = 0
    for fixture in harness.fixture_paths():
        path = harness.golden_path(fixture)
        wanted.add(path)
        output = harness.golden_output(fixture)
        if not path.exists() or path.read_bytes() != output:
            path.write_bytes(output)
            changed += 1
            print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    for stale in sorted(set(harness.GOLDEN.glob("*.openai.sse")) - wanted):
        stale.unlink()
        changed += 1
        print(f"removed {stale.name} (no such fixture)")
    print(f"{len(wanted)} golden files, {changed} changed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
