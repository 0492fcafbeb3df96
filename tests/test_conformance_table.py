"""Docs test: docs/conformance.md has one row per conformance rule, citing tests that exist."""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
TABLE = ROOT / "docs" / "conformance.md"
RULES = ROOT / "docs" / "conformance-rules.md"
RULE_COUNT = 54

# One cited test: `tests/<path>.py::<function>` or `plugins/<plugin>/tests/<path>.py::<function>`,
# a function name only (no class, no parametrize id).
CITATION = re.compile(r"`((?:tests|plugins/[\w.-]+/tests)/(?:[\w.-]+/)*[\w.-]+\.py)::(test_\w+)`")


@dataclass(frozen=True)
class Row:
    rule: str
    level: str
    summary: str
    how: str
    tests: str


def cells(line: str) -> list[str]:
    assert line.startswith("|") and line.endswith("|"), line
    return [cell.strip() for cell in line[1:-1].split("|")]


@functools.cache
def rows() -> tuple[Row, ...]:
    found = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if re.match(r"\|\s*R\d", line):
            row = cells(line)
            assert len(row) == 5, f"a rule row needs 5 cells, not {len(row)}: {line[:80]}"
            found.append(Row(*row))
    return tuple(found)


@functools.cache
def spec_levels() -> dict[str, str]:
    """Each rule's level as the rules page states it, e.g. ``**R4 MUST NOT**``."""
    return dict(
        re.findall(r"\*\*(R\d+) ((?:MUST|SHOULD|MAY)(?: NOT)?)\*\*", RULES.read_text(encoding="utf-8"))
    )


@functools.cache
def defined_tests(path: str) -> frozenset[str]:
    """The top-level test functions ``path`` defines, with those marked xfail or skip left out:
    they show a rule broken or unchecked, not covered."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=path)
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            marks = " ".join(ast.unparse(d) for d in node.decorator_list)
            if not re.search(r"\bmark\.(xfail|skip)\b", marks):
                names.add(node.name)
    return frozenset(names)


def test_the_rules_page_has_r1_to_r54() -> None:
    assert list(spec_levels()) == [f"R{n}" for n in range(1, RULE_COUNT + 1)]


def test_one_row_per_rule_in_order() -> None:
    ids = [row.rule for row in rows()]
    duplicated = sorted({rule for rule in ids if ids.count(rule) > 1})
    assert not duplicated, f"rules with more than one row: {duplicated}"
    missing = [f"R{n}" for n in range(1, RULE_COUNT + 1) if f"R{n}" not in ids]
    assert not missing, f"rules without a row: {missing}"
    for position, (rule, wanted) in enumerate(
        zip(ids, [f"R{n}" for n in range(1, RULE_COUNT + 1)], strict=False)
    ):
        assert rule == wanted, f"row {position + 1} is {rule}, where {wanted} belongs: rows out of order"
    assert len(ids) == RULE_COUNT, f"rows for unknown rules: {ids[RULE_COUNT:]}"


def test_each_row_states_the_rules_level_and_says_something() -> None:
    levels = spec_levels()
    for row in rows():
        assert row.level == levels[row.rule], f"{row.rule} is {levels[row.rule]}, the table says {row.level}"
        assert row.summary and row.how, f"{row.rule}: the summary and how chunkline meets it are empty"


def test_each_row_cites_tests_one_per_line() -> None:
    for row in rows():
        for item in row.tests.split("<br>"):
            assert CITATION.fullmatch(item.strip()), (
                f"{row.rule}: {item.strip()!r} is not a test written as `tests/<file>.py::<test_function>`"
            )


def citations() -> list[tuple[str, str, str]]:
    return [(row.rule, *match) for row in rows() for match in CITATION.findall(row.tests)]


def test_the_table_cites_tests() -> None:
    assert len(citations()) >= 2 * RULE_COUNT
    assert len({(path, name) for _, path, name in citations()}) >= RULE_COUNT


@pytest.mark.parametrize(("rule", "path", "name"), citations(), ids=[f"{r}-{n}" for r, _, n in citations()])
def test_every_cited_test_exists(rule: str, path: str, name: str) -> None:
    assert (ROOT / path).is_file(), f"{rule} cites {path}, which does not exist"
    assert name in defined_tests(path), (
        f"{rule} cites {path}::{name}, which is not a top-level test function there (or is marked "
        "xfail or skip)"
    )
