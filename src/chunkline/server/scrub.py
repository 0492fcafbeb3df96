"""What the upstream says, made fit to pass on: keys redacted by value, headers through an allow-list."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

from ..events import ErrorEvent, Finish, ResponseStart, ToolCallStart
from ..stage import Option, Options, Stage, StageSpec
from .errors import REDACTED

__all__ = ["REDACT_STAGE", "UPSTREAM_REQUEST_ID", "RedactStage", "passed_headers", "redact_value"]

#: The per-conversion option that names the keys to redact from the stream's events.
SECRETS_OPTION = "redact_secrets"

# Upstream response headers a client gets, under the name it gets them by, and the shape each
# value must have: the upstream's request id (as anthropic-request-id: x-request-id is chunkline's
# own, see accesslog.py) and, on errors, when to retry. Anything else the upstream sends stays
# with the server.
_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_SECONDS = re.compile(r"[0-9]{1,9}")
_HTTP_DATE = re.compile(r"[A-Za-z0-9 ,:]{1,40}")


def _is_retry_after(value: str) -> bool:
    if _SECONDS.fullmatch(value):
        return True
    if not _HTTP_DATE.fullmatch(value):
        return False
    try:
        parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return True


def _is_request_id(value: str) -> bool:
    return _REQUEST_ID.fullmatch(value) is not None


#: The header that carries the upstream's own request id to the client (``x-request-id`` is
#: chunkline's id of the request, which the upstream is sent too).
UPSTREAM_REQUEST_ID = "anthropic-request-id"
_PASSED_HEADERS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "request-id": (UPSTREAM_REQUEST_ID, _is_request_id),
    "retry-after": ("retry-after", _is_retry_after),
}


def passed_headers(headers: Mapping[str, str], secrets: Sequence[str]) -> dict[str, str]:
    """The upstream response headers the client gets too: only those of the allow-list, each only
    when its value has the shape that header has (so never a key, a control character or
    anything a header cannot carry), and never one holding a key."""
    passed: dict[str, str] = {}
    for theirs, (ours, valid) in _PASSED_HEADERS.items():
        value = headers.get(theirs)
        if value is None:
            continue
        value = value.strip()
        if valid(value) and not any(secret and secret in value for secret in secrets):
            passed[ours] = value
    return passed


def redact_value(value: Any, secrets: Sequence[str]) -> Any:
    """``value`` with each secret replaced by ``[redacted]`` in every string it holds (nested in
    dicts, lists, tuples and dataclass events, keys included); anything else is left as it is.
    It works on values before they are serialized, so a key such as ``e`` or ``{`` changes its
    own occurrences and nothing else. Iterative, so no nesting depth can make it recurse."""
    secrets = [secret for secret in secrets if secret]
    if not secrets:
        return value
    return _Redactor(secrets).run(value)


class _Redactor:
    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets

    def text(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def run(self, value: Any) -> Any:
        # Containers are rebuilt bottom-up from an explicit stack: (container, its items left,
        # the finished items, where the result goes).
        result: list[Any] = [None]
        stack: list[tuple[Any, list[Any], list[Any], list[Any], int]] = []
        self._visit(value, result, 0, stack)
        while stack:
            container, todo, done, target, slot = stack[-1]
            if todo:
                done.append(None)
                self._visit(todo.pop(), done, len(done) - 1, stack)
                continue
            stack.pop()
            target[slot] = self._rebuild(container, done)
        return result[0]

    def _visit(self, value: Any, target: list[Any], slot: int, stack: list[Any]) -> None:
        if isinstance(value, str):
            target[slot] = self.text(value)
        elif isinstance(value, dict):
            items = [item for pair in value.items() for item in pair]
            stack.append((value, items[::-1], [], target, slot))
        elif isinstance(value, list | tuple):
            stack.append((value, list(value)[::-1], [], target, slot))
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = [getattr(value, name) for name in _field_names(value)]
            stack.append((value, fields[::-1], [], target, slot))
        else:
            target[slot] = value

    @staticmethod
    def _rebuild(container: Any, done: list[Any]) -> Any:
        if isinstance(container, dict):
            return dict(zip(done[::2], done[1::2], strict=True))
        if isinstance(container, list):
            return done
        if isinstance(container, tuple):
            return tuple(done)
        names = _field_names(container)
        changes = {n: v for n, v in zip(names, done, strict=True) if v is not getattr(container, n)}
        return dataclasses.replace(container, **changes) if changes else container


class RedactStage(Stage):
    """Replaces the request's key in the events that carry upstream text other than the answer
    (an error's message and code; the response's id and model; a tool call's id and name; the
    upstream's stop reason), before any of them is serialized. They come once per response (or
    per call); the answer's text is the model's, which never saw the key, and is not touched."""

    __slots__ = ("_secrets",)

    handles = (ErrorEvent, ResponseStart, ToolCallStart, Finish)

    def __init__(self, options: Options) -> None:
        self._secrets: tuple[str, ...] = tuple(s for s in options.get(SECRETS_OPTION, ()) if s)

    def feed(self, item: Any) -> None:
        if item.__class__ is ErrorEvent:
            # The type is chunkline's own word for the fault, never the upstream's: it stays.
            message, code = redact_value((item.message, item.code), self._secrets)
            self.emit(ErrorEvent(item.type, message, code))
        elif _quotes(item, self._secrets):
            self.emit(redact_value(item, self._secrets))
        else:
            # Almost always: looking costs a fifth of rebuilding, on every response's first event.
            self.emit(item)


#: The field names of each dataclass seen (event classes: a few, fixed by the code).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_PLAIN = frozenset({int, float, bool, type(None)})


def _field_names(event: Any) -> tuple[str, ...]:
    """The field names of the dataclass ``event``'s class, asked of `dataclasses.fields` once."""
    names = _FIELD_NAMES.get(event.__class__)
    if names is None:
        names = _FIELD_NAMES[event.__class__] = tuple(f.name for f in dataclasses.fields(event))
    return names


def _quotes(event: Any, secrets: tuple[str, ...]) -> bool:
    """Whether a string of the dataclass ``event`` (or of an event in one of its fields) may hold
    one of ``secrets``: a field of any other kind counts as one that may."""
    for name in _field_names(event):
        value = getattr(event, name)
        kind = value.__class__
        if kind is str:
            if any(secret in value for secret in secrets):
                return True
        elif kind in _PLAIN:
            continue
        elif not dataclasses.is_dataclass(value) or isinstance(value, type) or _quotes(value, secrets):
            return True
    return False


def _check_secrets(value: Any, registry: Any) -> tuple[str, ...]:
    if not isinstance(value, tuple | list) or not all(isinstance(s, str) for s in value):
        raise ValueError("must be a tuple of strings")
    return tuple(value)


#: The server's redaction stage; it runs last before the target format is written.
REDACT_STAGE = StageSpec(
    "server_redact",
    RedactStage,
    options=(
        Option(
            SECRETS_OPTION,
            (),
            "Keys to replace with [redacted] wherever the upstream quotes them (set per response).",
            _check_secrets,
            allowed="a tuple of strings",
            per_conversion=True,
        ),
    ),
    description="The chunkline server's key redaction (by value, before serialization).",
)
