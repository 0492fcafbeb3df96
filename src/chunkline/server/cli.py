"""``chunkline serve``: the subcommand that runs the server under uvicorn (imported lazily)."""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import socket
from typing import Any

from .settings import PARSERS, Settings, SettingsError

__all__ = ["add_serve_command", "run_server"]

_EXTRA_HINT = "pip install 'chunkline[server]'"

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
  CHUNKLINE_ACCESS_LOG            true (default) or false
  CHUNKLINE_UPSTREAM_FORMAT       anthropic (default) or openai-chat: serve Anthropic clients
                                  (POST /v1/messages) from an OpenAI-compatible upstream
  OPENAI_API_KEY                  the openai-chat upstream key (required with CHUNKLINE_API_KEYS)
  CHUNKLINE_MODEL_MAP             PATTERN=MODEL,... upstream models for clients' model names
                                  (openai-chat; * and ? wildcards; unmatched names pass through)
  CHUNKLINE_PING_INTERVAL         openai-chat: seconds of upstream silence before a ping (0: never)
  CHUNKLINE_REASONING_EFFORT      openai-chat: true (default) sends thinking as reasoning_effort;
                                  false for upstream models that refuse it (gpt-4.1)

Examples:
  chunkline serve
  CHUNKLINE_API_KEYS=sk-team-1 ANTHROPIC_API_KEY=sk-ant-... chunkline serve --host 0.0.0.0 --workers 4
  chunkline serve --upstream http://127.0.0.1:9000 --port 8081
  chunkline serve --upstream-format openai-chat --upstream http://127.0.0.1:8000/v1 \
      --model-map 'claude-*=qwen3-coder'     # Claude Code: ANTHROPIC_BASE_URL=http://127.0.0.1:8080

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
        "--upstream", metavar="URL", help="the Anthropic API base URL (default https://api.anthropic.com)"
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
    serve.set_defaults(run=run_server)


def _flag_settings(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in ("host", "port", "upstream", "workers", "log_level", "upstream_format", "model_map"):
        text = getattr(args, name)
        if text is None:
            continue
        try:
            values[name] = PARSERS[name](text)
        except ValueError as exc:
            raise SettingsError(f"--{name.replace('_', '-')} {exc}") from None
    return values


def run_server(args: argparse.Namespace) -> int:
    """Check the settings, then serve until interrupted. A missing ``server`` extra or a bad
    setting raises `SettingsError` (the CLI prints it and exits 2)."""
    try:
        import httpx  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise SettingsError(
            f"'chunkline serve' needs {exc.name or 'the server dependencies'}: {_EXTRA_HINT}"
        ) from None
    settings = Settings.from_env(**_flag_settings(args))
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        "log_config": _log_config(settings.log_level),
        "timeout_graceful_shutdown": max(1, round(settings.shutdown_timeout)),
        "timeout_keep_alive": max(1, round(settings.keep_alive_timeout)),
    }
    if settings.workers == 1:
        from .app import create_app
        from .protocol import guard

        server = uvicorn.Server(guard(uvicorn.Config(create_app(settings), **options), settings))
        # uvicorn re-raises the Ctrl-C it handled once it has shut down.
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        if not server.started:
            return 3  # what uvicorn.run exits with when the server could not start
    else:
        _run_workers(settings, options)
    return 0


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
    listener = config.bind_socket()
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    Multiprocess(config, sockets=[listener]).run()


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging set-up, with chunkline's server log going to the same place. uvicorn's
    access log holds the method, path and status; never a header, so never a key."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["chunkline"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config
