"""Golden test against the original DualVGR (``../shared/fixtures/original_dualvgr_small.pt``) and the
Appendix A key list of ``../shared/reference/dualvgr-original.md``. Both skip where ``../shared`` is absent.

Tolerances are the issue's: logits atol 1e-5; ce, common, dependence, total rtol 1e-5; gradient norm rtol 1e-4.
The golden checks run with 2 intra-op threads, the setting the fixture was computed with: the original's float32
HSIC (``K = X X^T``, then centring) cancels heavily, so its value carries ~1e-3 relative rounding error that
depends on the GEMM kernels' blocking, i.e. on the thread count. Measured with this code: 1.6e-7 from the
fixture with 2 threads, 2.0e-3 with 1 thread, 2.1e-3 on an H200 host's CPU, while the float64 HSIC of the same
embeddings moves by ~1e-6. ``test_golden_dependence_is_float32_rounding_elsewhere`` pins that explanation.
"""

from __future__ import annotations

import re

import pytest
import torch

from dualvgr.model import DualVGR, DualVGRConfig, dualvgr_loss, load_original_checkpoint
from tests.conftest import shared_file

FIXTURE = "fixtures/original_dualvgr_small.pt"


@pytest.fixture(scope="module")
def golden():
    return torch.load(shared_file(FIXTURE), map_location="cpu", weights_only=True)


# Relative tolerance per loss term against the original's numbers.
LOSS_RTOL = {"ce": 1e-5, "common": 1e-5, "dependence": 1e-5, "total": 1e-5}
FIXTURE_THREADS = 2


@pytest.fixture(autouse=True)
def _fixture_threads():
    """Run as the fixture was computed (see the module docstring); the package conftest sets 1 thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(FIXTURE_THREADS)
    yield
    torch.set_num_threads(previous)


def _check_against(model: DualVGR, golden) -> None:
    inputs, expected, meta = golden["inputs"], golden["expected"], golden["meta"]
    assert not model.training, "load_original_checkpoint must return the model in eval mode"
    out = model(inputs["appearance"], inputs["motion"], inputs["question"], inputs["question_len"])
    torch.testing.assert_close(
        out.logits, expected["logits"], atol=1e-5, rtol=0,
        msg=lambda m: f"eval-mode logits differ from the original: {m}",
    )
    losses = dualvgr_loss(out, inputs["answers"], meta["alpha"], meta["beta"])
    for ours, theirs in (("ce", "ce"), ("common", "common_loss"), ("dependence", "dependence_loss"), ("total", "loss")):
        torch.testing.assert_close(
            losses[ours], expected[theirs], rtol=LOSS_RTOL[ours], atol=0,
            msg=lambda m, o=ours: f"loss term '{o}' differs from the original's: {m}",
        )
    model.zero_grad(set_to_none=True)
    losses["total"].backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads), "every parameter of the original model receives a gradient (G=1)"
    grad_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    torch.testing.assert_close(
        grad_norm, expected["grad_norm"], rtol=1e-4, atol=0, msg=lambda m: f"global gradient norm differs: {m}"
    )


def test_golden_original_state_dict(golden):
    model = load_original_checkpoint(golden["state_dict"])
    meta = golden["meta"]
    c = model.config
    assert (c.module_dim, c.vision_dim, c.word_dim) == (meta["module_dim"], meta["vision_dim"], meta["word_dim"])
    assert (c.question_vocab_size, c.answer_vocab_size) == (meta["question_vocab_size"], meta["answer_vocab_size"])
    assert (c.unit_layers, c.graph_layers) == (meta["unit_layers"], meta["graph_layers"])
    _check_against(model, golden)


def test_golden_original_file_with_wrapper_and_prefix(golden, tmp_path):
    """A file as train.py writes it under DataParallel: {'epoch', 'state_dict' ('module.'-prefixed), ...}."""
    meta = golden["meta"]
    path = tmp_path / "DualVGR1_model.pt"
    torch.save(
        {
            "epoch": 7,
            "state_dict": {f"module.{k}": v for k, v in golden["state_dict"].items()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": list(range(200))}]},
            "model_kwargs": {"vision_dim": 2048, "module_dim": meta["module_dim"], "word_dim": 300,
                             "num_of_nodes": meta["num_of_nodes"], "graph_module": "GAT", "graph_layers": 1},
        },
        path,
    )
    model = load_original_checkpoint(path)
    assert model.config.num_clips == meta["num_of_nodes"], "num_clips comes from model_kwargs['num_of_nodes']"
    _check_against(model, golden)


def _appendix_a(text: str) -> list[tuple[str, tuple]]:
    block = text.split("## Appendix A", 1)[1].split("```", 2)[1]
    entries = []
    for line in block.strip().splitlines():
        m = re.match(r"^(\S+)\s+\(([^)]*)\)", line)
        assert m, f"unparsed Appendix A line: {line!r}"
        dims = tuple(d.strip() for d in m.group(2).split(",") if d.strip())
        entries.append((m.group(1), dims))
    return entries


def test_state_dict_matches_appendix_a():
    """Keys, order and shapes of a U=2, G=1 model at D=768 equal the listing generated from the original."""
    entries = _appendix_a(shared_file("reference/dualvgr-original.md").read_text(encoding="utf-8"))
    vq, va = 4000, 1000
    with torch.device("meta"):
        model = DualVGR(DualVGRConfig(question_vocab_size=vq, answer_vocab_size=va))
    sizes = {"V_q": vq, "V_a": va}
    expected = [(k, tuple(sizes.get(d, None) or int(d) for d in dims)) for k, dims in entries]
    got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert len(expected) == 203, "Appendix A lists 203 entries"
    assert got == expected, "state_dict keys/order/shapes differ from Appendix A"


def test_golden_dependence_is_float32_rounding_elsewhere(golden):
    """With another thread count the float32 HSIC moves by ~1e-3 while the same embeddings' float64 HSIC does
    not: the spread is the original's float32 cancellation, not a modelling difference."""
    from dualvgr.model import hsic_dependence

    inputs, expected = golden["inputs"], golden["expected"]
    values = {}
    for threads in (1, FIXTURE_THREADS):
        torch.set_num_threads(threads)
        model = load_original_checkpoint(golden["state_dict"])
        out = model(inputs["appearance"], inputs["motion"], inputs["question"], inputs["question_len"])
        pairs = list(zip(out.specific_appearance, out.common_appearance)) + list(
            zip(out.specific_motion, out.common_motion))
        values[threads] = (
            float(dualvgr_loss(out, inputs["answers"], 1.0, 1e-8)["dependence"].detach()),
            sum(float(hsic_dependence(s.double(), c.double()).detach()) for s, c in pairs) / len(out.common_appearance),
        )
    reference = float(expected["dependence_loss"])
    assert abs(values[1][0] - reference) / reference < 5e-3, values
    assert abs(values[1][1] - values[FIXTURE_THREADS][1]) / reference < 1e-5, values
