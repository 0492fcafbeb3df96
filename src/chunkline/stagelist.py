"""Stage lists in code: start from the default list and add, insert, replace or remove stages by name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .errors import StageNameError

if TYPE_CHECKING:
    from .registry import Registry

__all__ = ["StageList", "default_stages"]


class StageList(tuple[str, ...]):
    """A stage list: stage names in the order they run, each at most once.

    Every edit returns a new list and checks names as it goes, so a mistake is reported where it
    is made: an anchor that is not in the list, a stage that no plugin registered, or a stage
    that is already in the list raises `chunkline.StageNameError`. Pass the result to
    `chunkline.Pipeline` as its ``stages``::

        stages = chunkline.default_stages().add("redact").remove("thinking")
        pipeline = chunkline.Pipeline(stages, redact_replacement="***")
    """

    registry: Registry | None
    """The registered stages that names are checked against (None: names are not checked)."""

    def __new__(cls, names: Iterable[str] = (), registry: Registry | None = None) -> StageList:
        self = super().__new__(cls, names)
        self.registry = registry
        seen: set[str] = set()
        for name in self:
            if not isinstance(name, str):
                raise StageNameError(f"a stage list holds stage names (str), not {name!r}")
            if name in seen:
                raise StageNameError(f"stage {name!r} appears twice in the stage list")
            seen.add(name)
            if registry is not None:
                registry.stage(name)
        return self

    def __repr__(self) -> str:
        return f"StageList({list(self)!r})"

    def insert_after(self, anchor: str, *names: str) -> StageList:
        """The list with ``names`` right after the stage ``anchor``."""
        at = self._position(anchor) + 1
        return self._with(self[:at] + self._new(names) + self[at:])

    def insert_before(self, anchor: str, *names: str) -> StageList:
        """The list with ``names`` right before the stage ``anchor``."""
        at = self._position(anchor)
        return self._with(self[:at] + self._new(names) + self[at:])

    def replace(self, old: str, new: str) -> StageList:
        """The list with the stage ``new`` where ``old`` was."""
        at = self._position(old)
        if new != old:
            self._new((new,))
        return self._with((*self[:at], new, *self[at + 1 :]))

    def remove(self, *names: str) -> StageList:
        """The list without the stages ``names``."""
        for name in names:
            self._position(name)
        return self._with(name for name in self if name not in names)

    def add(self, *names: str) -> StageList:
        """The list with each of ``names`` at the place its plugin declared (``StageSpec.after``):
        the way to switch on an optional stage such as ``redact``."""
        if self.registry is None:
            raise StageNameError(
                "add() needs to know where each stage goes; start from chunkline.default_stages(), "
                "or use insert_after()/insert_before()"
            )
        stages = self
        for name in names:
            stages._new((name,))
            after = self.registry.stage(name).after
            if after is None:
                raise StageNameError(
                    f"stage {name!r} does not say where it runs (its StageSpec has no 'after'); "
                    "use insert_after() or insert_before()"
                )
            if after not in stages:
                raise StageNameError(
                    f"stage {name!r} runs after {after!r}, which is not in the stage list {list(stages)}; "
                    "use insert_after() or insert_before()"
                )
            stages = stages.insert_after(after, name)
        return stages

    def _position(self, name: str) -> int:
        try:
            return self.index(name)
        except ValueError:
            raise StageNameError(f"no stage {name!r} in the stage list {list(self)}") from None

    def _new(self, names: Iterable[str]) -> tuple[str, ...]:
        added = tuple(names)
        for name in added:
            if name in self:
                raise StageNameError(f"stage {name!r} is already in the stage list {list(self)}")
        return added

    def _with(self, names: Iterable[str]) -> StageList:
        return StageList(names, self.registry)


def default_stages(
    *,
    source: str | None = None,
    target: str | None = None,
    plugins: Iterable[object] = (),
    load_entrypoints: bool = True,
    block: Iterable[str] = (),
) -> StageList:
    """The default stage list of a route (Anthropic Messages to OpenAI Chat unless ``source``
    or ``target`` say otherwise): the source format's decoder, the middle stages and the target
    format's encoder, with the stages installed plugins add to it. Plugins are found as
    `chunkline.Pipeline` finds them (same keywords), and the list knows every registered
    stage, so its edits check names at once. Pass it to ``Pipeline`` with the same route."""
    from .pipeline import Pipeline

    pipeline = Pipeline([], plugins=plugins, load_entrypoints=load_entrypoints, block=block)
    return StageList(pipeline.default_stage_names(source, target), pipeline.registry)
