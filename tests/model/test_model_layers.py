"""Every model building block: output shapes (the §3.10 trace, over several B, N, L, D), and the numerics
that the vectorised implementations must keep (per-head GAT, closed-form GAT logit gradient, MFB pooling,
query-attention masking, re-padded LSTM outputs)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from dualvgr.model.dualvgr import OutputUnit
from dualvgr.model.layers import (
    CommonSpecificAttention,
    ContextSelfAttention,
    MFBFusion,
    PunishedGAT,
    PunishedGATHead,
    QueryAttention,
    QueryPunishment,
    _PairLogits,
)
from dualvgr.model.linguistic import LinguisticInputUnit, PaddedLSTM
from dualvgr.model.visual import AppearanceEncoder, DualVGRUnits

SHAPES = [  # (B, N, L, D): paper-like N=8, odd sizes, a batch of one, N=16 (MSRVTT), N=20 (SVQA)
    pytest.param(3, 8, 7, 16, id="B3-N8-L7-D16"),
    pytest.param(1, 5, 4, 8, id="B1-N5-L4-D8"),
    pytest.param(2, 16, 9, 32, id="B2-N16-L9-D32"),
    pytest.param(2, 20, 3, 24, id="B2-N20-L3-D24"),
]
W, V, F_ = 6, 10, 4  # word_dim, vision_dim, frames


def _lengths(b: int, l: int) -> torch.Tensor:
    lengths = torch.arange(b) % l + 1
    lengths[0] = l
    return lengths


def _mask(b: int, l: int) -> torch.Tensor:
    return torch.arange(l)[None] < _lengths(b, l)[:, None]


def _shape_cases(b: int, n: int, l: int, d: int):
    """(name, module, input builder, expected output shapes) for every block in §3.10."""
    dh = d // 4
    x = lambda: torch.randn(b, n, d)  # noqa: E731
    return [
        ("QueryAttention", QueryAttention(d), lambda: (torch.randn(b, l, W), torch.randn(b, l, d), _mask(b, l)),
         [(b, W), (b, l)]),
        ("QueryPunishment", QueryPunishment(W, d, dh), lambda: (torch.randn(b, W), x()), [(b, n, dh)]),
        ("PunishedGATHead", PunishedGATHead(d, dh), lambda: (x(), torch.rand(b, n, dh)), [(b, n, dh)]),
        ("PunishedGAT", PunishedGAT(d, 4), lambda: (x(), torch.rand(b, n, dh)), [(b, n, d)]),
        ("CommonSpecificAttention", CommonSpecificAttention(d, d), lambda: (torch.randn(b, 2, n, d),),
         [(b, n, d), (b, 2, n, 1)]),
        ("MFBFusion", MFBFusion((d, d), d), lambda: (x(), x()), [(b, n, d)]),
        ("ContextSelfAttention", ContextSelfAttention(d), lambda: (x(),), [(b, d)]),
        ("LinguisticInputUnit", LinguisticInputUnit(13, W, d),
         lambda: (torch.randint(0, 13, (b, l)), _lengths(b, l)), [(b, d), (b, l, W), (b, l, d)]),
        ("AppearanceEncoder", AppearanceEncoder(V, d), lambda: (torch.randn(b, n, F_, V),), [(b, n, d)]),
        ("motion Linear", torch.nn.Linear(V, d), lambda: (torch.randn(b, n, V),), [(b, n, d)]),
        ("OutputUnit", OutputUnit(d, 5), lambda: (torch.randn(b, d), torch.randn(b, d)), [(b, 5)]),
    ]


def _flatten(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


@pytest.mark.parametrize("b,n,l,d", SHAPES)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_block_shapes(b, n, l, d, mode):
    torch.manual_seed(0)
    for name, module, make, expected in _shape_cases(b, n, l, d):
        module.train(mode == "train")
        outs = _flatten(module(*make()))
        got = [tuple(o.shape) for o in outs]
        assert got == expected, f"{name} in {mode} mode: output shapes {got}, §3.10 says {expected}"
        assert all(torch.isfinite(o).all() for o in outs), f"{name}: non-finite output"


@pytest.mark.parametrize("units,graphs", [(1, 1), (2, 1), (3, 1), (2, 2), (1, 2)])
@pytest.mark.parametrize("b,n,l,d", SHAPES[:2])
def test_dualvgr_units_shapes(units, graphs, b, n, l, d):
    """The unit stack returns V (B,N,D), Za/Zm (B,N,D) and four lists of T = U*G tensors (B,N,D)."""
    torch.manual_seed(0)
    stack = DualVGRUnits(word_dim=W, module_dim=d, unit_layers=units, graph_layers=graphs, gat_heads=4)
    a0, m0, hq, words = torch.randn(b, n, d), torch.randn(b, n, d), torch.randn(b, l, d), torch.randn(b, l, W)
    v, extras = stack(a0, m0, hq, words, _mask(b, l))
    assert v.shape == (b, n, d)
    assert extras.appearance_fusion.shape == extras.motion_fusion.shape == (b, n, d)
    for name in ("common_appearance", "common_motion", "specific_appearance", "specific_motion"):
        lst = getattr(extras, name)
        assert len(lst) == units * graphs, f"{name}: {len(lst)} tensors, expected T = U*G = {units * graphs}"
        assert all(t.shape == (b, n, d) for t in lst), f"{name}: shapes {[tuple(t.shape) for t in lst]}"


@pytest.mark.parametrize("b,n,l,d", SHAPES)
def test_vectorised_gat_equals_per_head_reference(b, n, l, d):
    """PunishedGAT evaluates the heads together; outputs and gradients equal the literal per-head formulation
    (the original punishGAT: one input dropout, heads concatenated in order, output dropout)."""
    torch.manual_seed(0)
    gat = PunishedGAT(d, 4).eval()
    for head in gat.heads:  # non-zero biases, so bias handling is exercised
        torch.nn.init.normal_(head.W.bias)
        torch.nn.init.normal_(head.a.bias)
    x = torch.randn(b, n, d, requires_grad=True)
    score = torch.rand(b, n, 1).expand(-1, -1, d // 4)
    ours = gat(x, score)
    reference = torch.cat([head(x, score) for head in gat.heads], dim=-1)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6, msg="vectorised heads differ from per-head GAT")
    weights = torch.randn_like(ours)
    grads = torch.autograd.grad((ours * weights).sum(), [x, *gat.parameters()])
    ref_grads = torch.autograd.grad((reference * weights).sum(), [x, *gat.parameters()])
    for (name, _), g, r in zip([("x", None), *gat.named_parameters()], grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-5, msg=lambda m, k=name: f"gradient of {k}: {m}")


def test_gat_attention_is_over_all_nodes_and_punishes_messages():
    """Complete graph: node 0's output depends on every node; the punishment score scales every message."""
    torch.manual_seed(0)
    gat = PunishedGAT(8, 4).eval()
    x = torch.randn(1, 4, 8)
    ones = torch.ones(1, 4, 2)
    for j in range(4):
        changed = x.clone()
        changed[:, j] += 1.0
        assert not torch.allclose(gat(changed, ones)[:, 0], gat(x, ones)[:, 0]), f"node 0 must attend to node {j}"
    assert torch.all(gat(x, torch.zeros(1, 4, 2)) == 0), "score 0 silences every message: ELU(0) = 0"


def test_pair_logits_closed_form_gradient():
    torch.manual_seed(0)
    h, b, n, dh = 3, 2, 4, 5
    wh = torch.randn(h, b, n, dh, dtype=torch.float64, requires_grad=True)
    weights = [torch.randn(1, 2 * dh, dtype=torch.float64, requires_grad=True) for _ in range(h)]
    biases = [torch.randn(1, dtype=torch.float64, requires_grad=True) for _ in range(h)]
    assert torch.autograd.gradcheck(_PairLogits.apply, (wh, *weights, *biases)), "closed-form backward is wrong"
    e = _PairLogits.apply(wh, *weights, *biases)
    for k in range(h):  # e[h,b,i,j] = a_h([Wh_i || Wh_j]) + bias_h, i = receiver
        manual = (wh[k] @ weights[k][0, :dh])[..., :, None] + (wh[k] @ weights[k][0, dh:])[..., None, :] + biases[k]
        torch.testing.assert_close(e[k], manual)


def test_query_attention_ignores_padding():
    torch.manual_seed(0)
    attn = QueryAttention(8)
    words, hq = torch.randn(2, 5, W), torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    c, alpha = attn(words, hq, mask)
    assert torch.all(alpha[0, 3:] == 0), "padded positions get exactly zero weight"
    torch.testing.assert_close(alpha.sum(1), torch.ones(2), atol=1e-4, rtol=0)  # 1/(1 + 1e-5/sum)
    changed = words.clone()
    changed[0, 3:] = 100.0
    torch.testing.assert_close(attn(changed, hq, mask)[0][0], c[0], msg="padded words must not leak into c")


def test_padded_lstm_zeroes_after_each_question():
    torch.manual_seed(0)
    rnn = PaddedLSTM(W, 4)
    words, lengths = torch.randn(3, 6, W), torch.tensor([6, 2, 4])
    out = rnn(pack_padded_sequence(words, lengths, batch_first=True, enforce_sorted=False), total_length=6)
    assert out.shape == (3, 6, 8)
    for row, length in enumerate(lengths.tolist()):
        assert torch.all(out[row, length:] == 0), f"row {row}: outputs after its length {length} must be zero"
        assert torch.all(out[row, :length].abs().sum(-1) > 0)


def test_mfb_pools_adjacent_pairs():
    torch.manual_seed(0)
    mfb = MFBFusion((6, 5), 3, mm_dim=4, factor=2)
    x0, x1 = torch.randn(2, 6), torch.randn(2, 5)
    z = F.elu(mfb.linear0(x0)) * F.elu(mfb.linear1(x1))  # (2, 8)
    pooled = z[:, 0::2] + z[:, 1::2]  # units (2k, 2k+1) pool together
    torch.testing.assert_close(mfb(x0, x1), F.elu(mfb.linear_out(pooled)))
