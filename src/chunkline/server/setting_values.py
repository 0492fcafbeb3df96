"""The values of the server's settings: the key type, and one parser per kind of value that reads a
variable's text (or a flag's, or a config file's) and says what is wrong with it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, final
from urllib.parse import urlsplit

from ..errors import ConfigError

# The parsers (_port, _url, ...) stay private to the server package: settings.py's ENVIRONMENT table
# names one per setting, and nothing else should call them.
__all__ = ["DEFAULT_REASONING_BUDGETS", "Secret", "SettingsError"]

# Thinking budgets (tokens) for OpenAI's reasoning_effort values. Anthropic's floor is 1024.
DEFAULT_REASONING_BUDGETS: Final = MappingProxyType(
    {"minimal": 1024, "low": 2048, "medium": 4096, "high": 8192, "xhigh": 16384, "max": 32768}
)
_MIN_BUDGET = 1024
# A client that takes longer than this to send its request headers or body holds a connection
# (a file descriptor) for nothing: the read deadlines may be shortened, never made longer.
_MAX_READ_TIMEOUT = 15.0


class SettingsError(ConfigError):
    """A setting has a value the server cannot run with; the message names the variable or flag."""


@final
class Secret:
    """A key that must never be printed: its repr and str hide it. ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _port(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 65535:
        raise ValueError(f"must be a port number from 0 to 65535, not {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"must be a whole number, not {text!r}") from None


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise ValueError(f"must be a whole number of at least 1, not {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"must be a number of seconds, not {text!r}") from None
    if not 0 < value < float("inf"):
        raise ValueError(f"must be a number of seconds above 0, not {text!r}")
    return value


def _interval(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"must be a number of seconds (0 for never), not {text!r}") from None
    if not 0 <= value < float("inf"):
        raise ValueError(f"must be a number of seconds from 0 (never), not {text!r}")
    return value


def _url(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http:// or https:// URL, not {text!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"must be a base URL without a query or fragment, not {text!r}")
    base = text.strip().rstrip("/")
    if base.endswith(("/messages", "/chat/completions", "/responses")):
        raise ValueError(
            "must be the API's base URL (such as https://api.anthropic.com or "
            f"https://api.openai.com/v1), not an endpoint: {text!r}"
        )
    return base


def _anthropic_base(base: str) -> str:
    # The server adds /v1/messages itself: a base URL copied from an SDK (".../v1") would
    # otherwise be asked for /v1/v1/messages. OpenAI-compatible bases keep their /v1, since
    # their endpoints (".../v1/chat/completions") hang below it.
    return base[: -len("/v1")] if base.endswith("/v1") else base


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _secrets(text: str) -> tuple[Secret, ...]:
    return tuple(_secret(key) for key in _names(text))


def _secret(text: str) -> Secret:
    # A key travels in an HTTP header, which holds ASCII only: any other character would fail
    # every request (and the encoding error would quote the key). The message never shows it.
    key = text.strip()
    if not all("!" <= char <= "~" for char in key):
        raise ValueError(
            "must be printable ASCII without spaces (an HTTP header cannot carry anything else); "
            "the value is not shown"
        )
    return Secret(key)


def _header_seconds(text: str) -> float:
    value = _seconds(text)
    if value > _MAX_READ_TIMEOUT:
        raise ValueError(f"must be at most {_MAX_READ_TIMEOUT:g} seconds, not {text!r}")
    return value


def _pairs(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for entry in _names(text):
        name, sep, value = entry.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"must be NAME=VALUE pairs separated by commas; {entry!r} is not one")
        pairs[name.strip()] = value.strip()
    return pairs


def _aliases(text: str) -> Mapping[str, str]:
    return MappingProxyType(_pairs(text))


def _budgets(text: str) -> Mapping[str, int]:
    budgets = dict(DEFAULT_REASONING_BUDGETS)
    for effort, value in _pairs(text).items():
        if effort not in budgets:
            raise ValueError(f"names an unknown reasoning_effort {effort!r}; known: {', '.join(budgets)}")
        tokens = _int(value)
        if tokens < _MIN_BUDGET:
            raise ValueError(f"gives {effort!r} {tokens} tokens; Anthropic's minimum budget is {_MIN_BUDGET}")
        budgets[effort] = tokens
    return MappingProxyType(budgets)


def _entries(parse: Callable[[str], Any], form: str) -> Callable[[str], tuple[str, ...]]:
    """Comma-separated entries, each checked with the --flag's own parser."""

    def entries(text: str) -> tuple[str, ...]:
        names = _names(text)
        for entry in names:
            try:
                parse(entry)
            except ConfigError:
                raise ValueError(
                    f"must be {form} entries separated by commas; {entry!r} is not one"
                ) from None
        return names

    return entries


def _optional(text: str) -> str | None:
    return text.strip() or None


def _json_options(text: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise ValueError(
            f'must be a JSON object of option names and values, such as {{"n": 3}}, not {text!r}'
        )
    return MappingProxyType(value)


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {text!r}")
        return value

    return parse


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false, not {text!r}")
