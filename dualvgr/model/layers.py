"""Reusable DualVGR layers: query attention and punishment, the punished multi-head GAT, common/specific
attention, MFB fusion and the self-attention pooling.

Follows ``../shared/reference/dualvgr-original.md`` §3.5 (QueryAttn, QueryPunish, punishGAT,
AttentionSFGCN), §3.6 (MFB) and §3.7 (ContextSelfAttn). Submodule names are the original's so that
state_dict keys match Appendix A (GAT heads are ``attention_0..3`` attributes, not a ModuleList).

The original builds an all-ones adjacency and masks the GAT logits with ``where(adj > 0, e, -9e15)``; that
mask is a no-op on a complete graph, so there is no adjacency here at all (B2, B6, B28).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

# Dropout rates and slopes of the original (§3.5-§3.7); fixed in its code, not configurable there either.
GAT_DROPOUT = 0.15
GAT_NEGATIVE_SLOPE = 0.01
POOL_DROPOUT = 0.15
MFB_MM_DIM = 256  # MFB defaults: mm_dim 256, factor 2, so linear0/1 are D -> 512 whatever D is
MFB_FACTOR = 2


class QueryAttention(nn.Module):
    """Question-guided word pooling (the original ``QueryAttn``), §3.5.

    ``c = sum_t alpha_t * words_t`` with alpha a softmax over *all* L positions, masked to the real words and
    renormalised with a 1e-5 term: the exact order of the original, kept for its training dynamics.
    """

    def __init__(self, module_dim: int) -> None:
        super().__init__()
        self.feat_enhance = nn.Linear(module_dim, module_dim)
        self.fc = nn.Linear(module_dim, 1)

    def forward(
        self, words: torch.Tensor, hq: torch.Tensor, word_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """words (B,L,W), hq (B,L,D), word_mask (B,L) with 1 on real words -> c (B,W), alpha (B,L)."""
        h = F.normalize(self.feat_enhance(hq), p=2.0, dim=-1)  # (B, L, D)
        p = torch.softmax(self.fc(h).squeeze(-1), dim=1)  # (B, L), padded positions included
        p = p * word_mask.to(p.dtype)
        alpha = p / (p.sum(dim=1, keepdim=True) + 1e-5)  # (B, L)
        c = torch.bmm(alpha.unsqueeze(1), words).squeeze(1)  # (B, W)
        return c, alpha


class QueryPunishment(nn.Module):
    """Per-node punishment score ``sigmoid(<X_n, W c>)`` (the original ``QueryPunish``), §3.5.

    The score is unscaled (the original's ``temp`` is never used) and expanded to the GAT head width.
    """

    def __init__(self, word_dim: int, module_dim: int, head_dim: int) -> None:
        super().__init__()
        self.query_weight = nn.Linear(word_dim, module_dim)
        self.head_dim = head_dim

    def forward(self, c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """c (B,W), x (B,N,D) -> score (B,N,D_h), an expanded view of one value per node."""
        r = self.query_weight(c)  # (B, D)
        score = torch.sigmoid(torch.bmm(x, r.unsqueeze(2)))  # (B, N, 1)
        return score.expand(-1, -1, self.head_dim)  # (B, N, D_h)


class PunishedGATHead(nn.Module):
    """One head of the punished GAT (the original ``PunishGraphAttentionLayer``), §3.5.

    ``PunishedGAT`` evaluates all heads at once from these parameters; this per-head ``forward`` is the
    literal formulation, kept as the reference the vectorised path is tested against.
    """

    def __init__(self, in_dim: int, out_dim: int, dropout: float = GAT_DROPOUT) -> None:
        super().__init__()
        self.W = nn.Linear(in_dim, out_dim)
        self.a = nn.Linear(2 * out_dim, 1)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        """x (B,N,D), score (B,N,D_h) -> (B,N,D_h), on a complete graph with self-loops."""
        wh = self.W(x)  # (B, N, D_h)
        n = wh.size(1)
        pairs = torch.cat(
            [wh.unsqueeze(2).expand(-1, -1, n, -1), wh.unsqueeze(1).expand(-1, n, -1, -1)], dim=-1
        )  # (B, N, N, 2*D_h): [Wh_i || Wh_j], i = receiver
        e = F.leaky_relu(self.a(pairs).squeeze(-1), GAT_NEGATIVE_SLOPE)  # (B, N, N)
        att = F.dropout(torch.softmax(e, dim=-1), self.dropout, self.training)
        return F.elu(torch.bmm(att, wh * score))  # (B, N, D_h)


class _PairLogits(torch.autograd.Function):
    """GAT attention logits ``e[h,b,i,j] = a_h([Wh_i || Wh_j])`` for all heads.

    Forward: one ``F.linear`` per head on the (B,N,N,2*D_h) pair tensor, bit-identical to the original's
    ``nn.Linear`` on the same tensor. Backward: closed form (a_h splits into a_src/a_dst halves), so the pair
    tensor is neither kept for backward nor back-propagated through.
    """

    @staticmethod
    def forward(ctx, wh: torch.Tensor, *a_params: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        nh, _, n, _ = wh.shape  # wh (H, B, N, D_h); a_params = H weights (1, 2*D_h), then H biases (1,)
        weights, biases = a_params[:nh], a_params[nh:]
        pairs = torch.cat(
            [wh.unsqueeze(3).expand(-1, -1, -1, n, -1), wh.unsqueeze(2).expand(-1, -1, n, -1, -1)], dim=-1
        )  # (H, B, N, N, 2*D_h): [Wh_i || Wh_j], i = receiver
        e = torch.stack([F.linear(p, w, b).squeeze(-1) for p, w, b in zip(pairs.unbind(0), weights, biases)])
        ctx.save_for_backward(wh, *weights)
        return e  # (H, B, N, N)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        wh, *weights = ctx.saved_tensors
        dh = wh.size(-1)
        grad = grad.to(wh.dtype)
        a = torch.stack([w.view(2, dh) for w in weights]).to(wh.dtype)  # (H, 2, D_h): [src; dst]
        g_src = grad.sum(dim=-1)  # (H, B, N): over neighbours j, for receiver i
        g_dst = grad.sum(dim=-2)  # (H, B, N): over receivers i, for neighbour j
        d_wh = g_src.unsqueeze(-1) * a[:, 0, None, None, :] + g_dst.unsqueeze(-1) * a[:, 1, None, None, :]
        d_a = torch.cat(
            [torch.einsum("hbn,hbnd->hd", g_src, wh), torch.einsum("hbn,hbnd->hd", g_dst, wh)], dim=-1
        )  # (H, 2*D_h)
        d_bias = grad.sum(dim=(1, 2, 3))  # (H,)
        return (
            d_wh,
            *(d_a[h].view(1, 2 * dh).to(w.dtype) for h, w in enumerate(weights)),
            *(d_bias[h].view(1).to(w.dtype) for h, w in enumerate(weights)),
        )


class PunishedGAT(nn.Module):
    """Multi-head punished GAT (the original ``punishGAT``), heads concatenated, §3.5.

    The heads run together (one matmul on the concatenated ``W``, one softmax, one batched matmul), except
    the attention logit ``a([Wh_i || Wh_j])``, which stays one ``Linear(2*D_h, 1)`` per head on the pair
    tensor (``_PairLogits``). That keeps every output bit-identical to the per-head original on CPU:
    splitting ``a`` into ``a_src.Wh_i + a_dst.Wh_j`` is mathematically equal but changes float rounding,
    and the original's float32 HSIC (§4.1) amplifies such last-bit differences to ~1e-3 relative.
    """

    def __init__(self, in_dim: int, num_heads: int, dropout: float = GAT_DROPOUT) -> None:
        super().__init__()
        if in_dim % num_heads:
            raise ValueError(f"GAT width {in_dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = in_dim // num_heads
        self.dropout = dropout
        for h in range(num_heads):  # attributes, not a ModuleList: keys are attention_h.* (Appendix A)
            self.add_module(f"attention_{h}", PunishedGATHead(in_dim, self.head_dim, dropout))

    @property
    def heads(self) -> list[PunishedGATHead]:
        return [getattr(self, f"attention_{h}") for h in range(self.num_heads)]

    def forward(self, x: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        """x (B,N,D), score (B,N,D_h) -> (B,N,D)."""
        b, n, _ = x.shape
        nh, dh = self.num_heads, self.head_dim
        heads = self.heads
        x = F.dropout(x, self.dropout, self.training)  # one mask shared by the heads, as in the original
        weight = torch.cat([hd.W.weight for hd in heads])  # (H*D_h, D)
        bias = torch.cat([hd.W.bias for hd in heads])  # (H*D_h,)
        wh = F.linear(x, weight, bias).view(b, n, nh, dh).permute(2, 0, 1, 3)  # (H, B, N, D_h)
        a_params = [hd.a.weight for hd in heads] + [hd.a.bias for hd in heads]
        e = F.leaky_relu(_PairLogits.apply(wh, *a_params), GAT_NEGATIVE_SLOPE)  # (H, B, N, N)
        att = F.dropout(torch.softmax(e, dim=-1), self.dropout, self.training)  # (H, B, N, N)
        msg = wh * score.unsqueeze(0)  # (H, B, N, D_h): node j's message, punished after e is computed
        out = F.elu(torch.matmul(att, msg))  # (H, B, N, D_h)
        out = out.permute(1, 2, 0, 3).reshape(b, n, nh * dh)  # (B, N, D), heads concatenated in order
        return F.dropout(out, self.dropout, self.training)


# model.graph_module -> the graph layer of every unit: built as ``layer(module_dim, gat_heads)``, called as
# ``layer(x (B,N,D), score (B,N,D/heads)) -> (B,N,D)``. The original only ever built GAT (any other value
# crashed its forward); original checkpoints hold GAT weights.
GRAPH_MODULES: dict[str, Callable[[int, int], nn.Module]] = {"GAT": PunishedGAT}


class CommonSpecificAttention(nn.Module):
    """Per-node softmax over views (the original ``AttentionSFGCN`` from AM-GCN), §3.5."""

    def __init__(self, in_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.Tanh(), nn.Linear(hidden_dim, 1, bias=False))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B,V,N,D) with V views -> (sum_v beta_v z_v (B,N,D), beta (B,V,N,1))."""
        beta = torch.softmax(self.project(z), dim=1)  # (B, V, N, 1)
        return (beta * z).sum(dim=1), beta


class MFBFusion(nn.Module):
    """Multi-modal factorised bilinear pooling (the original ``MFB([D, D], D)``), §3.6.

    ELU on the inputs and output, sum-pooling of adjacent unit pairs, no power/L2 normalisation, no dropout.
    """

    def __init__(self, in_dims: tuple[int, int], out_dim: int, mm_dim: int = MFB_MM_DIM, factor: int = MFB_FACTOR):
        super().__init__()
        self.mm_dim, self.factor = mm_dim, factor
        self.linear0 = nn.Linear(in_dims[0], mm_dim * factor)
        self.linear1 = nn.Linear(in_dims[1], mm_dim * factor)
        self.linear_out = nn.Linear(mm_dim, out_dim)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """x0 (..., D0), x1 (..., D1) -> (..., D_out)."""
        z = F.elu(self.linear0(x0)) * F.elu(self.linear1(x1))  # (..., mm*factor)
        z = z.view(*z.shape[:-1], self.mm_dim, self.factor).sum(-1)  # (..., mm): units 2k, 2k+1 pooled
        return F.elu(self.linear_out(z))


class ContextSelfAttention(nn.Module):
    """Self-attention pooling over the N clips (the original ``ContextSelfAttn``), §3.7."""

    def __init__(self, module_dim: int, dropout: float = POOL_DROPOUT) -> None:
        super().__init__()
        self.v_proj = nn.Linear(module_dim, module_dim, bias=False)
        self.attn = nn.Linear(module_dim, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """v (B,N,D) -> (B,D)."""
        v = self.dropout(v)
        a = torch.softmax(self.attn(F.elu(self.v_proj(v))), dim=1)  # (B, N, 1)
        return (a * v).sum(dim=1)
