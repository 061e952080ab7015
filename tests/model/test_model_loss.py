"""The §4.1 loss: consistency (common) loss, HSIC summed over the batch, averaging over the T = U*G layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dualvgr.core.errors import DataError
from dualvgr.model import DualVGROutput, common_loss, dualvgr_loss, hsic_dependence


def _reference_common(x, y):
    """utils.common_loss, literally: centre over nodes, L2-normalise rows, mean squared Gram difference."""
    x = F.normalize(x - x.mean(1, keepdim=True), p=2, dim=2)
    y = F.normalize(y - y.mean(1, keepdim=True), p=2, dim=2)
    return torch.mean((x @ x.transpose(1, 2) - y @ y.transpose(1, 2)) ** 2)


def _reference_hsic(x, y):
    """utils.loss_dependence, literally: R = I - 11^T/N, per-element trace(R K1 R K2) summed in a loop."""
    n = x.size(1)
    r = torch.eye(n, dtype=x.dtype) - torch.ones(n, n, dtype=x.dtype) / n
    total = 0
    for b in range(x.size(0)):
        total = total + torch.trace(r @ (x[b] @ x[b].T) @ r @ (y[b] @ y[b].T))
    return total


@pytest.mark.parametrize("b,n,d", [(1, 8, 4), (5, 8, 16), (3, 16, 7)])
def test_terms_match_the_original_formulas(b, n, d):
    g = torch.Generator().manual_seed(0)
    x, y = (torch.randn(b, n, d, generator=g, dtype=torch.float64) for _ in range(2))
    torch.testing.assert_close(common_loss(x, y), _reference_common(x, y))
    torch.testing.assert_close(hsic_dependence(x, y), _reference_hsic(x, y))


def test_hsic_is_summed_over_the_batch_without_normalisation():
    g = torch.Generator().manual_seed(1)
    x, y = (torch.randn(4, 6, 5, generator=g, dtype=torch.float64) for _ in range(2))
    per_element = sum(hsic_dependence(x[i : i + 1], y[i : i + 1]) for i in range(4))
    torch.testing.assert_close(hsic_dependence(x, y), per_element, msg="HSIC is a sum over the batch, not a mean")
    torch.testing.assert_close(hsic_dependence(2 * x, y), 4 * hsic_dependence(x, y), msg="no 1/(N-1)^2, linear kernel")
    centred = x - x.mean(1, keepdim=True)
    torch.testing.assert_close(hsic_dependence(x, y), hsic_dependence(centred, y), msg="R centres the kernels")


def _output(t: int, b=3, n=4, d=5, va=6, seed=0, dtype=torch.float32) -> DualVGROutput:
    g = torch.Generator().manual_seed(seed)
    lists = [[torch.randn(b, n, d, generator=g, dtype=dtype) for _ in range(t)] for _ in range(4)]
    return DualVGROutput(torch.randn(b, va, generator=g, dtype=dtype), *lists,
                         appearance_fusion=torch.zeros(b, n, d), motion_fusion=torch.zeros(b, n, d))


@pytest.mark.parametrize("t", [1, 2, 4])
def test_dualvgr_loss_averages_over_layers(t):
    out = _output(t)
    answers = torch.tensor([0, 5, 2])
    losses = dualvgr_loss(out, answers, alpha=0.5, beta=1e-3)
    assert set(losses) == {"ce", "common", "dependence", "total"}
    common = sum(_reference_common(a, m) for a, m in zip(out.common_appearance, out.common_motion)) / t
    dependence = sum(
        _reference_hsic(sa, ca) + _reference_hsic(sm, cm)
        for sa, ca, sm, cm in zip(
            out.specific_appearance, out.common_appearance, out.specific_motion, out.common_motion
        )
    ) / t
    torch.testing.assert_close(losses["ce"], F.cross_entropy(out.logits, answers))
    torch.testing.assert_close(losses["common"], common)
    torch.testing.assert_close(losses["dependence"], dependence, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses["total"], losses["ce"] + 0.5 * losses["common"] + 1e-3 * losses["dependence"])


def test_loss_keeps_input_dtype_and_upcasts_half():
    """R is built in the input's dtype and device (B4); bf16 embeddings are upcast (HSIC overflows fp16)."""
    answers = torch.tensor([0, 1, 2])
    assert dualvgr_loss(_output(2, dtype=torch.float64), answers, 1.0, 1e-8)["total"].dtype == torch.float64
    losses = dualvgr_loss(_output(2, dtype=torch.bfloat16), answers, 1.0, 1e-8)
    assert all(v.dtype == torch.float32 for v in losses.values())


def test_loss_rejects_squeezed_or_column_labels():
    out = _output(1, b=3)
    with pytest.raises(DataError, match=r"answers must be \(3,\) class indices, got shape \(3, 1\)"):
        dualvgr_loss(out, torch.zeros(3, 1, dtype=torch.long), 1.0, 1e-8)
    with pytest.raises(DataError, match=r"got shape \(\)"):
        dualvgr_loss(_output(1, b=1), torch.tensor(0), 1.0, 1e-8)  # what .squeeze() made of a batch of one (B29)
