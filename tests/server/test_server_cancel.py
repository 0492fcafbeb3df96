"""TaskScope: cancelled once, inside the scope only, caught by the scope that asked, nested."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from chunkline.server.cancel import TIMER_CONTEXT, TaskScope


@pytest.mark.asyncio
async def test_a_cancel_from_elsewhere_ends_the_scope_and_is_caught() -> None:
    scope = TaskScope()
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, scope.cancel)
    with scope:
        await asyncio.sleep(10)
    assert scope.cancelled_caught
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    await asyncio.sleep(0)  # nothing left over for a later wait


@pytest.mark.asyncio
async def test_a_cancel_from_the_task_itself_comes_at_its_next_wait() -> None:
    with TaskScope() as scope:
        scope.cancel()
        reached = True  # no wait yet: not cancelled here
        await asyncio.sleep(10)
    assert reached and scope.cancelled_caught


@pytest.mark.asyncio
async def test_a_cancel_of_a_scope_left_before_its_next_wait_never_comes() -> None:
    with TaskScope() as scope:
        scope.cancel()
    await asyncio.sleep(0.01)
    assert not scope.cancelled_caught and scope.cancel_called


@pytest.mark.asyncio
async def test_the_work_after_a_cancellation_is_not_cancelled_again() -> None:
    scope = TaskScope()
    asyncio.get_running_loop().call_later(0.01, scope.cancel)
    finished = False
    with scope:
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.sleep(0.01)  # the clean-up: anyio would cancel this too
            finished = True
    assert finished and scope.cancelled_caught


@pytest.mark.asyncio
async def test_a_shielded_scope_holds_its_cancel_back() -> None:
    scope = TaskScope()
    with scope:
        scope.shield = True
        asyncio.get_running_loop().call_later(0.01, scope.cancel)
        await asyncio.sleep(0.03)
    assert scope.cancel_called and not scope.cancelled_caught


@pytest.mark.asyncio
async def test_its_deadline_cancels_it() -> None:
    loop = asyncio.get_running_loop()
    with TaskScope() as scope:
        scope.at(loop.time() + 0.01)
        await asyncio.sleep(10)
    assert scope.cancelled_caught and loop.time() >= scope.deadline


@pytest.mark.asyncio
async def test_an_inner_scope_passes_on_a_cancellation_of_the_outer_one() -> None:
    loop = asyncio.get_running_loop()
    with TaskScope() as outer:
        with TaskScope() as inner:
            loop.call_later(0.01, outer.cancel)
            loop.call_later(0.01, inner.cancel)
            await asyncio.sleep(10)
        pytest.fail("the outer scope was cancelled too")
    assert outer.cancelled_caught and not inner.cancelled_caught


@pytest.mark.asyncio
async def test_a_cancel_of_the_task_itself_goes_through_the_scope() -> None:
    async def held() -> TaskScope:
        with TaskScope() as scope:
            await asyncio.sleep(10)
        return scope

    task = asyncio.create_task(held())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.asyncio
async def test_its_deadline_timer_keeps_no_copy_of_the_tasks_context() -> None:
    """A timer given no context copies the task's: 64 bytes kept for a stream's whole life."""
    loop = asyncio.get_running_loop()
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker")
    marker.set("the task's")
    with TaskScope() as scope:
        scope.at(loop.time() + 0.01)
        timer = scope._timer
        assert timer is not None and timer._context is TIMER_CONTEXT  # type: ignore[attr-defined]
        await asyncio.sleep(1)
    assert scope.cancelled_caught
    assert marker not in TIMER_CONTEXT
