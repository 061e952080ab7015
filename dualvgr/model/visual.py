"""Visual side of DualVGR: the appearance clip encoder and the stack of DualVGR units.

Follows ``../shared/reference/dualvgr-original.md`` §3.3 (``VisualAppearanceEncoder``) and §3.5
(``DualVGRUnit_multiple``), with the original's attribute names so keys match Appendix A.

Fixes: the graph module of unit u, layer j is ``u*G + j`` (B11; ``original_graph_indexing=True`` replays the
original ``u + j`` for checkpoints trained with G > 1); the per-layer node embeddings stay on the model's
device (B41); there is no adjacency tensor, the graph is complete (B2, B6, B28).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from dualvgr.model.layers import GRAPH_MODULES, CommonSpecificAttention, MFBFusion, QueryAttention, QueryPunishment

APPEARANCE_INPUT_DROPOUT = 0.15
APPEARANCE_OUTPUT_DROPOUT = 0.18


@contextmanager
def _without_onednn(active: bool) -> Iterator[None]:
    """Run the enclosed ops with oneDNN (mkldnn) off when ``active``; the previous setting is restored.

    On CPU, oneDNN's LSTM backward costs about 4x its forward, while ATen's native LSTM (one GEMM for the
    input projection of all steps, autograd for the rest) trains the appearance LSTM about 2x faster; the
    two agree to float rounding. Used in training mode only: the forward alone is faster with oneDNN, and
    eval mode stays bit-identical to the original (which ran oneDNN). The switch is process-global: do not
    train and evaluate this model concurrently in threads of one process on CPU.
    """
    if not active:
        yield
        return
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous


class AppearanceEncoder(nn.Module):
    """Frame features (B,N,F,V) -> clip embeddings (B,N,D): a BiLSTM over the F frames of each clip (§3.3).

    The clip embedding is [h_n forward, h_n backward]; every clip has all F frames, so nothing is packed.
    """

    def __init__(self, vision_dim: int, module_dim: int) -> None:
        super().__init__()
        if module_dim % 2:
            raise ValueError(f"module_dim must be even for the bidirectional LSTM, got {module_dim}")
        self.module_dim = module_dim
        self.encoder = nn.LSTM(vision_dim, module_dim // 2, bidirectional=True)  # time-major, as the original
        self.embedding_dropout = nn.Dropout(APPEARANCE_INPUT_DROPOUT)
        self.finalvisual_dropout = nn.Dropout(APPEARANCE_OUTPUT_DROPOUT)

    def forward(self, appearance: torch.Tensor) -> torch.Tensor:
        b, n, f, v = appearance.shape
        x = torch.tanh(self.embedding_dropout(appearance)).reshape(b * n, f, v)  # (B*N, F, V); row b*N+n
        x = x.transpose(0, 1).contiguous()  # (F, B*N, V): one copy here instead of one per LSTM direction
        with _without_onednn(self.training and x.device.type == "cpu" and torch.is_grad_enabled()):
            _, (h_n, _) = self.encoder(x)  # h_n (2, B*N, D/2)
        clips = self.finalvisual_dropout(torch.cat([h_n[0], h_n[1]], dim=-1))  # (B*N, D)
        return clips.view(b, n, self.module_dim)  # (B, N, D)


@dataclass
class UnitOutputs:
    """What the stack of units returns besides V: the last unit's fusions and the per-layer node embeddings
    (T = U*G tensors (B,N,D) per list) that the consistency and HSIC losses constrain (§4.1)."""

    appearance_fusion: torch.Tensor
    motion_fusion: torch.Tensor
    common_appearance: list[torch.Tensor] = field(default_factory=list)
    common_motion: list[torch.Tensor] = field(default_factory=list)
    specific_appearance: list[torch.Tensor] = field(default_factory=list)
    specific_motion: list[torch.Tensor] = field(default_factory=list)


class DualVGRUnits(nn.Module):
    """U DualVGR units followed by the MFB fusion of appearance and motion (``DualVGRUnit_multiple``, §3.5).

    Registration order (fixes the state_dict and Adam order): queryAttn, queryPunish_appear,
    queryPunish_motion, appearance_GCN, motion_GCN, acGCN, mcGCN, attention_appearance, attention_motion,
    visualfusion.
    """

    def __init__(
        self,
        *,
        word_dim: int,
        module_dim: int,
        unit_layers: int,
        graph_layers: int,
        gat_heads: int,
        graph_module: str = "GAT",
        original_graph_indexing: bool = False,
    ) -> None:
        super().__init__()
        graph_layer = GRAPH_MODULES[graph_module]  # the config has checked the name
        self.unit_layers = unit_layers
        self.graph_layers = graph_layers
        self.original_graph_indexing = original_graph_indexing
        head_dim = module_dim // gat_heads
        n_graphs = unit_layers * graph_layers

        def gats() -> nn.ModuleList:
            return nn.ModuleList(graph_layer(module_dim, gat_heads) for _ in range(n_graphs))

        self.queryAttn = nn.ModuleList(QueryAttention(module_dim) for _ in range(unit_layers))
        self.queryPunish_appear = nn.ModuleList(
            QueryPunishment(word_dim, module_dim, head_dim) for _ in range(unit_layers)
        )
        self.queryPunish_motion = nn.ModuleList(
            QueryPunishment(word_dim, module_dim, head_dim) for _ in range(unit_layers)
        )
        self.appearance_GCN = gats()  # "specific" appearance graph layers (GATs: the original's names)
        self.motion_GCN = gats()
        self.acGCN = gats()  # "common" appearance GATs (not shared with mcGCN; only the loss ties them)
        self.mcGCN = gats()
        self.attention_appearance = nn.ModuleList(
            CommonSpecificAttention(module_dim, module_dim) for _ in range(unit_layers)
        )
        self.attention_motion = nn.ModuleList(
            CommonSpecificAttention(module_dim, module_dim) for _ in range(unit_layers)
        )
        self.visualfusion = MFBFusion((module_dim, module_dim), module_dim)

    def graph_index(self, unit: int, layer: int) -> int:
        """Which of the U*G graph modules unit ``unit`` uses at graph layer ``layer`` (B11)."""
        if self.original_graph_indexing:
            return unit + layer  # the original: shares modules across units, never uses the last one
        return unit * self.graph_layers + layer

    def forward(
        self,
        appearance: torch.Tensor,
        motion: torch.Tensor,
        hq: torch.Tensor,
        words: torch.Tensor,
        word_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, UnitOutputs]:
        """A0, M0 (B,N,D), Hq (B,L,D), words (B,L,W), word_mask (B,L) -> V (B,N,D), extras."""
        common_app: list[torch.Tensor] = []
        common_mot: list[torch.Tensor] = []
        specific_app: list[torch.Tensor] = []
        specific_mot: list[torch.Tensor] = []
        for u in range(self.unit_layers):
            s_app, s_mot = appearance, motion
            c, _ = self.queryAttn[u](words, hq, word_mask)  # (B, W); same textual inputs in every unit
            score_app = self.queryPunish_appear[u](c, s_app)  # (B, N, D_h)
            score_mot = self.queryPunish_motion[u](c, s_mot)
            for j in range(self.graph_layers):
                k = self.graph_index(u, j)
                c_app = self.acGCN[k](s_app, score_app)  # (B, N, D), from the same input as the specific GAT
                s_app = self.appearance_GCN[k](s_app, score_app)
                common_app.append(c_app)
                specific_app.append(s_app)
            for j in range(self.graph_layers):
                k = self.graph_index(u, j)
                c_mot = self.mcGCN[k](s_mot, score_mot)
                s_mot = self.motion_GCN[k](s_mot, score_mot)
                common_mot.append(c_mot)
                specific_mot.append(s_mot)
            z_app, _ = self.attention_appearance[u](torch.stack([c_app, s_app], dim=1))  # (B,2,N,D) -> (B,N,D)
            z_mot, _ = self.attention_motion[u](torch.stack([c_mot, s_mot], dim=1))
            appearance = appearance + z_app  # residual update
            motion = motion + z_mot
        v = self.visualfusion(appearance, motion)  # (B, N, D)
        return v, UnitOutputs(z_app, z_mot, common_app, common_mot, specific_app, specific_mot)
