"""The train stage's job on tiny inputs, without MLflow: final-score contract per ``train.eval_split``, dropped
questions, damaged checkpoints set aside, and the registries the spec's keys go through."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from dualvgr.core.errors import DataError, SpecError
from dualvgr.core.schema import ModelSpec, TrainSpec
from dualvgr.core.spec import replace_in
from dualvgr.core.stage import StageContext, StageRecord
from dualvgr.model.layers import GRAPH_MODULES
from dualvgr.train import loop
from dualvgr.train.build import build_model, recipe_from
from dualvgr.train.inputs import load_inputs
from dualvgr.train.loop import Trainer
from dualvgr.train.optimizers import OPTIMIZERS, build_optimizer
from dualvgr.train.stage import TAG_SET_ASIDE, RescoreMismatch, TrainJob, run_train, train_job
from dualvgr.train.distributed import Distributed
from tests.train.conftest import tiny_spec

CPU = torch.device("cpu")
FINGERPRINT = "ab" * 32


class FakeLog:
    """What a RunLogger receives, in memory."""

    def __init__(self):
        self.tags, self.metrics, self.steps = {}, {}, {}

    def set_tags(self, tags):
        self.tags |= {k: str(v) for k, v in tags.items()}

    def log_metrics(self, metrics, step=None):
        for name, value in metrics.items():
            self.metrics[name] = value
            self.steps.setdefault(name, []).append(step)

    def log_artifact(self, path, artifact_path=None):
        pass


def run_stage(spec, paths: dict[str, Path], out_dir: Path):
    grouped: dict[str, dict[str, Path]] = {}
    for key, path in paths.items():
        stage, name = key.split(".", 1)
        grouped.setdefault(stage, {})[name] = path
    upstream = {stage: StageRecord(stage, "0" * 64, "run", outputs, False, spec) for stage, outputs in grouped.items()}
    log = FakeLog()
    out_dir.mkdir(parents=True, exist_ok=True)
    result = run_train(StageContext(spec, FINGERPRINT, out_dir, upstream, log, progress=False))
    return result, log


def interrupted_run(spec, paths, out_dir: Path) -> None:
    """A run killed after its first epoch: last.pt and best.pt of epoch 1 are on disk."""
    with pytest.raises(KeyboardInterrupt):
        train_job(TrainJob(spec, paths, out_dir, FINGERPRINT), None, Distributed.single(), progress=False,
                  stop_after_epoch=0)
    assert (out_dir / loop.LAST).is_file() and (out_dir / loop.BEST).is_file()


def drop_rows(path: Path, video_ids: list[int]) -> None:
    """Rewrite a feature file without the rows of ``video_ids``."""
    with h5py.File(path, "r") as handle:
        name = next(key for key in handle if key != "ids")
        values, ids = handle[name][()], handle["ids"][()]
    keep = ~np.isin(ids, video_ids)
    with h5py.File(path, "w") as handle:
        handle.create_dataset(name, data=values[keep])
        handle.create_dataset("ids", data=ids[keep])


# --- final scores: train.eval_split ---------------------------------------------------------------------------


def test_best_checkpoint_is_scored_on_test_by_default(tmp_path, tiny_inputs):
    result, log = run_stage(tiny_spec(tmp_path, epochs=2), tiny_inputs, tmp_path / "out")
    for name in ("best_val_acc", "best_epoch", "test_acc", "test_acc_what", "test_acc_who", "test_prior_acc"):
        assert name in log.metrics, f"missing final metric {name}"
    assert {name: log.metrics[f"{name}_questions_dropped"] for name in ("train", "val", "test")} == {
        "train": 0, "val": 0, "test": 0}, "the dropped counts are logged always, 0 when none"
    assert result.outputs["predictions"] == tmp_path / "out" / "test_predictions.csv"
    assert result.outputs["predictions"].is_file()
    assert result.summary.startswith("seed 5: best val ") and "; best checkpoint on test: " in result.summary


def test_eval_split_val_scores_best_on_val_and_logs_no_test_metric(tmp_path, tiny_inputs):
    result, log = run_stage(tiny_spec(tmp_path, epochs=2, eval_split="val"), tiny_inputs, tmp_path / "out")
    scores = [name for name in log.metrics if name.startswith("test_") and name != "test_questions_dropped"]
    assert not scores, "no test_* score with eval_split val (the dropped count is data, logged always)"
    for name in ("best_val_acc", "best_val_acc_what", "best_val_acc_who", "best_val_prior_acc"):
        assert name in log.metrics, f"missing final metric {name}"
    last = torch.load(tmp_path / "out" / loop.LAST, weights_only=True)
    assert log.metrics["best_val_acc"] == last["best_val"], "best.pt rescored on val reproduces its selection score"
    assert result.outputs["predictions"].name == "val_predictions.csv" and result.outputs["predictions"].is_file()
    assert not (tmp_path / "out" / "test_predictions.csv").exists()
    assert (f"; best checkpoint on val: {log.metrics['best_val_acc']:.4f} vs answer prior "
            f"{log.metrics['best_val_prior_acc']:.4f}") in result.summary


def test_rescored_best_checkpoint_that_differs_from_its_val_accuracy_fails_loudly(tmp_path, tiny_inputs, monkeypatch):
    real_fit = Trainer.fit

    def fit_then_tamper(self):
        state = real_fit(self)
        payload = torch.load(self.best_path, weights_only=True)
        for key in ("output_unit.classifier.5.weight", "output_unit.classifier.5.bias"):
            payload["state_dict"][key].zero_()  # every logit 0: always answers label 0, which no val answer has
        torch.save(payload, self.best_path)
        return state

    monkeypatch.setattr(Trainer, "fit", fit_then_tamper)
    out = tmp_path / "out"
    with pytest.raises(RescoreMismatch) as err:
        run_stage(tiny_spec(tmp_path, epochs=2, eval_split="val"), tiny_inputs, out)
    last = torch.load(out / loop.LAST, weights_only=True)
    assert last["best_val"] > 0
    assert str(err.value) == (
        f"rescoring {out / 'best.pt'} on val gives accuracy 0.0 (0/36), but training selected it at epoch "
        f"{last['best_epoch'] + 1} with val accuracy {last['best_val']!r}: best.pt is not the checkpoint training "
        f"selected, or evaluation is not deterministic on this device (train.compile, TF32). No score is reported; "
        f"rerun the train stage with --force"
    )


def test_eval_split_train_is_refused_before_training(tmp_path, tiny_inputs):
    out = tmp_path / "out"
    with pytest.raises(SpecError) as err:
        run_stage(tiny_spec(tmp_path, epochs=1, eval_split="train"), tiny_inputs, out)
    assert str(err.value) == (
        "train.eval_split is 'train', expected one of test, val: the best checkpoint is finally scored on test (the "
        "paper) or val; to score a checkpoint on train, run the evaluate stage with evaluate.split=train"
    )
    assert not (out / loop.LAST).exists(), "refused before any training"


def test_final_metric_names_import_without_torch():
    import subprocess
    import sys

    code = ("import sys; from dualvgr.train.metrics import FINAL_METRIC_PREFIX, final_metric; "
            "assert FINAL_METRIC_PREFIX == {'test': 'test_', 'val': 'best_val_'}; "
            "assert final_metric('val', 'acc_what') == 'best_val_acc_what'; print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", "the report reads the metric contract without importing PyTorch"


# --- questions whose video has no features --------------------------------------------------------------------


def test_questions_without_features_are_an_error_naming_the_file_counts_and_ids(tmp_path, tiny_inputs):
    app, mot = tiny_inputs["appearance.features"], tiny_inputs["motion.features"]
    drop_rows(app, [100, 101, 140])  # two train videos, one test video (3 questions each)
    drop_rows(mot, [125])  # one val video
    with pytest.raises(DataError) as err:
        load_inputs(tiny_spec(tmp_path), tiny_inputs, CPU)
    assert str(err.value) == (
        f"{app} (appearance features) has no row for 3 video(s) that questions name (questions per split: train 6, "
        f"val 0, test 3); first missing video ids: 100, 101, 140; {mot} (motion features) has no row for 1 video(s) "
        f"that questions name (questions per split: train 0, val 3, test 0); first missing video ids: 125. Without "
        f"dataset.allow_missing_videos those questions are not dropped: re-extract the features of the dataset the "
        f"questions come from (dualvgr appearance/motion --force), or set dataset.allow_missing_videos: true to score "
        f"without them (counted as <split>_questions_dropped and recorded as a deviation)"
    )


def test_allowed_missing_videos_drop_their_questions_and_say_how_many(tmp_path, tiny_inputs):
    drop_rows(tiny_inputs["appearance.features"], [100, 101, 140])
    spec = replace_in(tiny_spec(tmp_path, epochs=1), **{"dataset.allow_missing_videos": True})
    result, log = run_stage(spec, tiny_inputs, tmp_path / "out")
    assert {name: log.metrics[f"{name}_questions_dropped"] for name in ("train", "val", "test")} == {
        "train": 6, "val": 0, "test": 3}
    assert result.summary.endswith("; questions without features dropped: train 6, val 0, test 3")
    with open(result.outputs["predictions"]) as handle:
        assert sum(1 for _ in handle) == 1 + 36 - 3, "the test score covers the questions that have features"


# --- damaged checkpoints --------------------------------------------------------------------------------------


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path):
    path.write_bytes(b"not a checkpoint\n" * 64)


def _wrong_keys(path):
    torch.save({"epoch": 0, "weights": {}}, path)


def _missing_weight(path):
    payload = torch.load(path, weights_only=True)
    del payload["state_dict"]["output_unit.classifier.5.bias"]
    torch.save(payload, path)


def _foreign(path):
    payload = torch.load(path, weights_only=True)
    payload["fingerprint"] = "cd" * 32
    torch.save(payload, path)


DAMAGES = {
    "truncated": (_truncate, r"cannot be read: \w+: .+"),
    "garbage": (_garbage, r"cannot be read: \w+: .+"),
    "wrong_keys": (_wrong_keys, r"lacks \['format', 'config', 'state_dict', 'best_val', 'best_epoch', 'history', "
                                r"'optimizer', 'rng'\] \(keys present: \['epoch', 'weights'\]\)"),
    "missing_weight": (_missing_weight, r"weights do not fit this model: missing \['output_unit.classifier.5.bias'\], "
                                        r"unexpected \[\]"),
    "foreign": (_foreign, r"was written by another run configuration \(fingerprint cdcdcdcdcdcd, this run "
                          r"abababababab\)"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_last_pt_is_set_aside_and_the_seed_starts_fresh(tmp_path, tiny_inputs, capsys, damage):
    spec, out = tiny_spec(tmp_path, epochs=2), tmp_path / "out"
    interrupted_run(spec, tiny_inputs, out)
    spoil, reason = DAMAGES[damage]
    spoil(out / loop.LAST)
    damaged_bytes = (out / loop.LAST).read_bytes()
    capsys.readouterr()

    result, log = run_stage(spec, tiny_inputs, out)
    (moved,) = out.glob("last.pt.damaged-*")
    assert moved.read_bytes() == damaged_bytes, "the damaged file is kept, never deleted"
    stderr = capsys.readouterr().err
    assert re.search(
        rf"\[train\] {out / 'last.pt'} is damaged \({reason}\); moved aside to {moved.name}; seed 5 starts from "
        rf"scratch\n", stderr), stderr
    assert log.tags[TAG_SET_ASIDE].startswith(f"last.pt -> {moved} (")
    assert "dualvgr.resumed_from_epoch" not in log.tags
    assert log.steps["train_loss"] == [0, 1], "trained from scratch: both epochs, none replayed"
    assert (out / loop.BEST).is_file() and "test_acc" in log.metrics and result.summary


def test_last_pt_whose_best_pt_is_damaged_sets_both_aside(tmp_path, tiny_inputs, capsys):
    spec, out = tiny_spec(tmp_path, epochs=2), tmp_path / "out"
    interrupted_run(spec, tiny_inputs, out)
    _truncate(out / loop.BEST)
    _, log = run_stage(spec, tiny_inputs, out)
    (last_moved,), (best_moved,) = list(out.glob("last.pt.damaged-*")), list(out.glob("best.pt.damaged-*"))
    stderr = capsys.readouterr().err
    assert (f"{out / 'last.pt'} is damaged (its best epoch's best.pt is damaged: DataError: cannot read checkpoint "
            f"{out / 'best.pt'} with weights_only=True: ") in stderr
    assert (f"{out / 'best.pt'} is damaged (the best checkpoint of the last.pt set aside); moved aside to "
            f"{best_moved.name}; seed 5 starts from scratch") in stderr
    assert log.steps["train_loss"] == [0, 1] and "test_acc" in log.metrics


def test_last_pt_without_its_best_pt_starts_fresh(tmp_path, tiny_inputs, capsys):
    spec, out = tiny_spec(tmp_path, epochs=2), tmp_path / "out"
    interrupted_run(spec, tiny_inputs, out)
    (out / loop.BEST).unlink()
    _, log = run_stage(spec, tiny_inputs, out)
    (moved,) = out.glob("last.pt.damaged-*")
    assert (f"{out / 'last.pt'} is damaged (its best epoch 1 has no best.pt beside it); moved aside to {moved.name}; "
            f"seed 5 starts from scratch") in capsys.readouterr().err
    assert log.steps["train_loss"] == [0, 1]


def test_intact_last_pt_still_resumes(tmp_path, tiny_inputs):
    spec, out = tiny_spec(tmp_path, epochs=2), tmp_path / "out"
    interrupted_run(spec, tiny_inputs, out)
    _, log = run_stage(spec, tiny_inputs, out)
    assert log.tags["dualvgr.resumed_from_epoch"] == "0" and TAG_SET_ASIDE not in log.tags
    assert log.steps["train_loss"] == [0, 1], "epoch 1 replayed from last.pt, epoch 2 trained"
    assert not list(out.glob("*.damaged-*"))


def test_damaged_best_pt_at_scoring_is_named_and_set_aside_and_a_rerun_trains_afresh(
        tmp_path, tiny_inputs, monkeypatch, capsys):
    spec, out = tiny_spec(tmp_path, epochs=2), tmp_path / "out"
    real_fit = Trainer.fit

    def fit_then_damage(self):
        state = real_fit(self)
        _garbage(self.best_path)
        return state

    monkeypatch.setattr(Trainer, "fit", fit_then_damage)
    with pytest.raises(DataError) as err:
        run_stage(spec, tiny_inputs, out)
    (moved,) = out.glob("best.pt.damaged-*")
    last = torch.load(out / loop.LAST, weights_only=True)
    message = str(err.value)
    assert message.startswith(
        f"{out / 'best.pt'}, the best-val checkpoint of seed 5 (epoch {last['best_epoch'] + 1}), cannot be scored: "
        f"DataError: cannot read checkpoint {out / 'best.pt'} with weights_only=True: ")
    assert message.endswith(f"; moved aside to {moved.name}. last.pt cannot restore the best epoch's weights: run the "
                            f"train stage again and seed 5 trains from scratch")

    monkeypatch.setattr(Trainer, "fit", real_fit)
    capsys.readouterr()
    _, log = run_stage(spec, tiny_inputs, out)
    assert f"{out / 'last.pt'} is damaged (its best epoch {last['best_epoch'] + 1} has no best.pt beside it)" in (
        capsys.readouterr().err)
    assert log.steps["train_loss"] == [0, 1] and "test_acc" in log.metrics, "as the error said: trained afresh"


# --- registries: train.optimizer, model.graph_module ----------------------------------------------------------


def test_schema_choices_are_the_registered_ones():
    """The spec refuses a value no registry holds, and every registered value is a valid spec value."""
    assert set(typing.get_args(typing.get_type_hints(TrainSpec)["optimizer"])) == set(OPTIMIZERS)
    assert set(typing.get_args(typing.get_type_hints(ModelSpec)["graph_module"])) == set(GRAPH_MODULES)


def test_adam_is_the_originals_adam_fused():
    optimizer = build_optimizer("adam", [torch.nn.Parameter(torch.zeros(2))], 1e-4)
    assert isinstance(optimizer, torch.optim.Adam)
    assert {k: optimizer.defaults[k] for k in ("lr", "betas", "eps", "weight_decay", "amsgrad", "fused")} == {
        "lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False, "fused": True}


def test_unknown_optimizer_lists_the_registered_ones():
    with pytest.raises(SpecError) as err:
        build_optimizer("sgd", [torch.nn.Parameter(torch.zeros(2))], 1e-4)
    assert str(err.value) == (
        "train.optimizer is 'sgd'; registered optimizers: adam (dualvgr.train.optimizers.OPTIMIZERS)")


def test_a_registered_optimizer_is_what_train_optimizer_selects(tmp_path, tiny_inputs, monkeypatch):
    monkeypatch.setitem(OPTIMIZERS, "toy-sgd", lambda parameters, lr: torch.optim.SGD(parameters, lr=lr))
    spec = tiny_spec(tmp_path)
    spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, optimizer="toy-sgd"))
    recipe = recipe_from(spec, CPU)
    inputs = load_inputs(spec, tiny_inputs, CPU)
    trainer = Trainer(build_model(spec, inputs), recipe, inputs.train, inputs.val, inputs.features, tmp_path, CPU,
                      progress=False)
    assert recipe.optimizer == "toy-sgd" and type(trainer.optimizer) is torch.optim.SGD


class ToyGraph(torch.nn.Module):
    """A registered graph layer from outside the package: a per-node linear map."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.proj = torch.nn.Linear(dim, dim)

    def forward(self, x, score):
        return self.proj(x)


def test_a_registered_graph_module_is_what_model_graph_module_builds(tmp_path, tiny_inputs, monkeypatch):
    monkeypatch.setitem(GRAPH_MODULES, "toy", ToyGraph)
    spec = tiny_spec(tmp_path)
    spec = dataclasses.replace(spec, model=dataclasses.replace(spec.model, graph_module="toy"))
    model = build_model(spec, load_inputs(spec, tiny_inputs, CPU))
    units = model.visual_input_unit
    assert model.config.graph_module == "toy", "the config carries it, so checkpoints describe themselves"
    assert all(isinstance(m, ToyGraph) for group in (units.appearance_GCN, units.motion_GCN, units.acGCN,
                                                     units.mcGCN) for m in group)
    out = model.eval()(torch.randn(2, 3, 2, 16), torch.randn(2, 3, 16), torch.tensor([[2, 3], [8, 5]]),
                       torch.tensor([2, 2]))
    assert out.logits.shape == (2, 9) and torch.isfinite(out.logits).all()


def test_spec_graph_module_reaches_the_model_config(tmp_path, tiny_inputs):
    spec = tiny_spec(tmp_path)
    assert build_model(spec, load_inputs(spec, tiny_inputs, CPU)).config.graph_module == spec.model.graph_module
