"""Every schema key is read by the code it names: none is only declared, or only hashed into a fingerprint.

A key nothing reads is a promise the harness does not keep (``train.optimizer: sgd`` would still train with
Adam). The test records which keys the code actually reads while every stage computes its fingerprint (params,
upstream, external inputs, variants) and runs, end to end, on a tiny synthetic demo: a ``__getattribute__`` hook,
installed on the schema's dataclasses only for the test, notes each field the package's own code reads by name.
Generic traversals that touch every field (``dataclasses.asdict`` for hashes and logged params, the loader's own
validation in ``dualvgr/core/spec.py``) are not reads. A key read only by a stage's ``params`` function is in
the fingerprint but changes nothing the stage does, so it counts as unread.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import typing
from contextlib import contextmanager
from pathlib import Path

import pytest

import dualvgr
from dualvgr.core import spec as spec_module
from dualvgr.core.schema import ExperimentSpec
from dualvgr.core.spec import flatten, load_spec

REPO = Path(__file__).resolve().parents[2]
PACKAGE = str(Path(dualvgr.__file__).resolve().parent)
VALIDATION = str(Path(spec_module.__file__).resolve())


def schema_sections(cls: type = ExperimentSpec, prefix: str = "") -> dict[type, tuple[str, frozenset[str]]]:
    """Each schema dataclass -> (its dotted prefix, its leaf field names)."""
    hints = typing.get_type_hints(cls)
    sections = {cls: (prefix, frozenset(f.name for f in dataclasses.fields(cls)
                                         if not dataclasses.is_dataclass(hints[f.name])))}
    for fld in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[fld.name]):
            child = schema_sections(hints[fld.name], f"{prefix}{fld.name}.")
            assert not set(child) & set(sections), f"{hints[fld.name].__name__} is used twice in the schema"
            sections |= child
    return sections


class KeyReads:
    """Which dotted keys package code read, and which only a stage's ``params`` (its fingerprint) read."""

    def __init__(self) -> None:
        self.read: set[str] = set()
        self.fingerprinted: set[str] = set()
        self._params_depth = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for cls, (prefix, leaves) in schema_sections().items():
            monkeypatch.setattr(cls, "__getattribute__", self._hook(prefix, leaves))

    def _hook(self, prefix: str, leaves: frozenset[str]):
        def __getattribute__(obj, name):  # noqa: N807 - installed as the dataclass's own
            value = object.__getattribute__(obj, name)
            if name in leaves:
                caller = sys._getframe(1).f_code.co_filename
                if caller.startswith(PACKAGE) and caller != VALIDATION:
                    (self.fingerprinted if self._params_depth else self.read).add(prefix + name)
            return value

        return __getattribute__

    def stages(self, stages: dict) -> dict:
        """The stages with their ``params`` marked, so that fingerprint-only reads are told apart."""
        return {name: dataclasses.replace(stage, params=self._marked(stage.params)) for name, stage in stages.items()}

    def _marked(self, params):
        def marked(spec):
            with self._fingerprinting():
                return params(spec)

        return marked

    @contextmanager
    def _fingerprinting(self):
        self._params_depth += 1
        try:
            yield
        finally:
            self._params_depth -= 1


def tiny_demo(tmp_path: Path, name: str, *overrides: str):
    """``experiments/demo.yaml`` shrunk to seconds, every output under ``tmp_path``."""
    return load_spec(REPO / "experiments" / "demo.yaml", [
        f"name={name}", f"dataset.root={tmp_path / 'demo'}", f"tracking.outputs={tmp_path / 'outputs'}",
        f"tracking.tensorboard_dir={tmp_path / 'tb'}", f"report.output_dir={tmp_path / 'reports'}",
        "dataset.synthetic.num_videos=6", "dataset.synthetic.frames=8", "dataset.synthetic.width=32",
        "dataset.synthetic.height=32", "features.num_clips=2", "features.device=cpu",
        "features.appearance.frames_per_clip=2", "features.appearance.image_size=32",
        "features.motion.frames_per_clip=4", "features.motion.image_size=32", "features.motion.sample_size=32",
        "model.module_dim=16", "model.word_dim=8", "train.epochs=1", "train.batch_size=8", "train.device=cpu",
        *overrides])


def exercise_every_stage(runner, tmp_path: Path, name: str) -> set[str]:
    """Run train (data, features, questions on the way), evaluate and report on the tiny demo; then the data
    stage once more on a copy of the demo as real MSVD-QA data with a video missing (keys read only when videos
    are missing, or only for real data). Returns the demo's spec."""
    spec = tiny_demo(tmp_path, name)
    for stage in ("train", "evaluate", "report"):
        runner.run(stage, spec)
    real = tmp_path / "msvd-qa"
    shutil.copytree(spec.dataset.root, real)
    next((real / "video").glob("*.avi")).unlink()
    runner.run("data", tiny_demo(tmp_path, name, "dataset.kind=msvd-qa", f"dataset.root={real}",
                                 "dataset.allow_missing_videos=true"))
    return spec


def test_the_recorder_counts_package_reads_only(monkeypatch):
    """What the recorder counts: reads by name in package code; not asdict, validation, or this test's own."""
    from dualvgr.core.spec import replace_in, spec_hash
    from dualvgr.data.stage import DATA_STAGE

    spec = load_spec(REPO / "experiments" / "demo.yaml")
    reads = KeyReads()
    reads.install(monkeypatch)
    assert spec.train.lr == 1.0e-3 and spec.dataset.synthetic.seed == 0  # a test's reads are not the package's
    spec_hash(replace_in(spec, **{"train.epochs": 2}))  # asdict, validation, hashing
    assert reads.read == set() and reads.fingerprinted == set(), (reads.read, reads.fingerprinted)
    reads.stages({"data": DATA_STAGE})["data"].params(spec)
    assert "dataset.kind" in reads.fingerprinted and reads.read == set(), "a params read is a fingerprint read"
    assert spec.run_seeds == (666,)  # a schema property reads train.seeds and train.seed by name
    assert reads.read == {"train.seeds", "train.seed"}, reads.read


@pytest.mark.slow  # every stage end to end on 6 tiny videos: 16-46 s measured on 2 shared CPU cores
def test_every_schema_key_is_read_by_the_code_it_names(tmp_path, tracker, monkeypatch, request):
    from dualvgr.core.runner import Runner
    from dualvgr.pipeline import all_stages

    reads = KeyReads()
    reads.install(monkeypatch)
    runner = Runner(reads.stages(all_stages()), tracker, progress=False, echo=False)
    spec = exercise_every_stage(runner, tmp_path, f"keys-read-{request.node.name}")
    monkeypatch.undo()

    keys = set(flatten(spec))
    assert reads.read and keys >= reads.read | reads.fingerprinted, "the recorder must see schema keys only"
    (train,) = runner.run("train", spec)
    description = tracker.client.get_run(train.run_id).data.tags.get("mlflow.note.content")
    assert description == spec.description, "description is every run's MLflow description"
    unread = sorted(keys - reads.read)
    fingerprint_only = sorted(set(unread) & reads.fingerprinted)
    assert not unread, (
        f"schema keys no code reads while every stage fingerprints and runs: {unread}; of these, "
        f"{fingerprint_only or 'none'} only reach a fingerprint (the stage's params), which changes the cache key "
        f"but nothing the stage does. Make the code honour each key (a registry keyed by its value), or remove "
        f"the key from dualvgr/core/schema.py")
