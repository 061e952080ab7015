"""The training recipe: lr schedule, clipping, best-checkpoint selection, resume, guards, batch of one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dualvgr.train import loop
from dualvgr.train.inputs import load_inputs
from dualvgr.train.loop import TrainingDiverged, Trainer
from dualvgr.train.metrics import accuracies, prior_predictions
from dualvgr.train.schedule import lr_for_epoch
from dualvgr.train.stage import build_model, recipe_from
from tests.train.conftest import tiny_spec

CPU = torch.device("cpu")


def make_trainer(spec, paths, out_dir, **kwargs) -> Trainer:
    inputs = load_inputs(spec, paths, CPU)
    model = build_model(spec, inputs)
    return Trainer(model, recipe_from(spec, CPU), inputs.train, inputs.val, inputs.features, out_dir, CPU,
                   progress=False, **kwargs)


def test_lr_schedule_halves_after_every_tenth_epoch():
    lrs = [lr_for_epoch(1e-4, epoch, 10, 0.5) for epoch in range(25)]
    assert lrs[:10] == [1e-4] * 10 and lrs[10:20] == [5e-5] * 10 and lrs[20:] == [2.5e-5] * 5


def test_trainer_logs_the_lr_each_epoch_trained_with(tmp_path, tiny_inputs):
    spec = tiny_spec(tmp_path, epochs=5, lr_decay_every=2, lr=1e-3)
    logged = {}
    make_trainer(spec, tiny_inputs, tmp_path, on_epoch=lambda e, m: logged.update({e: m["lr"]})).fit()
    assert logged == pytest.approx({0: 1e-3, 1: 1e-3, 2: 5e-4, 3: 5e-4, 4: 2.5e-4})


def test_global_gradient_clipping(tmp_path, tiny_inputs, monkeypatch):
    spec = tiny_spec(tmp_path, epochs=1, grad_clip=0.01)
    seen = []
    original = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        before = original(parameters, max_norm, *args, **kwargs)
        after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters if p.grad is not None]))
        seen.append((max_norm, float(before), float(after)))
        return before

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    make_trainer(spec, tiny_inputs, tmp_path).fit()
    assert seen, "clip_grad_norm_ was never called"
    assert all(max_norm == 0.01 for max_norm, _, _ in seen)
    assert all(after <= 0.01 * 1.001 for _, _, after in seen), seen[:3]
    assert any(before > 0.01 for _, before, _ in seen), "the test must exercise clipping"


def test_best_checkpoint_is_strictly_better(tmp_path, tiny_inputs, monkeypatch):
    spec = tiny_spec(tmp_path, epochs=4)
    scripted = iter([0.5, 0.7, 0.7, 0.6])

    def fake_evaluate(*args, **kwargs):
        return {"acc": next(scripted)}, None

    monkeypatch.setattr(loop, "evaluate", fake_evaluate)
    state = make_trainer(spec, tiny_inputs, tmp_path).fit()
    assert (state.best_epoch, state.best_val) == (1, 0.7), "a tie (epoch 2) must not replace the best"
    best = torch.load(tmp_path / loop.BEST, weights_only=True)
    assert best["epoch"] == 1 and best["val_acc"] == 0.7
    last = torch.load(tmp_path / loop.LAST, weights_only=True)
    assert last["epoch"] == 3 and len(last["history"]) == 4


def test_resume_after_interruption_matches_uninterrupted(tmp_path, tiny_inputs):
    spec = tiny_spec(tmp_path, epochs=3)
    full = make_trainer(spec, tiny_inputs, tmp_path / "full")
    full_state = full.fit()

    with pytest.raises(KeyboardInterrupt):
        make_trainer(spec, tiny_inputs, tmp_path / "cut", stop_after_epoch=0).fit()
    replayed = []
    resumed = make_trainer(spec, tiny_inputs, tmp_path / "cut", on_epoch=lambda e, m: replayed.append(e))
    assert resumed.resume(), "last.pt of the interrupted run must be found"
    state = resumed.fit()
    assert replayed == [0, 1, 2], "the resumed run re-logs the finished epoch, then trains the rest"
    for a, b in zip(full_state.history, state.history):
        for key in ("train_loss", "train_acc", "val_acc"):
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-7), (key, a[key], b[key])
    full_weights = full.model.state_dict()
    for name, value in resumed.model.state_dict().items():
        torch.testing.assert_close(value, full_weights[name], rtol=1e-6, atol=1e-7, msg=lambda m: f"{name}: {m}")


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_inputs, monkeypatch):
    spec = tiny_spec(tmp_path, epochs=3)
    real_loss = loop.dualvgr_loss
    calls = {"n": 0}
    trainer = make_trainer(spec, tiny_inputs, tmp_path)
    steps_per_epoch = -(-len(trainer.train) // spec.train.batch_size)

    def poisoned(output, answers, alpha, beta):
        calls["n"] += 1
        losses = real_loss(output, answers, alpha, beta)
        if calls["n"] > steps_per_epoch:  # second epoch
            losses = {k: v * float("nan") for k, v in losses.items()}
        return losses

    monkeypatch.setattr(loop, "dualvgr_loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"became nan at epoch 2") as err:
        trainer.fit()
    assert "last.pt" in str(err.value)
    last = torch.load(tmp_path / loop.LAST, weights_only=True)
    assert last["epoch"] == 0, "the checkpoint of the last good epoch must stay"
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_b29_batch_of_one(tmp_path, tiny_inputs):
    """A final training batch of one sample and evaluation one question at a time both work."""
    spec = tiny_spec(tmp_path, epochs=1)
    trainer = make_trainer(spec, tiny_inputs, tmp_path)
    size = len(trainer.train)
    spec = tiny_spec(tmp_path, epochs=1, batch_size=size - 1)
    trainer = make_trainer(spec, tiny_inputs, tmp_path / "one")
    trainer.fit()
    scores, predictions = loop.evaluate(trainer.model, trainer.val, trainer.features, 1, CPU)
    assert len(predictions) == len(trainer.val) and 0.0 <= scores["acc"] <= 1.0


def test_b19_absent_question_type_is_absent_not_a_crash():
    result = accuracies(np.array([1, 2, 3]), np.array([1, 2, 0]), np.array(["what", "what", "other"]))
    assert result == {"acc": pytest.approx(2 / 3), "acc_what": 1.0}
    assert accuracies(np.array([]), np.array([]), np.array([])) == {}


def test_prior_baseline_uses_the_most_frequent_train_answer_per_type():
    train_answers = np.array([5, 5, 6, 7, 7, 7, 8])
    train_types = np.array(["what", "what", "what", "who", "who", "how", "how"])
    assert prior_predictions(train_answers, train_types, np.array(["what", "who", "how", "when"])).tolist() == [
        5, 7, 7, 7], "ties go to the first seen (how: 7 before 8); unseen types get the overall mode"


def test_streaming_and_preloaded_features_agree(tmp_path, tiny_inputs):
    preloaded = load_inputs(tiny_spec(tmp_path, preload=True), tiny_inputs, CPU)
    streamed = load_inputs(tiny_spec(tmp_path, preload=False, workers=0), tiny_inputs, CPU)
    order = torch.arange(len(preloaded.val))
    from dualvgr.train.data import iterate_batches

    a = list(iterate_batches(preloaded.val, preloaded.features, order, 7))
    b = list(iterate_batches(streamed.val, streamed.features, order, 7))
    assert len(a) == len(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x.appearance, y.appearance)
        torch.testing.assert_close(x.motion, y.motion)
        assert torch.equal(x.questions, y.questions) and torch.equal(x.answers, y.answers)


def test_streaming_with_worker_processes(tmp_path, tiny_inputs):
    """B15: each worker opens the HDF5 files once and reads whole batches."""
    inputs = load_inputs(tiny_spec(tmp_path, preload=False), tiny_inputs, CPU)
    from dualvgr.train.data import iterate_batches

    batches = list(iterate_batches(inputs.train, inputs.features, torch.arange(len(inputs.train)), 10, workers=2))
    assert sum(len(b.answers) for b in batches) == len(inputs.train)
    assert batches[0].appearance.shape == (10, 3, 2, 16)


def test_permuted_control_moves_features_between_videos(tmp_path, tiny_inputs):
    plain = load_inputs(tiny_spec(tmp_path), tiny_inputs, CPU).features
    shuffled = load_inputs(tiny_spec(tmp_path, permute_visual=True), tiny_inputs, CPU).features
    app_plain, app_shuffled = plain.memory[0], shuffled.memory[0]
    same = [torch.equal(app_plain[i], app_shuffled[i]) for i in range(len(app_plain))]
    assert not any(same), "every video must get another video's features"
    assert sorted(app_plain.sum(dim=(1, 2, 3)).tolist()) == pytest.approx(sorted(app_shuffled.sum(dim=(1, 2, 3)).tolist()))


def test_grad_clip_null_trains_without_clipping(tmp_path, tiny_inputs, monkeypatch):
    spec = tiny_spec(tmp_path, epochs=1, grad_clip=None)
    calls = []
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda *args, **kwargs: calls.append(args))
    state = make_trainer(spec, tiny_inputs, tmp_path).fit()
    assert spec.train.grad_clip is None and state.epoch == 0, "train.grad_clip: null must train its epoch"
    assert calls == [], "train.grad_clip: null means no clipping, yet clip_grad_norm_ was called"
