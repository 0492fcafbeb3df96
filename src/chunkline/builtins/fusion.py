"""Stage fusion: a text delta written out by the parser itself when only built-in stages lie on its way."""

from __future__ import annotations

from typing import Any

from ..events import TextDelta
from ..stage import Stage
from .decode import Decoder
from .envelope import Envelope

__all__ = ["text_envelope"]


def text_envelope(parser: Stage) -> Envelope | None:
    """The envelope the SSE parser may write a text delta into itself, doing the decoder's work
    on the way (the decoder is the parser's next stage), or None.

    Most of a stream is text deltas, and on the default route each one passes through two stages
    that do little with it: the decoder checks that it belongs to an open text block and hands it
    to the envelope, which writes it into its frame. When the parser's output goes straight to the
    built-in decoder and the decoder's text straight to the built-in envelope, the parser does
    both in its own loop (`SSEParser._frames`): the same checks on the same state, the same bytes.
    Anything else between them (a plugin stage that takes text, a chunking policy that re-cuts
    it), or a subclass of either stage, and the event takes the full way, so every stage that
    sees text deltas today still sees every one. Decided once per conversion, when it is wired.
    """
    decoder: Any = getattr(parser.emit, "__self__", None)
    # Exact types: a subclass may change what feed() does with a text delta.
    if type(decoder) is not Decoder or parser.emit != decoder.feed:
        return None
    target = decoder.route(TextDelta)
    envelope: Any = getattr(target, "__self__", None)
    if type(envelope) is not Envelope or target != envelope.feed:
        return None
    return envelope
