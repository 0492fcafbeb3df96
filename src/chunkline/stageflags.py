"""The stage-list and option flags (--add, --remove, --replace, --option, --block) of convert and serve."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ConfigError
from .plugins import DISABLE_ENV
from .stagelist import StageList, default_stages

__all__ = [
    "OPTION_VALUE_HELP",
    "add_block_flag",
    "add_stage_flags",
    "edit_stages",
    "parse_add",
    "parse_option",
    "parse_options",
    "parse_replace",
]

#: How ``--option`` reads VALUE, for every command's help and the docs.
OPTION_VALUE_HELP = (
    "VALUE is read as JSON, or else as a string: 'n=3' is the number 3, 'n=\"3\"' the string \"3\" "
    "(quote a numeric-looking string, as in --option 'name=\"007\"')"
)


def add_stage_flags(group: Any) -> None:
    """Add --add, --remove, --replace and --option to an argparse parser or argument group."""
    group.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="NAME[@STAGE]",
        help="add a stage (an optional one such as a plugin's 'redact') at the place its plugin declared, "
        "or right after STAGE (repeatable)",
    )
    group.add_argument(
        "--remove", action="append", default=[], metavar="NAME", help="leave a stage out (repeatable)"
    )
    group.add_argument(
        "--replace",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="run stage NEW where stage OLD was (repeatable)",
    )
    group.add_argument(
        "--option",
        dest="extra",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"any stage option, such as a plugin's; {OPTION_VALUE_HELP} (repeatable)",
    )


def add_block_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--block",
        action="append",
        default=[],
        metavar="PLUGIN",
        help=f"do not load this plugin (as pytest's -p no:NAME; repeatable; {DISABLE_ENV} does the same)",
    )


def parse_option(entry: str, flag: str = "--option") -> tuple[str, Any]:
    """``NAME=VALUE`` as (name, value): VALUE read as JSON, or else kept as the string."""
    name, sep, text = entry.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ConfigError(f"{flag} takes NAME=VALUE, not {entry!r}")
    try:
        return name, json.loads(text)
    except json.JSONDecodeError:
        return name, text


def parse_options(entries: Iterable[str], flag: str = "--option") -> dict[str, Any]:
    """Several ``NAME=VALUE`` entries; a name given twice is an error."""
    options: dict[str, Any] = {}
    for entry in entries:
        name, value = parse_option(entry, flag)
        if name in options:
            raise ConfigError(f"option {name!r} is given twice")
        options[name] = value
    return options


def parse_add(entry: str, flag: str = "--add") -> tuple[str, str | None]:
    """``NAME`` or ``NAME@STAGE`` as (name, anchor or None)."""
    name, sep, anchor = (part.strip() for part in entry.partition("@"))
    if not name or (sep and not anchor):
        raise ConfigError(f"{flag} takes NAME or NAME@STAGE, not {entry!r}")
    return name, anchor if sep else None


def parse_replace(entry: str, flag: str = "--replace") -> tuple[str, str]:
    """``OLD=NEW`` as (old, new)."""
    old, sep, new = (part.strip() for part in entry.partition("="))
    if not sep or not old or not new:
        raise ConfigError(f"{flag} takes OLD=NEW, not {entry!r}")
    return old, new


def edit_stages(
    base: StageList | None = None,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    replace: Iterable[str] | Mapping[str, str] = (),
    block: Iterable[str] = (),
) -> StageList:
    """``base`` (default: the default stage list) with the removals, replacements (``OLD=NEW``
    entries or a mapping) and additions (``NAME`` or ``NAME@STAGE``) made, in that order."""
    stages = default_stages(block=block) if base is None else base
    stages = stages.remove(*remove)
    pairs = replace.items() if isinstance(replace, Mapping) else (parse_replace(e) for e in replace)
    for old, new in pairs:
        stages = stages.replace(old, new)
    for entry in add:
        name, anchor = parse_add(entry)
        stages = stages.add(name) if anchor is None else stages.insert_after(anchor, name)
    return stages
