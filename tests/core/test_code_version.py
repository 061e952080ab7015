"""A stage's code version comes from its source: code edits invalidate its cache, docstrings and comments do not,
nor do edits of another stage's modules or of the harness's orchestration modules."""

from __future__ import annotations

import importlib
import itertools
import sys
import textwrap
from pathlib import Path

import pytest

from dualvgr.core.code_version import ORCHESTRATION, code_version, import_closure, stage_code_version
from dualvgr.core.errors import StageError
from dualvgr.core.spec import spec_from_dict
from dualvgr.core.stage import Stage, stage_fingerprint

_names = itertools.count()

HELPER = '''
"""Helpers."""


def scale(value):
    """Twice the value."""
    return value * 2  # doubled
'''
STAGE_A = '''
"""Stage a: uses the helper (imported inside the function) and a relative sibling."""
from . import constants


def run(ctx):
    from toy.helper import scale

    return scale(constants.BASE)
'''
STAGE_B = '''
def run(ctx):
    return 1
'''


@pytest.fixture()
def toy(tmp_path, monkeypatch):
    """A package on disk (unique name per test): helper, constants, stage_a (uses both) and stage_b (neither)."""
    name = f"toy_code_version_{next(_names)}"
    root = tmp_path / name
    root.mkdir()
    files = {"__init__.py": "", "helper.py": HELPER, "constants.py": "BASE = 3\n",
             "stage_a.py": STAGE_A.replace("toy.", f"{name}."), "stage_b.py": STAGE_B}
    for file, text in files.items():
        (root / file).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, root
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def stages_of(package: str) -> dict[str, Stage]:
    a = importlib.import_module(f"{package}.stage_a")
    b = importlib.import_module(f"{package}.stage_b")
    return {"a": Stage("a", "1", params=lambda spec: {}, run=a.run),
            "b": Stage("b", "1", params=lambda spec: {}, run=b.run)}


def fingerprints(package: str) -> dict[str, str]:
    spec = spec_from_dict({"name": "code-version-test"})
    stages = stages_of(package)
    return {name: stage_fingerprint(stages, name, spec) for name in stages}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_body_change_in_a_module_the_stage_uses_changes_its_fingerprint(toy):
    package, root = toy
    before = fingerprints(package)
    edit(root / "helper.py", "value * 2", "value * 3")
    after = fingerprints(package)
    assert after["a"] != before["a"], "stage a imports helper (inside run): a code change there must miss the cache"
    edit(root / "constants.py", "BASE = 3", "BASE = 4")
    assert fingerprints(package)["a"] != after["a"], "a relative import (from . import constants) is followed too"


def test_docstring_and_comment_change_keeps_the_fingerprint(toy):
    package, root = toy
    before = fingerprints(package)
    edit(root / "helper.py", '"""Twice the value."""', '"""Two times the value, documented at length."""')
    edit(root / "helper.py", "# doubled", "# a new comment")
    edit(root / "helper.py", '"""Helpers."""', '"""Helpers for stage a."""\n\n# layout changes too\n')
    assert fingerprints(package) == before, "docstrings, comments and blank lines are not code"


def test_change_in_an_unrelated_stage_module_keeps_the_fingerprint(toy):
    package, root = toy
    before = fingerprints(package)
    edit(root / "stage_b.py", "return 1", "return 2")
    after = fingerprints(package)
    assert after["a"] == before["a"], "stage a does not import stage_b"
    assert after["b"] != before["b"], "stage b's own module changed"


def test_closure_lists_the_modules_followed(toy):
    package, root = toy
    closure = import_closure(f"{package}.stage_a", root / "stage_a.py")
    assert set(closure) == {package, f"{package}.constants", f"{package}.helper", f"{package}.stage_a"}, closure


def test_orchestration_modules_do_not_count_for_real_stages():
    """Refactoring the runner, tracking or the CLI must not re-extract features; the model's layers must count."""
    from dualvgr.train.stage import TRAIN_STAGE, run_train

    module = run_train.__module__
    closure = import_closure(module, Path(sys.modules[module].__file__))
    assert {"dualvgr.train.loop", "dualvgr.model.layers", "dualvgr.train.stage"} <= set(closure), sorted(closure)
    counted = set(closure) & ORCHESTRATION
    assert not counted, f"orchestration modules counted in the train stage's code version: {sorted(counted)}"
    assert "dualvgr.report.stage" not in closure, "the report's code is not what training computes"
    assert stage_code_version(TRAIN_STAGE.run) == code_version(module, Path(sys.modules[module].__file__))


def test_stage_without_a_source_file_is_an_error():
    namespace: dict = {}
    exec(compile("def run(ctx):\n    return None\n", "<typed in>", "exec"), namespace)
    stage = Stage("adhoc", "1", params=lambda spec: {}, run=namespace["run"])
    with pytest.raises(StageError) as raised:
        stage_fingerprint({"adhoc": stage}, "adhoc", spec_from_dict({"name": "code-version-test"}))
    assert "has no source file" in str(raised.value)
    assert "define the stage's run function in a module (a .py file), not interactively" in str(raised.value)



def test_lazily_registered_entries_are_followed(toy):
    """A registry entry named "module:attribute" (imported when first looked up) counts like an import."""
    package, root = toy
    (root / "registry.py").write_text(f'ENTRIES = {{"plain": "{package}.helper:scale"}}\n')
    (root / "stage_c.py").write_text(f"from {package} import registry\n\n\ndef run(ctx):\n    return registry\n")
    closure = import_closure(f"{package}.stage_c", root / "stage_c.py")
    assert f"{package}.helper" in closure, sorted(closure)
    before = code_version(f"{package}.stage_c", root / "stage_c.py")
    edit(root / "helper.py", "value * 2", "value * 5")
    assert code_version(f"{package}.stage_c", root / "stage_c.py") != before
