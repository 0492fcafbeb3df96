"""Tests that every hookspec is documented and that its docstring example runs as a real plugin."""

from __future__ import annotations

import inspect
import re
import textwrap
import types
from collections.abc import Callable
from typing import Any

import pluggy
import pytest

import chunkline
from chunkline import Pipeline, hookspecs
from minimal_streams import contents, text_sse


@pytest.fixture(autouse=True)
def _no_disabled_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHUNKLINE_DISABLE_PLUGINS", raising=False)


def hookspec_functions() -> dict[str, Callable[..., Any]]:
    """Every function in hookspecs.py marked as a chunkline hookspec."""
    return {
        name: fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if getattr(fn, "chunkline_spec", None) is not None
    }


HOOKSPECS = hookspec_functions()


def example_code(docstring: str) -> str:
    """The literal block after ``Example::``: the indented lines that follow it."""
    lines = inspect.cleandoc(docstring).splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Example::")
    block: list[str] = []
    for line in lines[start + 1 :]:
        if line.strip() and not line.startswith((" ", "\t")):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)).strip("\n") + "\n"


def example_plugin(hook: str) -> types.ModuleType:
    """Execute the hookspec's example as the body of a fresh plugin module."""
    module = types.ModuleType(f"{hook}_example")
    code = compile(example_code(HOOKSPECS[hook].__doc__ or ""), f"<{hook} example>", "exec")
    exec(code, module.__dict__)
    return module


# -- the contract's shape ----------------------------------------------------------------------


def test_the_hookspecs_are_the_registration_hooks() -> None:
    assert set(HOOKSPECS) == {"register_stages", "register_chunking_policies", "register_formats"}
    for name in HOOKSPECS:
        assert name in hookspecs.__all__


def test_every_hookspec_takes_only_a_register_callable() -> None:
    for name, fn in HOOKSPECS.items():
        assert list(inspect.signature(fn).parameters) == ["register"], name


def test_hookimpl_is_exported_from_the_package() -> None:
    assert chunkline.hookimpl is hookspecs.hookimpl
    assert isinstance(chunkline.hookimpl, pluggy.HookimplMarker)
    assert chunkline.hookimpl.project_name == "chunkline"
    assert hookspecs.hookspec.project_name == "chunkline"


def test_the_builtin_plugins_implement_only_declared_hooks() -> None:
    for module_name in chunkline.plugins.DEFAULT_PLUGINS:
        module = __import__(module_name, fromlist=["_"])
        implemented = {
            name for name, value in vars(module).items() if getattr(value, "chunkline_impl", None) is not None
        }
        assert implemented, module_name
        assert implemented <= set(HOOKSPECS), module_name


# -- docstrings --------------------------------------------------------------------------------


@pytest.mark.parametrize("hook", sorted(HOOKSPECS))
def test_hookspec_docstring_says_when_it_is_called(hook: str) -> None:
    doc = inspect.getdoc(HOOKSPECS[hook]) or ""
    assert doc.splitlines()[0].strip(), "a one-line summary comes first"
    assert re.search(r"\bCalled\b", doc), "the docstring says when the hook is called"


@pytest.mark.parametrize("hook", sorted(HOOKSPECS))
def test_hookspec_docstring_documents_every_param(hook: str) -> None:
    fn = HOOKSPECS[hook]
    doc = inspect.getdoc(fn) or ""
    parameters = list(inspect.signature(fn).parameters)
    documented = re.findall(r":param (\w+):", doc)
    assert sorted(documented) == sorted(parameters), "documented params match the signature"
    for name in parameters:
        text = re.search(rf":param {name}:(.*?)(?=\n\S|\n\n|\Z)", doc, re.S)
        assert text is not None
        assert text.group(1).strip(), f":param {name}: is empty"


@pytest.mark.parametrize("hook", sorted(HOOKSPECS))
def test_hookspec_docstring_has_an_example_block(hook: str) -> None:
    doc = HOOKSPECS[hook].__doc__ or ""
    assert "Example::" in doc
    code = example_code(doc)
    assert "@chunkline.hookimpl" in code
    assert f"def {hook}(" in code


# -- the examples run --------------------------------------------------------------------------


def check_register_stages(plugin: types.ModuleType) -> None:
    pipe = Pipeline(plugins=[plugin], load_entrypoints=False, created=0)
    assert pipe.registry.stages["shout"].plugin == plugin.__name__
    names = list(pipe.stage_names)
    assert names[names.index("thinking") + 1] == "shout"
    assert contents(pipe.convert(text_sse("Hello", " world"))) == ["", "HELLO", " WORLD"]


def check_register_chunking_policies(plugin: types.ModuleType) -> None:
    pipe = Pipeline(plugins=[plugin], load_entrypoints=False, created=0, chunking="lines")
    assert pipe.registry.policies["lines"].plugin == plugin.__name__
    out = pipe.convert(text_sse("one\ntw", "o\nthr", "ee"))
    assert contents(out) == ["", "one\n", "two\n", "three"]


def check_register_formats(plugin: types.ModuleType) -> None:
    pipe = Pipeline(plugins=[plugin], load_entrypoints=False, target="plain-text")
    assert pipe.registry.encoders["plain-text"].plugin == plugin.__name__
    assert pipe.stage_names[-1] == "plain_text"
    out = pipe.convert(text_sse("Hello", " world"))
    assert b"".join(item for item in out if isinstance(item, bytes)) == b"Hello world"


CHECKS: dict[str, Callable[[types.ModuleType], None]] = {
    "register_stages": check_register_stages,
    "register_chunking_policies": check_register_chunking_policies,
    "register_formats": check_register_formats,
}


def test_every_hookspec_example_has_a_check() -> None:
    assert set(CHECKS) == set(HOOKSPECS)


@pytest.mark.parametrize("hook", sorted(HOOKSPECS))
def test_hookspec_example_runs_as_a_plugin(hook: str) -> None:
    plugin = example_plugin(hook)
    impl = getattr(plugin, hook)
    assert getattr(impl, "chunkline_impl", None) is not None, "the example defines a hookimpl"
    CHECKS[hook](plugin)


def test_the_examples_work_together() -> None:
    plugins = [example_plugin(hook) for hook in sorted(HOOKSPECS)]
    pipe = Pipeline(plugins=plugins, load_entrypoints=False, created=0, chunking="lines")
    assert contents(pipe.convert(text_sse("a\nb", "c"))) == ["", "A\n", "BC"]
