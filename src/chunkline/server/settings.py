"""The server's settings: one frozen dataclass, read from environment variables and command-line flags."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Final, final
from urllib.parse import urlsplit

from ..builtins.thinking import THINKING_MODES
from ..errors import ConfigError
from ..plugins import DISABLE_ENV
from ..stageflags import parse_add, parse_replace

__all__ = [
    "DEFAULT_OPENAI_UPSTREAM",
    "DEFAULT_REASONING_BUDGETS",
    "ENVIRONMENT",
    "Secret",
    "Settings",
    "SettingsError",
    "unparse",
]


# Thinking budgets (tokens) for OpenAI's reasoning_effort values. Anthropic's floor is 1024.
DEFAULT_REASONING_BUDGETS: Final = MappingProxyType(
    {"minimal": 1024, "low": 2048, "medium": 4096, "high": 8192, "xhigh": 16384, "max": 32768}
)
_MIN_BUDGET = 1024
# A client that takes longer than this to send its request headers or body holds a connection
# (a file descriptor) for nothing: the read deadlines may be shortened, never made longer.
_MAX_READ_TIMEOUT = 15.0
DEFAULT_UPSTREAM: Final = "https://api.anthropic.com"
#: The upstream of ``upstream_format="openai-chat"`` when none is given.
DEFAULT_OPENAI_UPSTREAM: Final = "https://api.openai.com/v1"


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


@final
@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``chunkline serve`` can be configured with. Build it with `from_env`;
    each field's environment variable is in `ENVIRONMENT`."""

    host: str = "127.0.0.1"
    port: int = 8080
    upstream: str = DEFAULT_UPSTREAM
    workers: int = 1
    #: Keys clients must send (``Authorization: Bearer``); empty: clients' keys pass through.
    api_keys: tuple[Secret, ...] = ()
    #: The key sent upstream when ``api_keys`` is set.
    anthropic_api_key: Secret | None = None
    default_max_tokens: int = 4096
    connect_timeout: float = 10.0
    #: From sending the request to the upstream's response headers.
    first_byte_timeout: float = 60.0
    #: The longest the upstream may stay silent mid-stream.
    idle_timeout: float = 300.0
    #: The longest one response may last, however busy the upstream keeps it.
    stream_timeout: float = 3600.0
    #: Model ids for ``GET /v1/models``; empty: ask the upstream.
    models: tuple[str, ...] = ()
    model_aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    reasoning_budgets: Mapping[str, int] = field(default_factory=lambda: DEFAULT_REASONING_BUDGETS)
    thinking: str = "reasoning_content"
    #: What a temperature above Claude's maximum of 1 does: ``reject`` (a 400) or ``clamp`` (to 1).
    temperature_above_1: str = "reject"
    #: What OpenAI's hosted tools (web search, file search, ...) in a Responses request do:
    #: ``drop`` (left out, with a warning header) or ``reject`` (a 400).
    hosted_tools: str = "drop"
    #: The largest request body. 16 MiB holds a 1M-token conversation's text (about 4 MiB) with
    #: two images at Anthropic's 5 MB limit each (6.7 MB apiece once base64-encoded).
    max_request_bytes: int = 16 * 1024 * 1024
    #: The most JSON values (counted as ``[``, ``{``, ``,`` and ``:`` bytes) a request body may
    #: hold; it bounds the memory and time of parsing it.
    max_request_values: int = 500_000
    #: The most upstream bytes a non-streaming answer is assembled from.
    max_response_bytes: int = 32 * 1024 * 1024
    upstream_max_connections: int = 1000
    #: Client connections open at once; more are answered 503 and closed.
    max_connections: int = 1000
    #: From a connection's (or a request's) first byte to the end of the request headers.
    header_timeout: float = 10.0
    #: From the end of the request headers to the end of its body.
    body_timeout: float = 15.0
    #: The longest a client may accept none of the response bytes waiting for it.
    write_timeout: float = 30.0
    shutdown_timeout: float = 30.0
    #: How long an idle client connection is kept open; longer than a load balancer's idle timeout
    #: (often 60 s), so the balancer never reuses a connection the server is closing.
    keep_alive_timeout: float = 75.0
    log_level: str = "info"
    access_log: bool = True
    #: The upstream's API: ``anthropic`` (serve OpenAI clients) or ``openai-chat`` (serve
    #: Anthropic clients from an OpenAI-compatible upstream; see docs/server.md).
    upstream_format: str = "anthropic"
    #: The key sent to an ``openai-chat`` upstream when ``api_keys`` is set.
    openai_api_key: Secret | None = None
    #: ``pattern=model`` pairs choosing upstream models for clients' model names (openai-chat).
    model_map: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: With openai-chat: seconds of upstream silence after which a stream gets a ping (0: never).
    ping_interval: float = 0.0
    #: With openai-chat: send ``thinking`` upstream as ``reasoning_effort`` (models that do not
    #: reason, such as gpt-4.1, refuse the field: turn it off for them).
    reasoning_effort: bool = True
    #: ``text`` or ``json``: the form of the access line each request writes when it ends.
    log_format: str = "text"
    #: ``GET /metrics`` (Prometheus text); False: no metrics are kept.
    metrics: bool = True
    #: Stage-list edits and options, as ``chunkline convert`` takes them (--add NAME[@STAGE], ...).
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    chunking: str | None = None
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: Plugins not to load (``--block``).
    block: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Values given in code meet the same rules as the environment's, and take the same form
        # (choices lower-cased, budgets merged with the defaults): each goes through its
        # variable's parser.
        for name, (variable, parse) in ENVIRONMENT.items():
            text = unparse(name, getattr(self, name))
            if text:
                try:
                    value = parse(text)
                except ValueError as exc:
                    raise SettingsError(f"Settings.{name} ({variable}) {exc}") from None
                object.__setattr__(self, name, value)  # frozen: this is its one assignment
        if self.upstream_format == "openai-chat":
            if self.upstream == DEFAULT_UPSTREAM:
                object.__setattr__(self, "upstream", DEFAULT_OPENAI_UPSTREAM)
            if self.api_keys and self.openai_api_key is None:
                raise SettingsError(
                    "CHUNKLINE_API_KEYS is set, so clients use the server's keys and the upstream key must "
                    "come from OPENAI_API_KEY (CHUNKLINE_UPSTREAM_FORMAT=openai-chat), which is not set"
                )
            return
        object.__setattr__(self, "upstream", _anthropic_base(self.upstream))
        if self.api_keys and self.anthropic_api_key is None:
            raise SettingsError(
                "CHUNKLINE_API_KEYS is set, so clients use the server's keys and the upstream key must "
                "come from ANTHROPIC_API_KEY, which is not set"
            )

    @property
    def upstream_api_key(self) -> Secret | None:
        """The server's own key for the upstream (used when ``api_keys`` is set)."""
        return self.openai_api_key if self.upstream_format == "openai-chat" else self.anthropic_api_key

    @property
    def auth_mode(self) -> str:
        """``keys`` (clients use the server's keys) or ``passthrough`` (clients' keys go upstream)."""
        return "keys" if self.api_keys else "passthrough"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        file: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Settings from environment variables (``os.environ`` by default); keyword arguments that
        are not ``None`` (command-line flags, already parsed) take precedence, and ``file`` (a
        configuration file's values, already parsed) comes last, before the defaults. A bad value
        raises `SettingsError` naming the variable."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = dict(file or {})
        for name, (variable, parse) in ENVIRONMENT.items():
            text = environ.get(variable)
            if text is None or not text.strip():
                continue  # unset, or set to nothing: the default
            try:
                values[name] = parse(text)
            except ValueError as exc:
                raise SettingsError(f"{variable} {exc}") from None
        values.update({name: value for name, value in overrides.items() if value is not None})
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(**values)

    def environment(self) -> dict[str, str]:
        """The environment variables that reproduce these settings (for worker processes, which
        build their own app from the environment). Holds the keys: never log it."""
        out: dict[str, str] = {}
        for name, (variable, _) in ENVIRONMENT.items():
            out[variable] = unparse(name, getattr(self, name))
        return out


def unparse(name: str, value: Any) -> str:
    """A field's value as its variable's text (keys revealed: never log it)."""
    if name == "options":
        return json.dumps(dict(value)) if value else ""
    return _unparse(value)


def _unparse(value: Any) -> str:
    if isinstance(value, Secret):
        return value.reveal()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(_unparse(item) for item in value)
    if isinstance(value, Mapping):
        return ",".join(f"{key}={item}" for key, item in value.items())
    return str(value)


#: Settings field -> (environment variable, parser). The parsers raise ValueError with a message
#: that completes "<VARIABLE> ...".
ENVIRONMENT: Final[Mapping[str, tuple[str, Callable[[str], Any]]]] = MappingProxyType(
    {
        "host": ("CHUNKLINE_HOST", str.strip),
        "port": ("CHUNKLINE_PORT", _port),
        "upstream": ("CHUNKLINE_UPSTREAM", _url),
        "workers": ("CHUNKLINE_WORKERS", _positive_int),
        "api_keys": ("CHUNKLINE_API_KEYS", _secrets),
        "anthropic_api_key": ("ANTHROPIC_API_KEY", _secret),
        "default_max_tokens": ("CHUNKLINE_DEFAULT_MAX_TOKENS", _positive_int),
        "connect_timeout": ("CHUNKLINE_CONNECT_TIMEOUT", _seconds),
        "first_byte_timeout": ("CHUNKLINE_FIRST_BYTE_TIMEOUT", _seconds),
        "idle_timeout": ("CHUNKLINE_IDLE_TIMEOUT", _seconds),
        "stream_timeout": ("CHUNKLINE_STREAM_TIMEOUT", _seconds),
        "models": ("CHUNKLINE_MODELS", _names),
        "model_aliases": ("CHUNKLINE_MODEL_ALIASES", _aliases),
        "reasoning_budgets": ("CHUNKLINE_REASONING_BUDGETS", _budgets),
        "thinking": ("CHUNKLINE_THINKING", _choice("reasoning_content", "reasoning", *THINKING_MODES)),
        "temperature_above_1": ("CHUNKLINE_TEMPERATURE_ABOVE_1", _choice("reject", "clamp")),
        "hosted_tools": ("CHUNKLINE_HOSTED_TOOLS", _choice("drop", "reject")),
        "max_request_bytes": ("CHUNKLINE_MAX_REQUEST_BYTES", _positive_int),
        "max_request_values": ("CHUNKLINE_MAX_REQUEST_VALUES", _positive_int),
        "max_response_bytes": ("CHUNKLINE_MAX_RESPONSE_BYTES", _positive_int),
        "upstream_max_connections": ("CHUNKLINE_UPSTREAM_MAX_CONNECTIONS", _positive_int),
        "max_connections": ("CHUNKLINE_MAX_CONNECTIONS", _positive_int),
        "header_timeout": ("CHUNKLINE_HEADER_TIMEOUT", _header_seconds),
        "body_timeout": ("CHUNKLINE_BODY_TIMEOUT", _header_seconds),
        "write_timeout": ("CHUNKLINE_WRITE_TIMEOUT", _seconds),
        "shutdown_timeout": ("CHUNKLINE_SHUTDOWN_TIMEOUT", _seconds),
        "keep_alive_timeout": ("CHUNKLINE_KEEP_ALIVE_TIMEOUT", _seconds),
        "log_level": ("CHUNKLINE_LOG_LEVEL", _choice("critical", "error", "warning", "info", "debug")),
        "access_log": ("CHUNKLINE_ACCESS_LOG", _boolean),
        "upstream_format": ("CHUNKLINE_UPSTREAM_FORMAT", _choice("anthropic", "openai-chat")),
        "openai_api_key": ("OPENAI_API_KEY", _secret),
        "model_map": ("CHUNKLINE_MODEL_MAP", _aliases),
        "ping_interval": ("CHUNKLINE_PING_INTERVAL", _interval),
        "reasoning_effort": ("CHUNKLINE_REASONING_EFFORT", _boolean),
        "log_format": ("CHUNKLINE_LOG_FORMAT", _choice("text", "json")),
        "metrics": ("CHUNKLINE_METRICS", _boolean),
        "add": ("CHUNKLINE_ADD", _entries(parse_add, "NAME or NAME@STAGE")),
        "remove": ("CHUNKLINE_REMOVE", _names),
        "replace": ("CHUNKLINE_REPLACE", _entries(parse_replace, "OLD=NEW")),
        "chunking": ("CHUNKLINE_CHUNKING", _optional),
        "options": ("CHUNKLINE_OPTIONS", _json_options),
        "block": (DISABLE_ENV, _names),
    }
)

#: Parsers for command-line flags, shared with the environment so both accept the same values.
PARSERS: Final = MappingProxyType({name: parse for name, (_, parse) in ENVIRONMENT.items()})
