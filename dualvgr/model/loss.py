"""The DualVGR training loss: cross-entropy + alpha * consistency + beta * HSIC dependence.

Follows ``../shared/reference/dualvgr-original.md`` §4.1 (``train.py`` lines 146-154, ``utils.py``):

    L = CE + alpha * (1/T) sum_l Lcom(C^a_l, C^m_l) + beta * (1/T) sum_l [HSIC(S^a_l, C^a_l) + HSIC(S^m_l, C^m_l)]

with T = U*G, Lcom the mean squared difference of the node-centred cosine similarity matrices, and HSIC the
linear-kernel HSIC **summed** over the batch without the 1/(N-1)^2 factor. The centring matrix is built on the
input's device and dtype (B4, B28). The auxiliary terms are computed in float32 with autocast off: HSIC is
large (hence beta = 1e-8) and overflows float16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dualvgr.core.errors import DataError
from dualvgr.model.dualvgr import DualVGROutput


def common_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Consistency loss between two (B,N,D) node embeddings: mean over B*N*N of (S_x - S_y)^2."""
    x = F.normalize(x - x.mean(dim=1, keepdim=True), p=2.0, dim=2)  # (B, N, D), node rows centred then unit
    y = F.normalize(y - y.mean(dim=1, keepdim=True), p=2.0, dim=2)
    s_x = torch.bmm(x, x.transpose(1, 2))  # (B, N, N)
    s_y = torch.bmm(y, y.transpose(1, 2))
    return ((s_x - s_y) ** 2).mean()


def hsic_dependence(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sum_b tr(R K_x R K_y) with linear kernels K = X X^T and R = I - 11^T/N (original ``loss_dependence``)."""
    n = x.size(1)
    r = torch.eye(n, device=x.device, dtype=x.dtype) - 1.0 / n  # (N, N), on the input's device (B4)
    rk_x = torch.matmul(r, torch.bmm(x, x.transpose(1, 2)))  # (B, N, N)
    rk_y = torch.matmul(r, torch.bmm(y, y.transpose(1, 2)))
    # The original's op order (bmm, then per-element traces summed): this float32 HSIC cancels heavily, so a
    # different but equivalent order (einsum, centred kernels) moves it by ~1e-4 relative.
    return torch.bmm(rk_x, rk_y).diagonal(dim1=1, dim2=2).sum(dim=1).sum()


def _full(x: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 -> float32; float32/float64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def dualvgr_loss(
    output: DualVGROutput, answers: torch.Tensor, alpha: float, beta: float
) -> dict[str, torch.Tensor]:
    """Total loss and its parts (0-d tensors): ``ce``, ``common`` (mean over the T layers), ``dependence``
    (HSIC of both views, mean over the T layers) and ``total = ce + alpha*common + beta*dependence``."""
    logits = output.logits
    if answers.shape != logits.shape[:1]:
        raise DataError(
            f"answers must be ({logits.size(0)},) class indices, got shape {tuple(answers.shape)} "
            f"(the original's .squeeze() broke batches of one, B29)"
        )
    t = len(output.common_appearance)
    lists = (output.common_appearance, output.common_motion, output.specific_appearance, output.specific_motion)
    if t == 0 or any(len(lst) != t for lst in lists):
        raise ValueError(f"output must carry T >= 1 node embeddings per list, got {[len(lst) for lst in lists]}")
    with torch.autocast(device_type=logits.device.type, enabled=False):
        ce = F.cross_entropy(_full(logits), answers)
        common = sum(
            common_loss(_full(ca), _full(cm)) for ca, cm in zip(output.common_appearance, output.common_motion)
        )
        dependence = sum(
            hsic_dependence(_full(sa), _full(ca)) + hsic_dependence(_full(sm), _full(cm))
            for sa, ca, sm, cm in zip(
                output.specific_appearance, output.common_appearance, output.specific_motion, output.common_motion
            )
        )
        common = common / t
        dependence = dependence / t
        total = ce + alpha * common + beta * dependence
    return {"ce": ce, "common": common, "dependence": dependence, "total": total}
