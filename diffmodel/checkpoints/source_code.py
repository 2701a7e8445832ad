"""Which of this project's source files a module runs, and a hash of their code.

Two things need that list and must agree on it: the training fingerprint (a model trained by
other code is never resumed or reported as complete) and dvc.yaml's deps (a test checks that
every stage depends on every project file its command imports). Both derive it from the import
statements themselves, so a new import cannot be forgotten in either.

The hash is of the code, not the text: of the file's syntax tree without docstrings, so editing
a comment, a docstring or the layout retrains nothing, while changing an expression does. The
tree is written out by code_digest itself, leaving out empty and unset fields, so that a field a
later Python adds to the tree (empty for this code) does not change the hash.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from pathlib import Path


def module_file(name: str) -> Path | None:
    """The .py file of module `name`, or None when it is not a source module (a builtin, missing)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imported_names(path: Path, module: str) -> set[str]:
    """Absolute names of the modules `path` (module `module`) imports, at any depth of its code."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y / from .. import z
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return names


def imported_files(entry: str, packages: tuple[str, ...] = ("diffmodel", "stages")) -> dict[str, Path]:
    """{module name: file} of `entry` and every module of `packages` it imports, transitively,
    with the packages' __init__.py files that those imports run."""
    found: dict[str, Path] = {}
    pending = [entry]
    while pending:
        name = pending.pop()
        if name in found or name.split(".")[0] not in packages:
            continue
        path = module_file(name)
        if path is None:  # `from pkg import function`: pkg.function is not a module
            continue
        found[name] = path
        parts = name.split(".")
        pending += [".".join(parts[:i]) for i in range(1, len(parts))]  # importing a.b.c runs a and a.b
        pending += _imported_names(path, name)
    return found


def relative_path(path: Path, module: str) -> str:
    """`path` relative to the directory that holds the module's top package, e.g. diffmodel/unet.py."""
    depth = module.count(".") + (1 if path.name == "__init__.py" else 0)
    return path.relative_to(path.parents[depth]).as_posix()


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


def _canonical(node) -> str:
    """The tree as text: node types and their non-empty fields, no positions."""
    if isinstance(node, ast.AST):
        fields = ", ".join(f"{name}={_canonical(value)}" for name, value in ast.iter_fields(node)
                           if value is not None and value != [])
        return f"{type(node).__name__}({fields})"
    if isinstance(node, list):
        return "[" + ", ".join(_canonical(item) for item in node) + "]"
    return repr(node)


def code_digest(source: str, filename: str = "<source>") -> str:
    """sha256 prefix of the code of `source`: comments, docstrings and layout do not count."""
    tree = _without_docstrings(ast.parse(source, filename))
    return hashlib.sha256(_canonical(tree).encode()).hexdigest()[:16]


def source_hashes(entry: str) -> dict[str, str]:
    """{diffmodel/model/unet.py: code digest, ...} of every project file `entry` runs."""
    files = imported_files(entry)
    return {relative_path(path, name): code_digest(path.read_text(), str(path)) for name, path in sorted(files.items())}
