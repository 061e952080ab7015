"""The embedded demo learns from the video: trained vs answer prior vs a control with permuted visual features.

Runs `experiments/demo.yaml` as shipped (its outputs redirected to a temporary folder): data, both feature
stages, questions, then training twice on the same cached upstream stages.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dualvgr.core.runner import Runner
from dualvgr.core.spec import load_spec, replace_in
from dualvgr.pipeline import all_stages

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_beats_the_answer_prior_only_with_the_real_video(tmp_path, tracker):
    spec = load_spec(REPO / "experiments" / "demo.yaml", [
        f"dataset.root={tmp_path / 'data'}", f"tracking.outputs={tmp_path / 'outputs'}",
        f"tracking.tensorboard_dir={tmp_path / 'tb'}"])
    runner = Runner(all_stages(), tracker, progress=False, echo=False)
    (trained,) = runner.run("train", spec)
    (control,) = runner.run("train", replace_in(spec, **{"train.permute_visual": True}))
    metrics = tracker.client.get_run(trained.run_id).data.metrics
    permuted = tracker.client.get_run(control.run_id).data.metrics
    gain = metrics["test_acc"] - metrics["test_prior_acc"]
    control_gain = permuted["test_acc"] - permuted["test_prior_acc"]
    summary = (f"trained {metrics['test_acc']:.3f}, permuted control {permuted['test_acc']:.3f}, "
               f"answer prior {metrics['test_prior_acc']:.3f}")
    assert gain >= 0.15, f"the demo must beat the answer prior by 0.15: {summary}"
    assert control_gain < 0.15, f"with other videos' features the model must not: {summary}"
    assert metrics["test_acc"] - permuted["test_acc"] >= 0.1, f"the video must matter: {summary}"
