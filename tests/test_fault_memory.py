"""A faulted conversion lets go of its input at once: no reference cycle waits for the garbage collector."""

from __future__ import annotations

import contextlib
import gc
import weakref
from collections.abc import Iterator

import pytest

import chunkline
from chunkline.errors import StreamError
from faults import events
from strategies import message_start


class Fed(bytearray):
    """Input bytes that can be watched with a weak reference."""


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _freed_after_fault(pipeline: chunkline.Pipeline, payload: bytes) -> bool:
    # Made here, so that no caller's frame holds a reference to it.
    data = Fed(payload)
    watch = weakref.ref(data)
    conversion = pipeline.open()
    with contextlib.suppress(StreamError):
        conversion.feed(data)
    del data, conversion
    return watch() is None


def _with(spec: chunkline.StageSpec) -> list[str | chunkline.StageSpec]:
    names: list[str | chunkline.StageSpec] = list(chunkline.Pipeline().stage_names)
    names.insert(names.index("decode") + 1, spec)
    return names


@pytest.mark.usefixtures("no_gc")
def test_a_stream_fault_raised_frees_the_fed_data_without_a_collection() -> None:
    pipeline = chunkline.Pipeline(on_error="raise")
    assert _freed_after_fault(pipeline, events(message_start()) + b"event: ping\ndata: {not json}\n\n")


@pytest.mark.usefixtures("no_gc")
def test_a_stage_bug_raised_frees_the_fed_data_without_a_collection() -> None:
    class Broken(chunkline.Stage):
        def feed(self, item: object) -> None:
            raise RuntimeError("a bug")

    spec = chunkline.StageSpec("broken", lambda options: Broken())
    pipeline = chunkline.Pipeline(_with(spec), on_error="raise")
    assert _freed_after_fault(pipeline, events(message_start()))


@pytest.mark.usefixtures("no_gc")
def test_a_stage_bug_in_band_frees_the_fed_data_without_a_collection() -> None:
    class Broken(chunkline.Stage):
        def feed(self, item: object) -> None:
            raise RuntimeError("a bug")

    spec = chunkline.StageSpec("broken", lambda options: Broken())
    pipeline = chunkline.Pipeline(_with(spec))
    assert _freed_after_fault(pipeline, events(message_start()))
