"""Helpers for testing chunkline stages, chunking policies and plugins; also a pytest plugin.

Everything here runs the real pipeline: build input streams without recordings
(`AnthropicStream`, `anthropic_stream`), run one stage or a whole pipeline over them
(`run_stage`, `run_pipeline`, `feed_bytewise`), check that output does not
depend on how the input is split (`assert_split_invariant`,
`assert_stage_split_invariant`) and that a chunking policy is lossless
(`assert_lossless`), and read the result back as a client would
(`read_openai_stream`, `read_with_openai_sdk`).

Installing chunkline registers this module with pytest (entry point ``pytest11``), which adds the
fixtures ``chunkline_pipeline``, ``anthropic_stream`` and ``chunkline_recording``. Importing it
is cheap and changes nothing: the fixtures live in ``chunkline.testing.fixtures``, which only
pytest loads, and none of them is autouse.
"""

from __future__ import annotations

from .checks import assert_lossless, assert_split_invariant, assert_stage_split_invariant
from .client import ClientMessage, ToolCallView, read_openai_stream, read_with_openai_sdk
from .running import (
    StageRun,
    coalesce,
    decode_events,
    feed_bytewise,
    feed_pieces,
    open_stage,
    random_pieces,
    resplit,
    run_pipeline,
    run_stage,
    stage_pipeline,
)
from .streams import AnthropicStream, anthropic_stream, load_recording, recording_events, sse_from_events

__all__ = [
    "AnthropicStream",
    "ClientMessage",
    "StageRun",
    "ToolCallView",
    "anthropic_stream",
    "assert_lossless",
    "assert_split_invariant",
    "assert_stage_split_invariant",
    "coalesce",
    "decode_events",
    "feed_bytewise",
    "feed_pieces",
    "load_recording",
    "open_stage",
    "random_pieces",
    "read_openai_stream",
    "read_with_openai_sdk",
    "recording_events",
    "resplit",
    "run_pipeline",
    "run_stage",
    "sse_from_events",
    "stage_pipeline",
]

# pytest registers this module as a plugin (the pytest11 entry point) and then imports the
# modules named here as plugins too; outside pytest this is just a list of names.
pytest_plugins = ["chunkline.testing.fixtures"]
