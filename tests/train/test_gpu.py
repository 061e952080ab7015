"""The CUDA path of training (skipped without a GPU; `benchmarks/gpu_check.sh` runs these on a GPU machine).

No MLflow here, so the checks run where only PyTorch is installed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dualvgr.train.build import build_model, recipe_from
from dualvgr.train.inputs import load_inputs
from dualvgr.train.loop import Trainer, predict
from tests.train.conftest import tiny_spec

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_on_cuda_with_resident_features(tmp_path, tiny_inputs, precision):
    spec = tiny_spec(tmp_path, device="cuda", preload=False, precision=precision, epochs=2)
    inputs = load_inputs(spec, tiny_inputs, CUDA)
    assert inputs.features.preloaded and inputs.features.memory[0].is_cuda, "features fit: they live on the GPU"
    model = build_model(spec, inputs).to(CUDA)
    trainer = Trainer(model, recipe_from(spec, CUDA), inputs.train, inputs.val, inputs.features, tmp_path, CUDA,
                      progress=False)
    state = trainer.fit()
    assert len(state.history) == 2 and all(np.isfinite(h["train_loss"]) for h in state.history)
    assert (tmp_path / "best.pt").is_file()


def test_cuda_predictions_match_cpu(tmp_path, tiny_inputs):
    """Eval-mode predictions agree across devices with TF32 off (B40)."""
    from dualvgr.core.device import set_tf32

    set_tf32(False)
    spec = tiny_spec(tmp_path)
    cpu_inputs = load_inputs(spec, tiny_inputs, torch.device("cpu"))
    model = build_model(spec, cpu_inputs)
    model.eval()
    cpu = predict(model, cpu_inputs.val, cpu_inputs.features, 16, torch.device("cpu"))
    gpu_inputs = load_inputs(tiny_spec(tmp_path, device="cuda"), tiny_inputs, CUDA)
    gpu = predict(model.to(CUDA), gpu_inputs.val, gpu_inputs.features, 16, CUDA)
    assert (cpu == gpu).mean() >= 0.98, f"CPU and GPU disagree on {(cpu != gpu).sum()} of {len(cpu)} questions"
