"""The plugin contract: the hook markers and every hook a chunkline plugin can implement."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

__all__ = [
    "hookimpl",
    "hookspec",
    "register_chunking_policies",
    "register_formats",
    "register_stages",
]

hookspec = pluggy.HookspecMarker("chunkline")
hookimpl = pluggy.HookimplMarker("chunkline")

# Hooks register things once, when a Pipeline is built. They are never called per event:
# a pluggy call costs about as much as converting a whole event.


@hookspec
def register_stages(register: Callable[..., None]) -> None:
    """Register the stages this plugin provides.

    Called once each time a `chunkline.Pipeline` is built.

    :param register: call ``register(spec)`` with a `chunkline.StageSpec` for each stage;
        ``register(spec, replace=True)`` replaces a stage of the same name registered by
        another plugin (registering an existing name without ``replace=True`` is an error).

    Example::

        import chunkline

        class Shout(chunkline.Stage):
            handles = (chunkline.events.TextDelta,)

            def feed(self, item):
                self.emit(chunkline.events.TextDelta(item.part, item.text.upper()))

        @chunkline.hookimpl
        def register_stages(register):
            register(chunkline.StageSpec("shout", lambda options: Shout(), after="thinking"))
    """


@hookspec
def register_chunking_policies(register: Callable[..., None]) -> None:
    """Register the chunking policies this plugin provides.

    Called once each time a `chunkline.Pipeline` is built. A policy is chosen with
    ``Pipeline(chunking="name")`` or ``Pipeline(chunking="name:arg")``.

    :param register: call ``register(spec)`` with a `chunkline.ChunkPolicySpec` for each
        policy; ``register(spec, replace=True)`` replaces a policy of the same name.

    Example::

        import chunkline

        class Lines:
            def __init__(self):
                self.held = ""

            def feed(self, text):
                self.held += text
                cut = self.held.rfind("\\n") + 1
                ready, self.held = self.held[:cut], self.held[cut:]
                return [ready] if ready else []

            def flush(self):
                ready, self.held = self.held, ""
                return [ready] if ready else []

        @chunkline.hookimpl
        def register_chunking_policies(register):
            register(chunkline.ChunkPolicySpec("lines", lambda arg: Lines()))
    """


@hookspec
def register_formats(register: Callable[..., None]) -> None:
    """Register the wire formats this plugin reads (decoders) or writes (encoders).

    Called once each time a `chunkline.Pipeline` is built. A route from format A to format B
    runs A's decoder stages, then the middle stages (thinking, tool calls, chunker, finish,
    usage), then B's encoder stages; every decoder meets every encoder through the neutral
    events of `chunkline.events`. The stages a spec names are registered with
    `register_stages` as usual.

    :param register: call ``register(spec)`` with a `chunkline.DecoderSpec` (a source format)
        or a `chunkline.EncoderSpec` (a target format); ``register(spec, replace=True)``
        replaces another plugin's decoder or encoder of the same format.

    Example::

        import chunkline

        class PlainText(chunkline.Stage):
            handles = (chunkline.events.TextDelta,)

            def feed(self, item):
                self.emit(item.text.encode())

        @chunkline.hookimpl
        def register_stages(register):
            register(chunkline.StageSpec("plain_text", lambda options: PlainText()))

        @chunkline.hookimpl
        def register_formats(register):
            register(chunkline.EncoderSpec("plain-text", ("plain_text",), "Only the answer's text."))
    """
