"""Checked reads of upstream JSON shared by every decoder: the protocol-fault exception and token counts."""

from __future__ import annotations

from typing import Any

from ..errors import describe

__all__ = ["MAX_COUNT", "Malformed", "count"]

#: Token counts above JSON's safe-integer range are not counts: they would overflow a client's
#: numbers (and orjson's, once summed into a prompt total).
MAX_COUNT = 2**53


class Malformed(Exception):
    """An upstream event or chunk that breaks its protocol; the message says how."""


def count(value: Any, what: str) -> int | None:
    """A token count (None stays None, so earlier values survive); anything but a whole number
    from 0 to 2**53 is a fault naming ``what``."""
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise Malformed(f"usage {what!r} must be a whole number from 0 to 2**53, not {describe(value)}")
    return value
