"""The upstream client's failures, by the names (and, where they have one, the words) httpx gives them."""

from __future__ import annotations

__all__ = ["ConnectError", "ConnectTimeout", "HTTPError", "PoolTimeout", "ReadError", "RemoteProtocolError"]


class HTTPError(Exception):
    """Any failure of an upstream request."""


class ConnectError(HTTPError):
    """The connection (TCP, or TLS over it) could not be made."""


class ConnectTimeout(HTTPError):
    """The connection was not made within the connect timeout."""


class PoolTimeout(HTTPError):
    """Every connection the pool may open was busy for the whole connect timeout."""


class ReadError(HTTPError):
    """The connection failed while a response was being read (reset, closed by this side)."""


class RemoteProtocolError(HTTPError):
    """The upstream broke HTTP/1.1: a malformed head or chunk, or a body cut off."""
