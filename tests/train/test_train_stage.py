"""The train and evaluate stages through the runner on a tiny real pipeline (synthetic videos, real backbones)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from dualvgr.core.errors import DataError
from dualvgr.core.runner import Runner
from dualvgr.core.spec import replace_in, spec_from_dict
from dualvgr.core.tracking import TAG_DEVIATION_PREFIX
from dualvgr.pipeline import all_stages
from dualvgr.train.inputs import load_inputs
from tests.train.conftest import make_inputs, tiny_spec

CONTRACT_EPOCH = ["train_loss", "train_loss_ce", "train_loss_common", "train_loss_dependence", "train_acc", "val_acc",
                  "lr", "epoch_seconds", "train_samples_per_second"]
CONTRACT_FINAL = ["best_val_acc", "best_epoch", "test_acc", "test_prior_acc"]


def pipeline_spec(root, **train):
    values = {"epochs": 2, "batch_size": 16, "lr": 1e-3, "workers": 0, "preload": True, "device": "cpu"}
    values.update(train)
    return spec_from_dict({
        "name": "stage-test",
        "dataset": {"kind": "synthetic", "root": str(root / "data"),
                    "synthetic": {"num_videos": 20, "frames": 12, "fps": 6, "width": 48, "height": 36,
                                  "questions_per_video": 6}},
        "features": {"num_clips": 2, "workers": 0, "allow_random_weights": True,
                     "appearance": {"weights": "random", "frames_per_clip": 2, "image_size": 32},
                     "motion": {"weights": "random", "frames_per_clip": 4, "image_size": 16, "sample_size": 16}},
        "questions": {"glove": "none"},
        "model": {"module_dim": 32},
        "train": values,
        "tracking": {"outputs": str(root / "outputs"), "tensorboard_dir": str(root / "tb")},
    })


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tracking_uri):
    from dualvgr.core.tracking import Tracker

    root = tmp_path_factory.mktemp("pipeline")
    tracker = Tracker(tracking_uri)
    runner = Runner(all_stages(), tracker, progress=False, echo=False)
    spec = pipeline_spec(root)
    (record,) = runner.run("train", spec)
    return runner, tracker, spec, record


def test_train_run_logs_the_contract(trained):
    _, tracker, spec, record = trained
    run = tracker.client.get_run(record.run_id)
    assert run.info.status == "FINISHED"
    for name in CONTRACT_EPOCH:
        history = tracker.client.get_metric_history(record.run_id, name)
        assert [m.step for m in history] == [0, 1], f"{name} must be logged once per epoch"
    for name in CONTRACT_FINAL:
        assert name in run.data.metrics, f"missing final metric {name}"
    for split in ("train", "val", "test"):
        assert run.data.metrics[f"{split}_questions_dropped"] == 0, "dropped questions are logged always"
    for name, value in run.data.metrics.items():
        if name.endswith("_acc") or "_acc_" in name:
            assert 0.0 <= value <= 1.0, f"{name}={value} is not a fraction"
    tags = run.data.tags
    for stage in ("data", "appearance", "motion", "questions"):
        assert tags[f"dualvgr.upstream.{stage}"], f"upstream {stage} run id missing"
    assert tags["dualvgr.device"] == "cpu" and tags["dualvgr.precision"] == "fp32"
    artifacts = {a.path for a in tracker.client.list_artifacts(record.run_id)}
    assert {"spec.yaml", "tensorboard", "outputs", "outputs.json"} <= artifacts
    logged = {a.path for a in tracker.client.list_artifacts(record.run_id, "outputs")}
    assert {"outputs/best.pt", "outputs/last.pt", "outputs/test_predictions.csv"} <= logged, logged
    recorded = json.loads(run.data.tags["dualvgr.outputs"])
    assert len(recorded["best"]["sha256"]) == 64, "outputs are recorded with their sha256"
    assert run.data.tags["dualvgr.input_fingerprint"], "the input fingerprint is a tag"
    events = list(Path(spec.tracking.tensorboard_dir).rglob("events.out.tfevents*"))
    assert events, "TensorBoard event files must be written where `tensorboard --logdir` finds them"


def test_predictions_file(trained):
    _, _, _, record = trained
    with open(record.outputs["predictions"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and set(rows[0]) == {"question_id", "video_id", "question", "answer", "prediction", "type", "correct"}
    assert rows[0]["question"].endswith("?") and rows[0]["type"] in {"what", "who", "how", "when", "where", "other"}


def test_checkpoint_is_self_describing(trained):
    _, _, spec, record = trained
    payload = torch.load(record.outputs["best"], weights_only=True)
    assert payload["config"]["unit_layers"] == spec.model.unit_layers, "unit_layers recorded (B17)"
    assert payload["config"]["num_clips"] == spec.features.num_clips
    assert payload["spec_hash"] and payload["vocabulary"]["answer_token_to_idx"]["<UNK1>"] == 1


def test_second_train_is_a_cache_hit(trained):
    runner, _, spec, record = trained
    (again,) = runner.run("train", spec)
    assert again.cache_hit and again.run_id == record.run_id


def test_evaluate_best_reproduces_the_test_score(trained):
    runner, tracker, spec, record = trained
    (evaluation,) = runner.run("evaluate", spec)
    metrics = tracker.client.get_run(evaluation.run_id).data.metrics
    train_metrics = tracker.client.get_run(record.run_id).data.metrics
    assert metrics["test_acc"] == pytest.approx(train_metrics["test_acc"])
    assert metrics["test_prior_acc"] == pytest.approx(train_metrics["test_prior_acc"])


def test_evaluate_an_original_format_checkpoint(trained, tmp_path):
    """A file as the original train.py saves it: DataParallel 'module.' keys, model_kwargs without unit_layers."""
    runner, tracker, spec, record = trained
    ours = torch.load(record.outputs["best"], weights_only=True)
    original = {
        "epoch": 1,
        "state_dict": {f"module.{k}": v for k, v in ours["state_dict"].items()},
        "optimizer": {},
        "model_kwargs": {"vision_dim": 2048, "module_dim": 32, "word_dim": 300, "num_of_nodes": 2,
                         "graph_module": "GAT", "graph_layers": 1},
    }
    path = tmp_path / "DualVGR12021-01-24_Sunday_10:08:22_model.pt"
    torch.save(original, path)
    # Same questions stage, so its vocab.json is the one these weights were trained with.
    eval_spec = replace_in(spec, **{"evaluate.checkpoint": str(path)})
    (evaluation,) = runner.run("evaluate", eval_spec)
    run = tracker.client.get_run(evaluation.run_id)
    assert run.data.tags["dualvgr.checkpoint.format"] == "original"
    assert run.data.tags["dualvgr.checkpoint.unit_layers"] == "2", "U inferred from the weights (B17)"
    train_acc = tracker.client.get_run(record.run_id).data.metrics["test_acc"]
    assert run.data.metrics["test_acc"] == pytest.approx(train_acc)


def test_evaluate_refuses_a_checkpoint_with_another_vocabulary(trained, tmp_path):
    runner, _, spec, record = trained
    payload = torch.load(record.outputs["best"], weights_only=True)
    table = dict(payload["vocabulary"]["question_token_to_idx"])
    first, second = [token for token, index in table.items() if index in (2, 3)]
    table[first], table[second] = table[second], table[first]  # same size, rows reordered (another nltk, B8)
    payload["vocabulary"]["question_token_to_idx"] = table
    path = tmp_path / "conflict.pt"
    torch.save(payload, path)
    with pytest.raises(DataError, match="another vocabulary"):
        runner.run("evaluate", replace_in(spec, **{"evaluate.checkpoint": str(path)}))


def test_eval_split_val_is_a_recorded_deviation(trained):
    runner, tracker, spec, _ = trained
    (record,) = runner.run("train", replace_in(spec, **{"train.eval_split": "val", "train.epochs": 1}))
    run = tracker.client.get_run(record.run_id)
    assert run.data.tags[TAG_DEVIATION_PREFIX + "eval_split"] == "val"
    assert "best_val_prior_acc" in run.data.metrics and "test_acc" not in run.data.metrics
    assert record.outputs["predictions"].name == "val_predictions.csv"


def test_b20_training_refuses_32768_wide_motion_features(tmp_path):
    paths = make_inputs(tmp_path / "in", videos=8, dim=2048, motion_width=32768)
    spec = replace_in(tiny_spec(tmp_path), **{"model.vision_dim": 2048})
    with pytest.raises(DataError) as err:
        load_inputs(spec, paths, torch.device("cpu"))
    message = str(err.value)
    assert "32768" in message and "112" in message and "mot.h5" in message


def test_b28_training_refuses_features_with_other_clip_counts(tmp_path):
    paths = make_inputs(tmp_path / "in", videos=8, clips=4)
    with pytest.raises(DataError, match="4 clips"):
        load_inputs(tiny_spec(tmp_path), paths, torch.device("cpu"))
