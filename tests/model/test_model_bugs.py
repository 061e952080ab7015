"""One test per original bug the model guards against (``dualvgr-original.md`` §5), named after its number."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import dualvgr.model
import dualvgr.model.linguistic as linguistic
from dualvgr.core.errors import DataError, HarnessError
from dualvgr.model import dualvgr_loss, load_original_checkpoint, load_model_checkpoint, model_checkpoint

MODEL_SOURCES = sorted(Path(dualvgr.model.__file__).parent.glob("*.py"))


def test_b2_b4_b6_no_device_or_adjacency_state(tiny_model, make_inputs, run):
    """No hard-coded device, no adjacency tensor (neither in the state_dict nor as a plain attribute that
    .to() would not move), no sparse constructor; the whole model and loss follow .to(dtype)."""
    for path in MODEL_SOURCES:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""["']cuda:\d|\.cuda\(\)|torch\.sparse\.FloatTensor""", text), f"{path.name}: B2/B6"
    model = tiny_model()
    assert not [k for k in model.state_dict() if "adj" in k], "the adjacency must not be in the state_dict (B2)"
    for name, module in model.named_modules():
        plain = [k for k, v in vars(module).items() if isinstance(v, torch.Tensor)]
        assert not plain, f"{name or 'model'} holds tensors {plain} that .to() would not move (B2)"
    model = model.to(torch.float64).train()
    inputs = make_inputs(model.config)
    inputs = {k: v.double() if v.is_floating_point() else v for k, v in inputs.items()}
    out = run(model, inputs)
    losses = dualvgr_loss(out, inputs["answers"], 1.0, 1e-8)
    assert out.logits.dtype == losses["dependence"].dtype == torch.float64, "R is built in the input's dtype (B4)"
    losses["total"].backward()


def test_b3_lengths_are_packed_on_the_cpu(tiny_model, make_inputs, run, monkeypatch):
    seen = []
    original = linguistic.pack_padded_sequence

    def spy(data, lengths, *args, **kwargs):
        seen.append((lengths.device.type, lengths.dtype))
        return original(data, lengths, *args, **kwargs)

    monkeypatch.setattr(linguistic, "pack_padded_sequence", spy)
    model = tiny_model()
    inputs = make_inputs(model.config, batch=3)
    inputs["question_len"] = inputs["question_len"].to(torch.int32)  # any integer dtype is accepted
    run(model, inputs)
    assert seen == [("cpu", torch.int64)], f"pack_padded_sequence got lengths {seen}; it needs CPU int64 (B3)"
    for bad, why in ((0, "empty questions cannot be packed"), (9, r"lengths must be in 1\.\.5")):
        broken = dict(inputs, question_len=inputs["question_len"].clone())
        broken["question_len"][1] = bad
        with pytest.raises(DataError, match=why):
            run(model, broken)


def _gat_calls(model) -> list[int]:
    calls: list[int] = []
    for k, gat in enumerate(model.visual_input_unit.appearance_GCN):
        gat.register_forward_hook(lambda *_, k=k: calls.append(k))
    return calls


@pytest.mark.parametrize("units", [2, 3])
def test_b11_graph_index(units, tiny_model, make_inputs, run):
    """Unit u, layer j uses graph module u*G+j: every module is used once. The original's u+j (kept behind
    original_graph_indexing for checkpoints trained with G > 1) shares modules and never uses U*G-1."""
    g = 2
    model = tiny_model(unit_layers=units, graph_layers=g).train()
    calls = _gat_calls(model)
    inputs = make_inputs(model.config)
    dualvgr_loss(run(model, inputs), inputs["answers"], 1.0, 1e-8)["total"].backward()
    assert calls == list(range(units * g)), f"module order {calls}, expected u*G+j = {list(range(units * g))}"
    assert all(p.grad is not None for p in model.parameters())

    original = tiny_model(unit_layers=units, graph_layers=g, original_graph_indexing=True).train()
    calls = _gat_calls(original)
    dualvgr_loss(run(original, inputs), inputs["answers"], 1.0, 1e-8)["total"].backward()
    assert calls == [u + j for u in range(units) for j in range(g)], f"original indexing replays u+j, got {calls}"
    unused = units * g - 1
    for name in ("appearance_GCN", "motion_GCN", "acGCN", "mcGCN"):
        module = getattr(original.visual_input_unit, name)[unused]
        assert all(p.grad is None for p in module.parameters()), f"{name}.{unused} is never used by u+j"
    same = tiny_model(unit_layers=units, original_graph_indexing=True).eval()  # G=1: both agree
    torch.testing.assert_close(run(same, inputs).logits, run(tiny_model(unit_layers=units).eval(), inputs).logits)


def test_b17_unit_layers_is_honoured_and_recorded(tiny_model, tmp_path):
    for units in (1, 3):
        model = tiny_model(unit_layers=units)
        assert len(model.visual_input_unit.queryAttn) == units, "unit_layers reaches the model (B17)"
        assert load_original_checkpoint(model.state_dict()).config.unit_layers == units, "U is inferred from keys"
        torch.save(model_checkpoint(model), tmp_path / "ckpt.pt")
        assert load_model_checkpoint(tmp_path / "ckpt.pt")[0].config.unit_layers == units, "U is recorded"


def _raises_before_any_matmul(model, inputs, run, match: str) -> None:
    counter = FlopCounterMode(display=False)
    with counter, pytest.raises(DataError, match=match):
        run(model, inputs)
    assert counter.get_total_flops() == 0, "the check must come before any matrix multiply"


def test_b20_motion_width_guard(tiny_model, make_inputs, run):
    model = tiny_model(vision_dim=2048, module_dim=8)
    inputs = make_inputs(model.config, batch=1)
    inputs["motion"] = torch.randn(1, 3, 32768)
    _raises_before_any_matmul(
        model, inputs, run,
        "motion features are 32768 wide, expected 2048: frames were 224×224 but the 3D ResNeXt pools with a "
        "fixed 4×4 kernel sized for 112×112 — re-extract with motion.image_size: 112",
    )
    inputs["motion"] = torch.randn(1, 3, 1024)
    _raises_before_any_matmul(model, inputs, run, "motion features are 1024 wide, expected 2048")
    inputs["motion"] = torch.randn(1, 3, 2048)
    inputs["appearance"] = torch.randn(1, 3, 4, 512)
    _raises_before_any_matmul(model, inputs, run, "appearance features are 512 wide, expected 2048")
    assert issubclass(DataError, HarnessError)


def test_b28_clip_and_frame_counts_must_match_the_model(tiny_model, make_inputs, run):
    model = tiny_model(num_clips=3, frames_per_clip=4)
    _raises_before_any_matmul(
        model, make_inputs(model.config, clips=5), run,
        "features have 5 clips per video, the model was built for num_clips=3 graph nodes",
    )
    _raises_before_any_matmul(model, make_inputs(model.config, frames=6), run, "6 frames per clip, .*frames_per_clip=4")
    inputs = make_inputs(model.config)
    inputs["motion"] = inputs["motion"][:, :2]
    _raises_before_any_matmul(model, inputs, run, "batch and clip counts must agree")
    unchecked = tiny_model(num_clips=None, frames_per_clip=None)  # original checkpoints: N is not in the weights
    inputs = make_inputs(unchecked.config, clips=7, frames=2)
    out = run(unchecked, inputs)
    assert out.logits.shape == (2, 7) and out.common_appearance[0].shape[1] == 7, "any N works: complete graph"
    assert torch.isfinite(dualvgr_loss(out, inputs["answers"], 1.0, 1e-8)["total"]), "HSIC's R follows N"


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_b29_batch_of_one(mode, tiny_model, make_inputs, run):
    model = tiny_model().train(mode == "train")
    bn = model.output_unit.classifier[3]
    before = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
    inputs = make_inputs(model.config, batch=1)
    out = run(model, inputs)
    losses = dualvgr_loss(out, inputs["answers"], 1.0, 1e-8)
    losses["total"].backward()
    assert out.logits.shape == (1, model.config.answer_vocab_size) and torch.isfinite(losses["total"])
    after = (bn.running_mean, bn.running_var, int(bn.num_batches_tracked))
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1]) and before[2] == after[2], (
        "a single-sample batch is normalised with the running statistics and does not update them"
    )


def test_b31_glove_is_copied_with_a_shape_check(tiny_model):
    model = tiny_model()
    weight = model.linguistic_input_unit.encoder_embed.weight
    with pytest.raises(DataError, match=r"GloVe matrix has shape \(12, 6\), the question embedding is \(11, 6\)"):
        model.load_glove(np.zeros((12, 6), dtype=np.float32))
    with pytest.raises(DataError, match=r"has shape \(11, 300\)"):
        model.load_glove(torch.zeros(11, 300))
    with pytest.raises(DataError, match="finite floating-point"):
        model.load_glove(torch.full((11, 6), float("nan")))
    glove = np.random.default_rng(0).standard_normal((11, 6))  # float64, as a pickle would hold
    model.load_glove(glove)
    assert model.linguistic_input_unit.encoder_embed.weight is weight, "copied into the parameter, not replaced"
    assert weight.requires_grad and weight.dtype == torch.float32, "still a trainable float32 parameter"
    torch.testing.assert_close(weight.detach(), torch.as_tensor(glove, dtype=torch.float32))
