"""checkpoints/source_code.py: the project files a module runs, found from its import statements, and
the hash of their code - which comments and docstrings do not change."""

from __future__ import annotations

import ast
import json
import sys
import textwrap
from pathlib import Path

import pytest

import diffmodel
from diffmodel.checkpoints.source_code import _canonical, code_digest, imported_files, module_file, relative_path, source_hashes


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package `pkg` using every import form the project uses."""
    files = {
        "pkg/__init__.py": "",
        "pkg/main.py": """
            import os
            from . import helper
            from .sub.deep import thing
            from pkg.absolute import x

            def late():
                from .lazy import y
        """,
        "pkg/helper.py": "from .shared import z\n",
        "pkg/shared.py": "z = 1\n",
        "pkg/absolute.py": "x = 1\n",
        "pkg/lazy.py": "y = 1\n",
        "pkg/unused.py": "import pkg.main\n",
        "pkg/sub/__init__.py": "from .only_by_init import w\n",  # relative to the package itself, not its parent
        "pkg/sub/only_by_init.py": "w = 1\n",
        "pkg/sub/inner/__init__.py": "",
        "pkg/sub/inner/mod.py": "from ..deep import thing\n",  # two levels up from three deep: pkg.sub.deep
        "pkg/sub/deep.py": "from ..shared import z\nthing = z\n",
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == "pkg" or m.startswith("pkg.")]:
        del sys.modules[name]


def test_every_import_form_is_followed_and_nothing_else(package):
    found = imported_files("pkg.main", packages=("pkg",))
    assert set(found) == {"pkg", "pkg.main", "pkg.helper", "pkg.shared", "pkg.absolute", "pkg.lazy", "pkg.sub", "pkg.sub.deep",
                          "pkg.sub.only_by_init"}
    assert found["pkg.sub.deep"] == package / "pkg/sub/deep.py"


def test_a_module_deep_in_a_package_runs_every_package_above_it(package):
    """Importing pkg.sub.deep runs pkg/__init__.py and pkg/sub/__init__.py even when no import statement names them."""
    assert set(imported_files("pkg.sub.deep", packages=("pkg",))) == {"pkg", "pkg.sub", "pkg.sub.deep", "pkg.shared",
                                                                       "pkg.sub.only_by_init"}


def test_a_relative_import_climbs_as_many_packages_as_it_has_dots(package):
    assert set(imported_files("pkg.sub.inner.mod", packages=("pkg",))) == {
        "pkg", "pkg.sub", "pkg.sub.inner", "pkg.sub.inner.mod", "pkg.sub.deep", "pkg.shared", "pkg.sub.only_by_init"}


def test_only_python_source_files_are_modules_with_a_file():
    assert module_file("json") == Path(json.__file__) and module_file("diffmodel") == Path(diffmodel.__file__)
    assert module_file("sys") is None  # built in: its origin is "built-in", no file
    assert module_file("no_such_module_here") is None and module_file("json.no_such_submodule") is None


def test_paths_are_relative_to_the_packages_parent(package):
    assert relative_path(package / "pkg/sub/deep.py", "pkg.sub.deep") == "pkg/sub/deep.py"
    assert relative_path(package / "pkg/sub/__init__.py", "pkg.sub") == "pkg/sub/__init__.py"


def test_the_training_code_is_what_a_training_stage_needs_and_no_evaluation_code():
    files = set(source_hashes("diffmodel.training.loop"))
    assert {"diffmodel/training/loop.py", "diffmodel/training/step.py", "diffmodel/model/diffusion.py",
            "diffmodel/model/unet.py", "diffmodel/model/tasks.py", "diffmodel/data/subsets.py", "diffmodel/data/prepared.py"} <= files
    assert not [path for path in files if path.startswith(("diffmodel/reporting/", "diffmodel/evaluation/", "diffmodel/cli/"))]


LOSS = '''"""The loss."""
import torch


def loss(output, target):
    """Mean squared error."""
    return (output - target).square().mean()  # L2
'''


@pytest.mark.parametrize("edited", [
    LOSS.replace("# L2", "# the L2 loss, as Palette uses it"),  # a comment
    LOSS.replace('"""Mean squared error."""', '"""Mean squared error over every pixel."""'),  # a docstring
    LOSS.replace('"""The loss."""', '"""The loss of Algorithm 1."""'),  # the module's docstring
    LOSS.replace("(output - target)", "( output-target )").replace("\n\n\ndef", "\n\ndef"),  # layout
])
def test_comments_docstrings_and_layout_do_not_change_the_code_hash(edited):
    assert edited != LOSS and code_digest(edited) == code_digest(LOSS)


@pytest.mark.parametrize("edited", [
    LOSS.replace(".square()", ".abs()"),  # the loss itself
    LOSS.replace("(output - target)", "(target - output)"),  # an operand order (the same value, other code)
    LOSS.replace("return (", "x = 1\n    return ("),  # a statement more
    LOSS.replace('"""Mean squared error."""', '"""Mean squared error."""\n    "not a docstring"'),  # a second string
])
def test_a_change_of_the_code_changes_the_hash(edited):
    assert code_digest(edited) != code_digest(LOSS)


def test_the_hashed_text_is_node_types_and_their_set_fields_without_positions():
    """Worked by hand from ast's node fields: Module's empty type_ignores, Assign's and Constant's unset
    type_comment and kind, and every line and column number are left out."""
    assert _canonical(ast.parse("x, y = 1, 2")) == (
        "Module(body=[Assign(targets=[Tuple(elts=[Name(id='x', ctx=Store()), Name(id='y', ctx=Store())], ctx=Store())], "
        "value=Tuple(elts=[Constant(value=1), Constant(value=2)], ctx=Load()))])")


def test_a_file_of_only_a_docstring_still_hashes():
    assert code_digest('"""Only words."""\n') == code_digest('"""Other words."""\n') != code_digest("x = 1\n")
