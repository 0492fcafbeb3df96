"""What ``chunkline routes`` prints: the formats, every route between them, and who provides each stage."""

from __future__ import annotations

import json
from typing import Any

from .errors import ChunklineError
from .pipeline import MIDDLE_STAGES, Pipeline

__all__ = ["format_rows", "print_routes", "route_rows"]


def format_rows(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Every format some plugin reads or writes, with its decoder and encoder (or None)."""
    registry = pipeline.registry
    rows = []
    for name in registry.formats:
        row: dict[str, Any] = {"name": name}
        for role, table in (("decoder", registry.decoders), ("encoder", registry.encoders)):
            registration = table.get(name)
            row[role] = (
                None
                if registration is None
                else {
                    "plugin": registration.plugin,
                    "stages": list(registration.spec.stages),
                    "description": registration.spec.description,
                }
            )
        encoder = registry.encoders.get(name)
        row["thinking_modes"] = list(encoder.spec.thinking_modes) if encoder else []
        rows.append(row)
    return rows


def route_rows(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Every source/target pair the installed plugins provide, with its default stage list: each
    stage's part of the route (decoder, middle, encoder, or plugin) and the plugin providing it.
    A route whose stage list cannot be built says why in ``error``."""
    registry = pipeline.registry
    rows = []
    for source in sorted(registry.decoders):
        decoder = registry.decoders[source].spec.stages
        for target in sorted(registry.encoders):
            encoder = registry.encoders[target].spec.stages
            row: dict[str, Any] = {"source": source, "target": target, "stages": [], "error": None}
            try:
                names = pipeline.default_stage_names(source, target)
            except ChunklineError as exc:
                row["error"] = str(exc)
                rows.append(row)
                continue
            for name in names:
                role = (
                    "decoder"
                    if name in decoder
                    else "encoder"
                    if name in encoder
                    else "middle"
                    if name in MIDDLE_STAGES
                    else "plugin"
                )
                plugin = registry.stages[name].plugin if name in registry.stages else None
                row["stages"].append({"name": name, "role": role, "plugin": plugin})
            missing = [n for n in (*decoder, *encoder) if n not in registry.stages]
            if missing:
                row["error"] = f"stages no plugin registers: {', '.join(missing)}"
            rows.append(row)
    return rows


def print_routes(pipeline: Pipeline, as_json: bool) -> None:
    formats, routes = format_rows(pipeline), route_rows(pipeline)
    if as_json:
        print(json.dumps({"formats": formats, "routes": routes}, indent=2, ensure_ascii=False))
        return
    out = ["Formats (read by a decoder: --from; written by an encoder: --to):"]
    width = max((len(row["name"]) for row in formats), default=0)
    for row in formats:
        roles = [
            f"{role} [{row[key]['plugin']}]"
            for role, key in (("from", "decoder"), ("to", "encoder"))
            if row[key] is not None
        ]
        out.append(f"  {row['name']:<{width}}  {', '.join(roles)}")
        description = (row["decoder"] or row["encoder"])["description"]
        if description:
            out.append(f"  {'':<{width}}  {description}")
    out.append("")
    out.append("Routes (--from SOURCE --to TARGET), with each stage's plugin:")
    for row in routes:
        out.append(f"  {row['source']} -> {row['target']}")
        if row["error"]:
            out.append(f"      cannot be built: {row['error']}")
        for stage in row["stages"]:
            out.append(f"      {stage['name']:<14} {stage['role']:<8} {stage['plugin']}")
    print("\n".join(out))
