"""What ``chunkline stages`` and ``chunkline plugins`` print: registered stages, policies and plugins."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from typing import Any

from .pipeline import Pipeline

__all__ = ["plugin_rows", "policy_rows", "print_plugins", "print_stages", "stage_rows"]


def stage_rows(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Every registered stage: the default list first, in order, then the others by name."""
    default = pipeline.default_stage_names()
    registry = pipeline.registry.stages
    versions = {info.name: info.version for info in pipeline.plugins}
    order = default + sorted(name for name in registry if name not in default)
    rows = []
    for name in order:
        registration = registry[name]
        spec = registration.spec
        rows.append(
            {
                "name": name,
                "plugin": registration.plugin,
                "version": versions.get(registration.plugin),
                "replaced": registration.replaced,
                "default": name in default,
                "optional": spec.optional,
                "after": spec.after,
                "description": spec.description,
                "options": [
                    {"name": o.name, "default": o.default, "allowed": o.allowed, "help": o.help}
                    for o in spec.options
                ],
            }
        )
    return rows


def policy_rows(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Every registered chunking policy, in registration order."""
    versions = {info.name: info.version for info in pipeline.plugins}
    return [
        {
            "name": name,
            "plugin": registration.plugin,
            "version": versions.get(registration.plugin),
            "replaced": registration.replaced,
            "description": registration.spec.description,
        }
        for name, registration in pipeline.registry.policies.items()
    ]


def plugin_rows(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Every loaded plugin with its source, version and what it registers."""
    return [
        {
            "name": info.name,
            "source": info.source,
            "version": info.version,
            "stages": list(info.stages),
            "policies": list(info.policies),
        }
        for info in pipeline.plugins
    ]


def print_stages(pipeline: Pipeline, as_json: bool) -> None:
    stages, policies = stage_rows(pipeline), policy_rows(pipeline)
    if as_json:
        _print_json({"stages": stages, "chunking_policies": policies})
        return
    out = [
        "Stages (* = in the default stage list, which runs in this order; "
        "+ = optional, switched on with --add NAME):"
    ]
    for row in stages:
        mark = "*" if row["default"] else "+" if row["optional"] and row["after"] else " "
        place = f", runs after {row['after']}" if not row["default"] and row["after"] else ""
        out.append(f"{mark} {row['name']}  [{_provider(row)}{place}]")
        out.extend(_wrap(row["description"], "      "))
        for option in row["options"]:
            line = f"{option['name']} = {_show(option['default'])}  ({option['allowed'] or 'any value'})"
            out.extend(_wrap(line, "      ", "          "))
            out.extend(_wrap(option["help"], "          "))
    out.append("")
    out.append("Chunking policies (--chunking NAME or NAME:ARG):")
    width = max((len(row["name"]) for row in policies), default=0)
    for row in policies:
        out.append(f"  {row['name']:<{width}}  [{_provider(row)}]  {row['description']}")
    print("\n".join(out))


def print_plugins(pipeline: Pipeline, as_json: bool) -> None:
    rows = plugin_rows(pipeline)
    if as_json:
        _print_json(rows)
        return
    table = [("NAME", "VERSION", "SOURCE", "REGISTERS")]
    table += [(r["name"], r["version"] or "-", r["source"], _registers(r)) for r in rows]
    widths = [max(len(row[column]) for row in table) for column in range(3)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[3]]).rstrip())


def _registers(row: Mapping[str, Any]) -> str:
    parts = []
    for singular, plural, names in (
        ("stage", "stages", row["stages"]),
        ("policy", "policies", row["policies"]),
    ):
        if names:
            parts.append(f"{singular if len(names) == 1 else plural} {', '.join(names)}")
    return "; ".join(parts) or "nothing"


def _provider(row: Mapping[str, Any]) -> str:
    plugin = f"{row['plugin']} {row['version']}" if row["version"] else str(row["plugin"])
    replaced = row["replaced"]
    return f"{plugin}, replacing {replaced}'s" if replaced else plugin


def _wrap(text: str, indent: str, more: str | None = None) -> list[str]:
    more = indent if more is None else more
    return textwrap.wrap(text, width=100, initial_indent=indent, subsequent_indent=more) if text else []


def _show(value: Any) -> str:
    return json.dumps(_jsonable(value)) if isinstance(value, Mapping) else repr(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def _print_json(value: Any) -> None:
    print(json.dumps(_jsonable(value), indent=2, ensure_ascii=False))
