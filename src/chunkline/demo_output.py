"""How ``make demo`` prints streams and fields, and serves a stream to an official SDK client."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from types import ModuleType
from typing import Any

__all__ = ["EDGE_EVENTS", "RULE", "WIDTH", "field", "mock_client", "print_events", "quote"]

EDGE_EVENTS = 3  # events shown from each end of a stream, unless --full
WIDTH = 100
RULE = "=" * WIDTH


def print_events(outputs: list[bytes], *, full: bool) -> None:
    """The stream as a client receives it, its middle left out unless ``full``."""
    if full or len(outputs) <= 2 * EDGE_EVENTS + 1:
        shown = [o.decode() for o in outputs]
    else:
        hidden = len(outputs) - 2 * EDGE_EVENTS
        head = [o.decode() for o in outputs[:EDGE_EVENTS]]
        tail = [o.decode() for o in outputs[-EDGE_EVENTS:]]
        shown = [*head, f"   [... {hidden} more events; --full shows them ...]\n\n", *tail]
    sys.stdout.write("".join(shown))


def mock_client(client_class: Any, outputs: list[bytes]) -> Any:
    """An SDK client (``openai.OpenAI``, ``anthropic.Anthropic``) whose every request is answered
    with ``outputs`` as an event stream, one event per body chunk as a live server sends them,
    with the SDK's strict response validation on."""
    http = _http_module(client_class)

    def respond(request: Any) -> Any:
        return http.Response(200, headers={"content-type": "text/event-stream"}, content=iter(outputs))

    return client_class(
        api_key="not-needed",
        base_url="http://chunkline.invalid/v1"
        if "openai" in client_class.__module__
        else "http://chunkline.invalid",
        http_client=http.Client(transport=http.MockTransport(respond)),
        max_retries=0,
        _strict_response_validation=True,
    )


def _http_module(client_class: Any) -> ModuleType:
    # SDK releases have been built on httpx and later on httpx2: mock the one this SDK takes.
    sdk = importlib.import_module(client_class.__module__.split(".")[0])
    for name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if issubclass(sdk.DefaultHttpxClient, module.Client):
            return module
    raise RuntimeError(f"cannot tell which HTTP library the installed {sdk.__name__} SDK uses")


def quote(text: str | None, limit: int = 400) -> str:
    """``text`` as a JSON string, cut at ``limit`` characters."""
    if text is None:
        return "None"
    shown = text if len(text) <= limit else text[:limit] + "..."
    return json.dumps(shown, ensure_ascii=False)


def field(name: str, value: Any) -> None:
    """One labelled value, wrapped under its label."""
    lines = textwrap.wrap(str(value), width=WIDTH - 20) or [""]
    print(f"  {name:<18}{lines[0]}")
    for line in lines[1:]:
        print(f"  {'':<18}{line}")
