"""A stage's code version, derived from its source, so that a forgotten version bump can never give a stale hit.

The rule: a stage's code version is the sha256 of the normalised syntax trees of the modules its outputs depend
on. Those are the module that defines the stage's ``run`` and, transitively, every module it imports (at the top
or inside a function) from the ``dualvgr`` package or from the stage module's own top-level package, with the
packages (``__init__.py``) those imports execute. Not counted are the harness's orchestration modules
(:data:`ORCHESTRATION`: the runner, tracking, the spec loader and schema, the CLI, ...): they decide when and
where a stage runs and how it is recorded, not what it computes, and counting them would make every refactor of
the runner re-extract features for hours. The values a stage reads from the spec are part of its fingerprint
separately (its ``params``), so a changed default changes exactly the stages that read it. Modules named as
strings are followed too: a lazily registered entry (``"dualvgr.features.backbones:RESNET"``, imported when first
looked up) and ``importlib.import_module("...")`` with a literal name. So a registry that lists every kind's
entries in one module would make each stage that imports it depend on all of them: keep one registry per kind.

A tree is normalised by dropping docstrings and ignoring positions: editing a comment, a docstring or the
layout keeps every cache valid, while any change to code (a constant, a statement, a name) changes the version
of each stage whose closure holds that module, and only of those. The imports are read from the source, not
executed, so finding the closure costs a few milliseconds per module. Code outside these packages (PyTorch,
NumPy) is not hashed; every run records the versions of those packages instead. ``Stage.version`` stays as an
explicit salt for what the source cannot show (a changed file format read from elsewhere).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import re
from pathlib import Path
from typing import Callable

import dualvgr
from dualvgr.core.errors import StageError
from dualvgr.core.spec import sha256_of

PACKAGE = "dualvgr"
# Orchestration: when, where and how a stage runs and is recorded; never what its outputs contain.
ORCHESTRATION = frozenset({
    "dualvgr.__main__",
    "dualvgr.cli",
    "dualvgr.pipeline",
    "dualvgr.core.code_version",
    "dualvgr.core.errors",
    "dualvgr.core.fingerprint",
    "dualvgr.core.ranks",
    "dualvgr.core.runner",
    "dualvgr.core.runstate",
    "dualvgr.core.schema",
    "dualvgr.core.spec",
    "dualvgr.core.stage",
    "dualvgr.core.staging",
    "dualvgr.core.store",
    "dualvgr.core.tracking",
    # Which rank of a torchrun launch extracts which shard, and how they report: the merged file is the one a
    # single process writes (extract.py and hdf5.py, which count, decide its contents).
    "dualvgr.features.distributed",
})


def stage_code_version(run: Callable) -> str:
    """The code version of the stage whose ``run`` is this function (see the module docstring for the rule)."""
    return code_version(*_defining_module(run))


def code_version(module: str, source: Path) -> str:
    """sha256 of the normalised trees of ``module`` (whose source is ``source``) and of its import closure."""
    return sha256_of({name: digest for name, (_, digest) in _closure(module, source).items()})


def import_closure(module: str, source: Path) -> dict[str, Path]:
    """Module name -> source file of ``module`` and of every module it imports from the followed packages."""
    return {name: path for name, (path, _) in _closure(module, source).items()}


def tree_digest(path: Path) -> str:
    """sha256 of a module's syntax tree without docstrings, positions, comments or layout."""
    return _read(path, "", is_package=False)[1]


def _closure(module: str, source: Path) -> dict[str, tuple[Path, str]]:
    """Module name -> (source file, tree digest), each file read and parsed once."""
    roots = {PACKAGE: Path(dualvgr.__file__).parent}
    top = module.split(".")[0]
    if "." in module or source.name == "__init__.py":
        # The folder of the stage module's own top-level package: up one level per dotted component.
        levels = module.count(".") + (1 if source.name == "__init__.py" else 0)
        roots.setdefault(top, source.resolve().parents[levels - 1])
    closure: dict[str, tuple[Path, str]] = {}
    pending = [(module, source)]
    while pending:
        name, path = pending.pop()
        if name in closure or name in ORCHESTRATION:
            continue
        imports, digest = _read(path, name, is_package=path.name == "__init__.py")
        closure[name] = (path, digest)
        for imported in imports:
            for candidate in _with_parents(imported):
                found = _source_of(candidate, roots)
                if found is not None and candidate not in closure:
                    pending.append((candidate, found))
    return dict(sorted(closure.items()))


def _read(path: Path, module: str, *, is_package: bool) -> tuple[list[str], str]:
    """(the modules a source file imports, the digest of its tree), in one pass over the tree.

    Imports are absolute, relative or ``from package import submodule``. The digest drops docstrings; ``ast.dump``
    without attributes leaves out positions, hence comments and layout.
    """
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    package = module if is_package else module.rpartition(".")[0]
    imports = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            imports.append(base)
            imports.extend(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _LAZY.fullmatch(node.value):
            imports.append(node.value.partition(":")[0])  # a lazily registered entry, "module:attribute"
        elif isinstance(node, ast.Call) and _is_import_call(node):
            imports.append(node.args[0].value)  # importlib.import_module("dualvgr.x")
        elif isinstance(node, _WITH_DOCSTRING) and _has_docstring(node):
            node.body = node.body[1:]
    return imports, hashlib.sha256(ast.dump(tree, annotate_fields=False, include_attributes=False).encode()).hexdigest()


_WITH_DOCSTRING = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
_LAZY = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


def _is_import_call(node: ast.Call) -> bool:
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    first = node.args[0] if node.args else None
    return name in ("import_module", "__import__") and isinstance(first, ast.Constant) and isinstance(first.value, str)


def _has_docstring(node: ast.AST) -> bool:
    first = node.body[0] if node.body else None
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)


def _defining_module(run: Callable) -> tuple[str, Path]:
    function = getattr(run, "func", run)  # a functools.partial names the function it wraps
    module = getattr(function, "__module__", None)
    try:
        source = inspect.getsourcefile(function)
    except TypeError:
        source = None
    if not module or not source or not Path(source).is_file():
        raise StageError(
            f"the stage function {function!r} has no source file (module {module!r}): its cache key is derived "
            f"from its source, so define the stage's run function in a module (a .py file), not interactively"
        )
    return module, Path(source)


def _with_parents(module: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``: importing a module executes the packages above it."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _source_of(module: str, roots: dict[str, Path]) -> Path | None:
    """The source file of ``module`` when it is in a followed package (found by path: nothing is imported)."""
    top, _, rest = module.partition(".")
    if top not in roots:
        return None
    folder = roots[top].joinpath(*rest.split(".")) if rest else roots[top]
    for candidate in (folder / "__init__.py", folder.with_suffix(".py") if rest else None):
        if candidate is not None and candidate.is_file():
            return candidate
    return None
