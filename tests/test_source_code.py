"""source_code.py: the project files a module runs, found from its import statements."""

from __future__ import annotations

import sys
import textwrap

import pytest

from diffmodel.source_code import imported_files, relative_path, source_hashes


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
        "pkg/sub/__init__.py": "",
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
    assert set(found) == {"pkg", "pkg.main", "pkg.helper", "pkg.shared", "pkg.absolute", "pkg.lazy", "pkg.sub", "pkg.sub.deep"}
    assert found["pkg.sub.deep"] == package / "pkg/sub/deep.py"


def test_paths_are_relative_to_the_packages_parent(package):
    assert relative_path(package / "pkg/sub/deep.py", "pkg.sub.deep") == "pkg/sub/deep.py"
    assert relative_path(package / "pkg/sub/__init__.py", "pkg.sub") == "pkg/sub/__init__.py"


def test_the_training_code_is_what_a_training_stage_needs_and_no_evaluation_code():
    files = set(source_hashes("diffmodel.train"))
    assert {"diffmodel/train.py", "diffmodel/diffusion.py", "diffmodel/unet.py", "diffmodel/tasks.py",
            "diffmodel/data/subsets.py", "diffmodel/data/prepared.py"} <= files
    assert not {"diffmodel/report.py", "diffmodel/metrics.py", "diffmodel/evaluate.py"} & files
