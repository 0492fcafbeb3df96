"""The server's settings: one frozen dataclass, read from environment variables and command-line flags."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Final, final

from ..builtins.thinking import THINKING_MODES
from ..plugins import DISABLE_ENV
from ..stageflags import parse_add, parse_replace
from .setting_values import (
    DEFAULT_REASONING_BUDGETS,
    Secret,
    SettingsError,
    _aliases,
    _anthropic_base,
    _boolean,
    _budgets,
    _choice,
    _entries,
    _header_seconds,
    _interval,
    _json_options,
    _names,
    _optional,
    _port,
    _positive_int,
    _seconds,
    _secret,
    _secrets,
    _url,
)

__all__ = [
    "DEFAULT_OPENAI_UPSTREAM",
    "DEFAULT_REASONING_BUDGETS",
    "ENVIRONMENT",
    "Secret",
    "Settings",
    "SettingsError",
    "unparse",
]


DEFAULT_UPSTREAM: Final = "https://api.anthropic.com"
#: The upstream of ``upstream_format="openai-chat"`` when none is given.
DEFAULT_OPENAI_UPSTREAM: Final = "https://api.openai.com/v1"


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
    #: The event loop: ``uvloop`` (the ``server`` extra installs it: each held stream takes less
    #: memory), ``asyncio``, or ``auto`` (uvloop where it is installed, as uvicorn chooses).
    loop: str = "auto"
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
        "loop": ("CHUNKLINE_LOOP", _choice("auto", "asyncio", "uvloop")),
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
