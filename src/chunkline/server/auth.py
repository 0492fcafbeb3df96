"""Who may use the server, and which key goes upstream: the server's own keys, or the client's key."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from .errors import APIError, InvalidRequest
from .settings import Settings

__all__ = ["Authenticator", "beta_header", "client_key"]

_WWW_AUTHENTICATE = {"www-authenticate": 'Bearer realm="chunkline"'}


class Authenticator:
    """Checks a request's key and returns the key to send upstream.

    With ``CHUNKLINE_API_KEYS`` set, a client must present one of those keys, and the upstream gets
    ``ANTHROPIC_API_KEY``. Otherwise the client's own key is passed through to the upstream, which
    decides. Keys are compared in constant time and never appear in an error.
    """

    def __init__(self, settings: Settings) -> None:
        # Digests of the allowed keys: comparing digests takes the same time whatever the key's
        # length, and the plain keys are not kept in yet another place.
        self._digests = tuple(_digest(key.reveal()) for key in settings.api_keys)
        self._upstream_key = settings.upstream_api_key

    def upstream_key(self, headers: Mapping[str, str]) -> str:
        """The key for the upstream, or `APIError` 401 for a missing or wrong client key."""
        presented = client_key(headers)
        if presented is None:
            raise APIError(
                401,
                "No API key provided: send it as 'Authorization: Bearer KEY' (or as 'x-api-key: KEY').",
                type="invalid_request_error",
                code="missing_api_key",
                headers=_WWW_AUTHENTICATE,
            )
        if not _is_header_text(presented):
            # Such a key cannot be sent upstream (a header holds ASCII only), nor match one of
            # the server's keys (they are checked to be ASCII at start-up). It is never echoed.
            raise APIError(
                401,
                "Incorrect API key provided: an API key is printable ASCII.",
                type="invalid_request_error",
                code="invalid_api_key",
                headers=_WWW_AUTHENTICATE,
            )
        if not self._digests:
            return presented
        digest = _digest(presented)
        matched = False
        for allowed in self._digests:  # no early exit: the time taken says nothing about which key
            matched |= hmac.compare_digest(digest, allowed)
        if not matched or self._upstream_key is None:
            raise APIError(
                401,
                "Incorrect API key provided.",
                type="invalid_request_error",
                code="invalid_api_key",
                headers=_WWW_AUTHENTICATE,
            )
        return self._upstream_key.reveal()


def client_key(headers: Mapping[str, str]) -> str | None:
    """The key a client sent: ``Authorization: Bearer KEY`` (OpenAI clients) or ``x-api-key``
    (Anthropic clients)."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = headers.get("x-api-key", "").strip()
    return key or None


def beta_header(headers: Mapping[str, str]) -> str | None:
    """The client's ``anthropic-beta`` header, passed upstream; a 400 if a header cannot carry it."""
    beta = headers.get("anthropic-beta")
    if beta is not None and not (beta.isascii() and beta.isprintable()):
        raise InvalidRequest("the anthropic-beta header must be printable ASCII", None)
    return beta


def _is_header_text(key: str) -> bool:
    # Printable ASCII but the space ("!" to "~"), without a Python step per character.
    return key.isascii() and key.isprintable() and " " not in key


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", errors="surrogateescape")).digest()
