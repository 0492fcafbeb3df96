"""Docs tests: the hook reference, options and command-line pages, and the site's navigation, kept
in step with the code (a hook, option or flag added without docs, or docs left behind, fails here)."""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest

import chunkline
from chunkline import hookspecs
from chunkline.cli import _parser

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def hook_specs() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(function)
        for name, function in vars(hookspecs).items()
        if callable(function) and hasattr(function, "chunkline_spec")
    }


def test_there_are_hook_specs_to_document() -> None:
    assert set(hook_specs()) == {"register_stages", "register_chunking_policies", "register_formats"}


@pytest.mark.parametrize("name", sorted(hook_specs()))
def test_every_hook_spec_is_documented_with_its_signature(name: str) -> None:
    signature = hook_specs()[name]
    arguments = ", ".join(signature.parameters)
    text = page("hooks.md")
    assert f"\n## `{name}({arguments})`\n" in text, (
        f"docs/hooks.md needs a heading '## `{name}({arguments})`'"
    )
    assert f"\n::: chunkline.hookspecs.{name}\n" in text, f"docs/hooks.md must render {name}'s docstring"
    spec = getattr(hookspecs, name)
    docstring = inspect.getdoc(spec) or ""
    assert "Called once" in docstring, f"{name}'s docstring must say when it is called"
    for parameter in signature.parameters:
        assert f":param {parameter}:" in docstring, f"{name}'s docstring must document {parameter}"
    assert "Example::" in docstring


def test_documented_hooks_all_exist() -> None:
    specs = hook_specs()
    for found, arguments in re.findall(r"^## `(\w+)\((.*)\)`$", page("hooks.md"), re.MULTILINE):
        assert found in specs, f"docs/hooks.md documents {found!r}, which is not a hook spec"
        assert arguments == ", ".join(specs[found].parameters), f"{found}: documented signature drifted"


def test_hook_spec_examples_run() -> None:
    """The example in each hook's docstring is a working plugin."""
    for name in hook_specs():
        docstring = inspect.getdoc(getattr(hookspecs, name)) or ""
        example = textwrap.dedent(docstring.split("Example::", 1)[1].strip("\n"))
        module = types.ModuleType("example_plugin")
        exec(compile(example, f"<{name} example>", "exec"), vars(module))
        pipeline = chunkline.Pipeline(plugins=[module], load_entrypoints=False)
        registry = pipeline.registry
        assert {r.plugin for r in [*registry.stages.values(), *registry.policies.values()]} >= {
            "example_plugin"
        }


# -- options ---------------------------------------------------------------------------------------


def builtin_options() -> list[tuple[str, str, Any]]:
    pipeline = chunkline.Pipeline(load_entrypoints=False)
    return [(name, stage, default) for name, stage, default, _, _ in pipeline.describe_options()]


def option_sections() -> dict[str, str]:
    text = page("options.md")
    parts = re.split(r"^### `(\w+)`$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize(("name", "stage", "default"), builtin_options())
def test_every_builtin_option_is_documented(name: str, stage: str, default: Any) -> None:
    sections = option_sections()
    assert name in sections, f"docs/options.md needs a section '### `{name}`'"
    section = sections[name]
    assert f"Stage `{stage}`" in section, f"docs/options.md: {name} belongs to stage {stage!r}"
    if default is None or isinstance(default, str | bool | int):
        shown = "None" if default is None else f'"{default}"' if isinstance(default, str) else str(default)
        assert f"Default `{shown}`" in section, f"docs/options.md: {name}'s default is {shown}"


def test_documented_options_all_exist() -> None:
    known = {name for name, _, _ in builtin_options()}
    assert set(option_sections()) == known


def test_installed_plugin_options_are_documented() -> None:
    """Options of the stages that installed plugins register (the example plugins) are described on
    the example-plugins page."""
    pipeline = chunkline.Pipeline([])
    builtin = {name for name, _, _ in builtin_options()}
    text = page("example-plugins.md")
    for registration in pipeline.registry.stages.values():
        for option in registration.spec.options:
            if option.name not in builtin:
                assert f"`{option.name}`" in text, f"docs/example-plugins.md should describe {option.name}"


# -- command line ----------------------------------------------------------------------------------


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = _parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def flags(parser: argparse.ArgumentParser) -> list[str]:
    return [
        option
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction)
        for option in action.option_strings
    ]


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_command_line_flag_is_documented(command: str) -> None:
    parser = subcommands()[command]
    text = page("server.md") if command == "serve" else page("cli.md")
    if command != "serve":
        assert f"## `chunkline {command}`" in page("cli.md")
    for flag in flags(parser):
        assert f"`{flag}" in text, f"the {command} flag {flag} is not documented"


# -- the site --------------------------------------------------------------------------------------


def nav_pages() -> list[str]:
    return re.findall(
        r"^\s*-\s+(?:[^:\n]+:\s+)?([\w./-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.MULTILINE
    )


def test_every_docs_page_is_in_the_navigation() -> None:
    pages = nav_pages()
    assert len(pages) == len(set(pages))
    assert sorted(pages) == sorted(p.name for p in DOCS.glob("*.md"))


@pytest.mark.parametrize("name", ["index.md", "quickstart.md", "concepts.md", "options.md", "hooks.md"])
def test_python_examples_are_valid_python(name: str) -> None:
    for block in re.findall(r"```python\n(.*?)```", page(name), re.DOTALL):
        ast.parse(block)
