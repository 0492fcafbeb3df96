"""``chunkline serve --config FILE``: the server's settings from a TOML file, checked as the variables are."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from .settings import ENVIRONMENT, Settings, SettingsError

__all__ = ["CONFIG_ENV", "load_config", "settings_from"]

#: The variable that names a configuration file when ``--config`` is not given.
CONFIG_ENV: Final = "CHUNKLINE_CONFIG"


def settings_from(
    config: str | None = None, environ: Mapping[str, str] | None = None, **flags: Any
) -> Settings:
    """The settings from flags (keyword arguments not None), over the environment, over the
    configuration file (``config``, else the one `CONFIG_ENV` names), over the defaults."""
    environ = os.environ if environ is None else environ
    path = config or environ.get(CONFIG_ENV, "").strip()
    file = load_config(path) if path else None
    return Settings.from_env(environ, file=file, **flags)


def load_config(path: str | Path) -> dict[str, Any]:
    """The settings a TOML file gives, by field name (``port = 8081``, ``add = ["redact"]``,
    ``[options]`` ...), each checked by its variable's parser. An unreadable file, a TOML syntax
    error, an unknown key or a bad value raises `SettingsError` naming the file and the key."""
    try:
        with open(path, "rb") as file:
            table = tomllib.load(file)
    except OSError as exc:
        reason = exc.strerror or exc
        raise SettingsError(f"cannot read the configuration file {str(path)!r}: {reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in ENVIRONMENT:
            known = ", ".join(sorted(ENVIRONMENT))
            raise SettingsError(f"{path}: unknown key {key!r}; the keys are: {known}")
        variable, parse = ENVIRONMENT[key]
        try:
            text = _as_text(key, value)
            values[key] = parse(text) if text.strip() else None
        except ValueError as exc:
            raise SettingsError(f"{path}: {key} (as {variable}) {exc}") from None
    return {key: value for key, value in values.items() if value is not None}


def _as_text(key: str, value: Any) -> str:
    """A TOML value in its variable's text form, so the file meets the same rules."""
    if key == "options":
        if not isinstance(value, Mapping):
            raise ValueError(f"must be a table of option names and values, not {value!r}")
        return json.dumps(dict(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    if isinstance(value, Mapping) and all(isinstance(item, str | int) for item in value.values()):
        return ",".join(f"{name}={item}" for name, item in value.items())
    # The value is not quoted: it may be a key.
    raise ValueError("must be a string, a number, true or false, a list of strings or a table")
