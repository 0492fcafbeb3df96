"""``chunkline serve``: the subcommand that runs the server under uvicorn (imported lazily)."""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import os
import socket
from typing import Any

from ..errors import ConfigError
from ..stageflags import add_block_flag, add_stage_flags, parse_add, parse_options, parse_replace
from .config import CONFIG_ENV, settings_from
from .settings import PARSERS, Secret, Settings, SettingsError

__all__ = ["EXTRA_HINT", "add_serve_command", "run_server"]

#: How to get the server's dependencies; chunkline is not on the package index yet.
EXTRA_HINT = (
    "install the server extra: pip install -e '.[server]' in a clone of chunkline, "
    "or pip install 'dist/chunkline-*.whl[server]' from a built wheel (make dist)"
)

_ENV_HELP = """\
Settings also come from environment variables (a flag wins over its variable):
  CHUNKLINE_HOST, CHUNKLINE_PORT, CHUNKLINE_UPSTREAM, CHUNKLINE_WORKERS, CHUNKLINE_LOG_LEVEL
  CHUNKLINE_API_KEYS          comma-separated keys clients must send as 'Authorization: Bearer KEY';
                              then ANTHROPIC_API_KEY is the key sent upstream. Unset: each
                              client's own key is passed through to the upstream.
  ANTHROPIC_API_KEY           the upstream key (required with CHUNKLINE_API_KEYS)
  CHUNKLINE_DEFAULT_MAX_TOKENS    max_tokens when a request has none (4096)
  CHUNKLINE_CONNECT_TIMEOUT       seconds to connect to the upstream (10)
  CHUNKLINE_FIRST_BYTE_TIMEOUT    seconds to wait for the upstream's response headers (60)
  CHUNKLINE_IDLE_TIMEOUT          seconds the upstream may go silent mid-stream (300)
  CHUNKLINE_STREAM_TIMEOUT        seconds one response may last in all (3600)
  CHUNKLINE_MODELS                model ids for GET /v1/models (default: the upstream's list)
  CHUNKLINE_MODEL_ALIASES         NAME=MODEL,... names clients may use for upstream models
  CHUNKLINE_REASONING_BUDGETS     EFFORT=TOKENS,... thinking budgets per reasoning_effort
  CHUNKLINE_THINKING              reasoning_content (default), reasoning, tags or drop
  CHUNKLINE_TEMPERATURE_ABOVE_1   reject (default: a 400) or clamp (to 1)
  CHUNKLINE_HOSTED_TOOLS          drop (default: left out, with a warning) or reject (a 400): OpenAI's
                                  hosted tools in a Responses request
  CHUNKLINE_MAX_REQUEST_BYTES     the largest request body (16777216)
  CHUNKLINE_MAX_REQUEST_VALUES    the most JSON values a request body may hold (500000)
  CHUNKLINE_MAX_RESPONSE_BYTES    upstream bytes a non-streaming answer may take (33554432)
  CHUNKLINE_UPSTREAM_MAX_CONNECTIONS   upstream connections open at once (1000)
  CHUNKLINE_MAX_CONNECTIONS       client connections open at once; more get a 503 (1000)
  CHUNKLINE_HEADER_TIMEOUT        seconds a client has to send a request's headers (10, at most 15)
  CHUNKLINE_BODY_TIMEOUT          seconds a client has to send a request's body (15, at most 15)
  CHUNKLINE_WRITE_TIMEOUT         seconds a client may take none of the answer before it is cut off (30)
  CHUNKLINE_SHUTDOWN_TIMEOUT      seconds open streams get to finish on shutdown (30)
  CHUNKLINE_KEEP_ALIVE_TIMEOUT    seconds an idle client connection stays open (75)
  CHUNKLINE_ACCESS_LOG            true (default) or false: one access line per request
  CHUNKLINE_UPSTREAM_FORMAT       anthropic (default) or openai-chat: serve Anthropic clients
                                  (POST /v1/messages) from an OpenAI-compatible upstream
  OPENAI_API_KEY                  the openai-chat upstream key (required with CHUNKLINE_API_KEYS)
  CHUNKLINE_MODEL_MAP             PATTERN=MODEL,... upstream models for clients' model names
                                  (openai-chat; * and ? wildcards; unmatched names pass through)
  CHUNKLINE_PING_INTERVAL         openai-chat: seconds of upstream silence before a ping (0: never)
  CHUNKLINE_REASONING_EFFORT      openai-chat: true (default) sends thinking as reasoning_effort;
                                  false for upstream models that refuse it (gpt-4.1)
  CHUNKLINE_LOG_FORMAT            text (default) or json
  CHUNKLINE_LOOP                  auto (default: uvloop where installed), asyncio or uvloop
  CHUNKLINE_METRICS               true (default) or false: GET /metrics (Prometheus text)
  CHUNKLINE_ADD, CHUNKLINE_REMOVE, CHUNKLINE_REPLACE   stage-list edits, comma-separated
  CHUNKLINE_CHUNKING              the chunking policy (as --chunking)
  CHUNKLINE_OPTIONS               stage options as a JSON object, e.g. {"redact_replacement": "***"}
  CHUNKLINE_DISABLE_PLUGINS       plugins not to load (as --block)
  CHUNKLINE_CONFIG                a TOML configuration file (as --config)

Precedence: a flag, then its variable, then the --config file, then the default.

Examples:
  chunkline serve
  CHUNKLINE_API_KEYS=sk-team-1 ANTHROPIC_API_KEY=sk-ant-... chunkline serve --host 0.0.0.0 --workers 4
  chunkline serve --upstream http://127.0.0.1:9000 --port 8081
  chunkline serve --upstream-format openai-chat --upstream http://127.0.0.1:8000/v1 \
      --model-map 'claude-*=qwen3-coder'     # Claude Code: ANTHROPIC_BASE_URL=http://127.0.0.1:8080
  chunkline serve --add redact --chunking markdown    # needs the example plugins installed
  chunkline serve --config chunkline.toml --print-config

Clients point the openai SDK at it: OpenAI(base_url="http://127.0.0.1:8080/v1", api_key=KEY).
"""


def add_serve_command(commands: Any) -> None:
    """Register ``serve`` on the CLI's subcommand parsers."""
    serve = commands.add_parser(
        "serve",
        help="run an OpenAI-compatible server in front of the Anthropic Messages API",
        description="Serve POST /v1/chat/completions (streaming and not), GET /v1/models and GET /healthz, "
        "translating each request for the Anthropic Messages API and each answer back through the "
        "conversion pipeline.",
        epilog=_ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", metavar="HOST", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", metavar="PORT", help="port to listen on (default 8080)")
    serve.add_argument(
        "--upstream",
        metavar="URL",
        help="the upstream API's base URL (default https://api.anthropic.com; "
        "with --upstream-format openai-chat, https://api.openai.com/v1)",
    )
    serve.add_argument("--workers", metavar="N", help="worker processes (default 1)")
    serve.add_argument(
        "--upstream-format",
        dest="upstream_format",
        metavar="FORMAT",
        help="the upstream's API: anthropic (default) or openai-chat (serve the Anthropic Messages API "
        "from an OpenAI-compatible upstream whose URL ends in /v1)",
    )
    serve.add_argument(
        "--model-map",
        dest="model_map",
        metavar="MAP",
        help="with openai-chat: PATTERN=MODEL,... e.g. 'claude-*=gpt-4.1,claude-3-5-haiku*=gpt-4.1-mini'",
    )
    serve.add_argument(
        "--log-level", dest="log_level", metavar="LEVEL", help="critical, error, warning, info, debug"
    )
    serve.add_argument("--log-format", dest="log_format", metavar="text|json", help="the log lines' form")
    serve.add_argument(
        "--loop", metavar="LOOP", help="the event loop: auto (uvloop if installed; default), asyncio, uvloop"
    )
    serve.add_argument(
        "--shutdown-timeout",
        dest="shutdown_timeout",
        metavar="SECONDS",
        help="on SIGTERM, how long open answers get to finish before they end in-band (default 30)",
    )
    serve.add_argument(
        "--no-metrics", dest="metrics", action="store_const", const="false", help="serve no GET /metrics"
    )
    serve.add_argument(
        "--config", metavar="FILE", help=f"read settings from a TOML file ({CONFIG_ENV} does the same)"
    )
    serve.add_argument(
        "--print-config",
        dest="print_config",
        action="store_true",
        help="print the effective settings, stage list and options as JSON, and exit",
    )
    pipeline = serve.add_argument_group("the answers' pipeline (as 'chunkline convert' takes it)")
    pipeline.add_argument(
        "--thinking", metavar="MODE", help="reasoning_content (default), reasoning, native, tags or drop"
    )
    pipeline.add_argument(
        "--chunking",
        metavar="POLICY",
        help="passthrough (default), words:N, chars:N, sentences, or a plugin's",
    )
    add_stage_flags(pipeline)
    add_block_flag(serve)
    serve.set_defaults(run=run_server)


# Flags that set the setting of the same name from text, through its variable's parser.
_TEXT_FLAGS = (
    "host",
    "port",
    "upstream",
    "workers",
    "log_level",
    "log_format",
    "loop",
    "shutdown_timeout",
    "metrics",
    "thinking",
    "chunking",
    "upstream_format",
    "model_map",
)


def _flag_settings(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in _TEXT_FLAGS:
        text = getattr(args, name)
        if text is None:
            continue
        try:
            values[name] = PARSERS[name](text)
        except ValueError as exc:
            raise SettingsError(f"--{name.replace('_', '-')} {exc}") from None
    # The stage-list flags are checked by the same parsers as convert's.
    for entry in args.add:
        parse_add(entry)
    for entry in args.replace:
        parse_replace(entry)
    lists = {"add": args.add, "remove": args.remove, "replace": args.replace, "block": args.block}
    values.update({name: tuple(entries) for name, entries in lists.items() if entries})
    if args.extra:
        values["options"] = parse_options(args.extra)
    return values


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return settings_from(args.config, **_flag_settings(args))
    except SettingsError:
        raise
    except ConfigError as exc:  # a flag's syntax, as convert reports it
        raise SettingsError(str(exc)) from None


def _print_config(settings: Settings) -> None:
    from .pipelines import ServerPipelines

    shown = {}
    for name in settings.__dataclass_fields__:
        value = getattr(settings, name)
        if isinstance(value, Secret) or (isinstance(value, tuple) and value and isinstance(value[0], Secret)):
            value = "********"
        shown[name] = dict(value) if hasattr(value, "items") else value
    print(json.dumps({"settings": shown, **ServerPipelines(settings).describe()}, indent=2, default=str))


def run_server(args: argparse.Namespace) -> int:
    """Check the settings, then serve until interrupted. A missing ``server`` extra or a bad
    setting raises `SettingsError` (the CLI prints it and exits 2)."""
    try:
        import httpx  # noqa: F401
        import prometheus_client  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise SettingsError(
            f"'chunkline serve' needs {exc.name or 'the server dependencies'}: {EXTRA_HINT}"
        ) from None
    settings = _settings(args)
    if args.print_config:
        _print_config(settings)
        return 0
    from .http1_proxy import Proxy
    from .shutdown import UVICORN_MARGIN

    try:
        Proxy.for_url(settings.upstream)  # a proxy of a kind the server cannot use: one line, exit 2
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    if settings.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise SettingsError(f"the uvloop event loop (--loop, CHUNKLINE_LOOP) is not installed: {EXTRA_HINT}")

    options: dict[str, Any] = {
        "log_level": settings.log_level,
        # chunkline writes its own access line per request (accesslog.py), with more in it.
        "access_log": False,
        "log_config": _log_config(settings.log_level, settings.log_format),
        "timeout_graceful_shutdown": max(1, round(settings.shutdown_timeout + UVICORN_MARGIN)),
        "timeout_keep_alive": max(1, round(settings.keep_alive_timeout)),
        "loop": settings.loop,
    }
    if settings.workers == 1:
        from .app import create_app
        from .protocol import guard

        app = create_app(settings)  # a broken plugin or option fails here, before the port is taken
        listener = _listen(settings.host, settings.port)
        server = uvicorn.Server(guard(uvicorn.Config(app, **options), settings))
        # uvicorn raises a SIGINT again once it has shut down; end quietly, as uvicorn.run does.
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[listener])
        if not server.started:
            return 3  # as uvicorn: the app failed to start (its log says why)
    else:
        _run_workers(settings, options)
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a port in use is one line and exit 2. TCP_NODELAY
    is set on it (accepted sockets inherit it); see `_run_workers` for why."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise SettingsError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.set_inheritable(True)
    return listener


def _run_workers(settings: Settings, options: dict[str, Any]) -> None:
    """What ``uvicorn.run(..., workers=N)`` does, plus TCP_NODELAY on the shared socket.

    uvicorn binds the socket its workers share without naming the protocol, and asyncio turns
    Nagle's algorithm off only on sockets that say TCP: each stream's second write (its first
    event) then waited for the client's delayed ACK, 40 ms on Linux. Accepted sockets inherit
    TCP_NODELAY from the listening one, so it is set there.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from .app import create_app
    from .protocol import guard

    create_app(settings)  # a broken plugin or option fails here, once, not in every worker
    # Each worker process builds its own app from the environment: hand it these settings there.
    os.environ.update(settings.environment())
    config = uvicorn.Config(
        "chunkline.server.app:app_from_env", factory=True, workers=settings.workers, **options
    )
    guard(config, settings)
    listener = _listen(settings.host, settings.port)
    Multiprocess(config, sockets=[listener]).run()


def _log_config(level: str, form: str = "text") -> dict[str, Any]:
    """uvicorn's logging set-up, with chunkline's server log going to the same place (stderr) and
    the access lines to stdout; with ``form="json"`` every line is a JSON object."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["chunkline"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    config["loggers"]["chunkline.access"] = {"handlers": ["access"], "level": "INFO", "propagate": False}
    config["formatters"]["access"] = {"format": "%(asctime)s %(message)s"}
    if form == "json":
        json_formatter = {"()": "chunkline.server.accesslog.JsonFormatter"}
        config["formatters"]["default"] = config["formatters"]["access"] = json_formatter
    return config
