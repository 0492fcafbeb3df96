"""An upstream response's head: read, checked, and how its body is framed."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from .http1_connection import Connection
from .http1_errors import ReadError, RemoteProtocolError

__all__ = ["MAX_HEAD_BYTES", "TOKEN_PATTERN", "Unanswered", "read_head"]

# h11's limit for a response head; far past any real upstream's.
MAX_HEAD_BYTES: Final = 64 * 1024
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9]{2})(?: [^\r\n]*)?")
#: A header name (RFC 9110's token), the one pattern for names read and names sent.
TOKEN_PATTERN: Final = r"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_TOKEN = re.compile(TOKEN_PATTERN.encode())


class Unanswered(RemoteProtocolError):
    """The connection closed before any byte of an answer came."""


async def read_head(connection: Connection, method: str) -> tuple[int, dict[str, str], int | None, bool]:
    """Read a response head (skipping interim 1xx ones): (status, headers, framing, keep-alive).
    What follows the head is put back for the body's reader."""
    answered = False
    while True:
        data = b""
        while True:
            try:
                # Not receive(): no coroutine of its own held while the upstream works on the answer.
                waiter = connection.arrival()
                while waiter is not None:
                    await waiter
                    waiter = connection.arrival()
                more = connection.take()
            except ReadError as exc:
                if answered or data:
                    raise
                raise Unanswered(f"the connection failed before a response came: {exc}") from exc
            if not more:
                if answered or data:
                    raise RemoteProtocolError("peer closed connection mid-way through the response head")
                raise Unanswered("Server disconnected without sending a response.")
            data += more
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(data) > MAX_HEAD_BYTES:
                raise RemoteProtocolError("the response head is longer than 64 KiB")
        connection.unread(data[end + 4 :])
        status, minor, headers = _parse_head(data[:end])
        if 100 <= status < 200 and status != 101:
            answered = True
            continue  # 100 Continue, 103 Early Hints: the answer is still to come
        break
    keep_alive = minor == 1 and "close" not in _tokens(headers.get("connection", ""))
    framing: int | None
    if method == "HEAD" or status in (101, 204, 304):
        framing = 0
    elif "transfer-encoding" in headers:
        codings = _tokens(headers["transfer-encoding"])
        if not codings or codings[-1] != "chunked":
            raise RemoteProtocolError(
                f"unsupported transfer-encoding {headers['transfer-encoding']!r} in the response"
            )
        framing = -1
        if "content-length" in headers:
            keep_alive = False  # a message framed two ways: read it as chunked, trust nothing after
    elif "content-length" in headers:
        lengths = {value.strip() for value in headers["content-length"].split(",")}
        length = lengths.pop() if len(lengths) == 1 else ""
        if not length.isdigit() or len(length) > 18:
            raise RemoteProtocolError(f"bad content-length {headers['content-length']!r} in the response")
        framing = int(length)
    else:
        framing, keep_alive = None, False
    return status, headers, framing, keep_alive


def _parse_head(head: bytes) -> tuple[int, int, dict[str, str]]:
    lines = head.split(b"\r\n")
    status_line = _STATUS_LINE.fullmatch(lines[0])
    if status_line is None:
        raise RemoteProtocolError(f"not an HTTP/1.x status line: {lines[0][:100]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:
            # Also a folded line (it starts with white space), which RFC 9112 lets a client refuse.
            raise RemoteProtocolError(f"malformed header line in the response: {line[:100]!r}")
        key = name.decode("ascii").lower()
        text = value.strip(b" \t").decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return int(status_line[2]), int(status_line[1]), headers


def _tokens(value: str) -> Sequence[str]:
    return [token.strip().lower() for token in value.split(",") if token.strip()]
