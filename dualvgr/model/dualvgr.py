"""The DualVGR model: configuration, output unit, the top-level module and its input checks.

Follows ``../shared/reference/dualvgr-original.md`` §3.1 (top level, registration order), §3.8 (output unit),
§3.9 (effective initialisation) and §3.10 (shape trace). Submodule names are the original's, so an original
``train.py`` state_dict loads strictly (see ``checkpoint.py``).

Deviations, each where the original crashes or misbehaves: inputs are checked before any matmul, with
messages naming the expected and actual shapes (B20, B28); a training batch of one sample is normalised with
the BatchNorm running statistics instead of failing (B29); ``unit_layers`` is honoured (B17); the GloVe matrix
is copied with a shape check (B31); nothing is tied to a device (B2, B41).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from dualvgr.core.errors import DataError, SpecError
from dualvgr.model.layers import GRAPH_MODULES, ContextSelfAttention
from dualvgr.model.linguistic import LinguisticInputUnit
from dualvgr.model.visual import AppearanceEncoder, DualVGRUnits

CLASSIFIER_DROPOUT = 0.15
MOTION_RESNEXT_SPATIAL_CELLS = 16  # 3D ResNeXt at 224x224: fixed 4x4 pooling leaves 4x4 cells (B20, §2.5)


@dataclass(kw_only=True)
class DualVGRConfig:
    """Everything needed to rebuild a DualVGR; defaults are the paper's MSVD-QA model (§4.2)."""

    question_vocab_size: int  # V_q: rows of the question vocabulary (incl. <NULL>, <UNK>)
    answer_vocab_size: int  # V_a: classifier outputs (incl. <UNK0>, <UNK1>)
    vision_dim: int = 2048  # ResNet-101 / ResNeXt-101 pooled width
    module_dim: int = 768
    word_dim: int = 300  # GloVe 840B
    num_clips: int | None = 8  # graph nodes N; inputs must match (B28). None: not checked (original checkpoints)
    frames_per_clip: int | None = 16  # F; None: not checked
    unit_layers: int = 2  # U; what train.py actually built whatever --unit_layers said (B17)
    graph_layers: int = 1  # G
    gat_heads: int = 4
    graph_module: str = "GAT"  # a key of GRAPH_MODULES; checkpoints without it predate the choice: GAT
    original_graph_indexing: bool = False  # True: unit u, layer j uses graph module u+j, as the original (B11)

    def __post_init__(self) -> None:
        for name in ("question_vocab_size", "answer_vocab_size", "vision_dim", "module_dim", "word_dim",
                     "unit_layers", "graph_layers", "gat_heads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(f"model.{name} must be a positive integer, got {value!r}")
        for name in ("num_clips", "frames_per_clip"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise SpecError(f"model.{name} must be a positive integer or None, got {value!r}")
        if self.graph_module not in GRAPH_MODULES:
            raise SpecError(
                f"model.graph_module is {self.graph_module!r}; registered graph modules: "
                f"{', '.join(sorted(GRAPH_MODULES))} (dualvgr.model.layers.GRAPH_MODULES)"
            )
        if self.module_dim % 2 or self.module_dim % self.gat_heads:
            raise SpecError(
                f"model.module_dim={self.module_dim} must be even (bidirectional LSTMs) and divisible by "
                f"gat_heads={self.gat_heads}"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DualVGRConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SpecError(f"unknown model config key(s) {unknown}; expected a subset of {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class DualVGROutput:
    """Model output. The node-embedding lists hold T = U*G tensors (B,N,D) on the model's device (B41)."""

    logits: torch.Tensor  # (B, V_a), raw scores
    common_appearance: list[torch.Tensor]  # C^a_l: acGCN outputs
    common_motion: list[torch.Tensor]  # C^m_l: mcGCN outputs
    specific_appearance: list[torch.Tensor]  # S^a_l: appearance_GCN outputs ("aq_fusion_list")
    specific_motion: list[torch.Tensor]  # S^m_l: motion_GCN outputs
    appearance_fusion: torch.Tensor  # (B, N, D): last unit's common/specific fusion Za
    motion_fusion: torch.Tensor  # (B, N, D): Zm


class SingleSampleBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d that normalises a *training* batch of one sample with its running statistics (B29).

    Batch statistics of one sample are undefined (PyTorch raises); larger batches are untouched.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.size(0) == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


class OutputUnit(nn.Module):
    """[v (visual first), question_proj(q)] -> logits (``SimpleOutputUnitOpenEnded``), §3.8.

    ``classifier`` indices 1, 3, 5 are the Linear, BatchNorm and Linear of the original's Sequential.
    """

    def __init__(self, module_dim: int, num_answers: int) -> None:
        super().__init__()
        self.question_proj = nn.Linear(module_dim, module_dim)
        self.classifier = nn.Sequential(
            nn.Dropout(CLASSIFIER_DROPOUT),
            nn.Linear(2 * module_dim, module_dim),
            nn.ELU(),
            SingleSampleBatchNorm1d(module_dim),
            nn.Dropout(CLASSIFIER_DROPOUT),
            nn.Linear(module_dim, num_answers),
        )

    def forward(self, q_vec: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q_vec (B,D), v (B,D) -> (B,V_a)."""
        return self.classifier(torch.cat([v, self.question_proj(q_vec)], dim=1))  # (B, 2D) -> (B, V_a)


class DualVGR(nn.Module):
    """Dual-visual graph reasoning for open-ended VideoQA.

    ``forward(appearance (B,N,F,V), motion (B,N,V), question (B,L) int, question_len (B,) int)`` returns a
    ``DualVGROutput``. Keep ``question_len`` on the CPU: packing needs CPU lengths (B3), so CUDA lengths cost
    a host synchronisation. Everything else stays on the model's device.
    """

    def __init__(self, config: DualVGRConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.feature_aggregation = ContextSelfAttention(c.module_dim)
        self.linguistic_input_unit = LinguisticInputUnit(c.question_vocab_size, c.word_dim, c.module_dim)
        self.visual_appearance_input_unit = AppearanceEncoder(c.vision_dim, c.module_dim)
        self.visual_motion_input_unit = nn.Linear(c.vision_dim, c.module_dim)  # plain Linear (§3.4)
        self.visual_input_unit = DualVGRUnits(
            word_dim=c.word_dim,
            module_dim=c.module_dim,
            unit_layers=c.unit_layers,
            graph_layers=c.graph_layers,
            gat_heads=c.gat_heads,
            graph_module=c.graph_module,
            original_graph_indexing=c.original_graph_indexing,
        )
        self.output_unit = OutputUnit(c.module_dim, c.answer_vocab_size)
        self.reset_parameters()

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> DualVGR:
        return cls(DualVGRConfig.from_dict(config))

    def reset_parameters(self) -> None:
        """The original's effective init (§3.9): xavier_uniform (gain 1) for every Linear and LSTM weight,
        zero biases, embedding U(-1, 1), BatchNorm weight 1 / bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LSTM):
                for name, p in m.named_parameters():
                    if name.startswith("weight"):
                        nn.init.xavier_uniform_(p)
                    else:
                        nn.init.zeros_(p)
        nn.init.uniform_(self.linguistic_input_unit.encoder_embed.weight, -1.0, 1.0)

    @torch.no_grad()
    def load_glove(self, matrix: Any) -> None:
        """Copy a (V_q, word_dim) GloVe matrix into the (still trainable) embedding, checking its shape (B31)."""
        weight = self.linguistic_input_unit.encoder_embed.weight
        glove = torch.as_tensor(matrix)
        if tuple(glove.shape) != tuple(weight.shape):
            raise DataError(
                f"GloVe matrix has shape {tuple(glove.shape)}, the question embedding is {tuple(weight.shape)} "
                f"(question vocabulary x word_dim): build the GloVe matrix from the same vocabulary json as the model"
            )
        if not glove.is_floating_point() or not torch.isfinite(glove).all():
            raise DataError("GloVe matrix must be finite floating-point values (got non-float, NaN or inf entries)")
        weight.copy_(glove)

    def forward(
        self,
        appearance: torch.Tensor,
        motion: torch.Tensor,
        question: torch.Tensor,
        question_len: torch.Tensor,
    ) -> DualVGROutput:
        appearance, motion, lengths = self._check_inputs(appearance, motion, question, question_len)
        q_vec, words, hq = self.linguistic_input_unit(question, lengths)  # (B,D), (B,L,W), (B,L,D)
        positions = torch.arange(question.size(1), device=question.device)
        word_mask = positions.unsqueeze(0) < lengths.to(question.device, non_blocking=True).unsqueeze(1)  # (B, L)
        a0 = self.visual_appearance_input_unit(appearance)  # (B, N, D)
        m0 = self.visual_motion_input_unit(motion)  # (B, N, D)
        v, extras = self.visual_input_unit(a0, m0, hq, words, word_mask)  # (B, N, D)
        logits = self.output_unit(q_vec, self.feature_aggregation(v))  # (B, V_a)
        return DualVGROutput(
            logits=logits,
            common_appearance=extras.common_appearance,
            common_motion=extras.common_motion,
            specific_appearance=extras.specific_appearance,
            specific_motion=extras.specific_motion,
            appearance_fusion=extras.appearance_fusion,
            motion_fusion=extras.motion_fusion,
        )

    def _check_inputs(
        self, appearance: torch.Tensor, motion: torch.Tensor, question: torch.Tensor, question_len: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Shape, dtype and device checks before any matmul (B20, B28). Returns the features in the model's
        dtype and the lengths as CPU int64. Only CPU lengths are inspected by value: no host synchronisation."""
        c = self.config
        weight = self.visual_motion_input_unit.weight
        if appearance.dim() != 4:
            raise DataError(
                f"appearance features must be (batch, clips, frames, {c.vision_dim}), "
                f"got shape {tuple(appearance.shape)}"
            )
        if motion.dim() != 3:
            raise DataError(f"motion features must be (batch, clips, {c.vision_dim}), got shape {tuple(motion.shape)}")
        b, n, f, width = appearance.shape
        if motion.shape[-1] != c.vision_dim:
            if motion.shape[-1] == c.vision_dim * MOTION_RESNEXT_SPATIAL_CELLS:
                raise DataError(
                    f"motion features are {motion.shape[-1]} wide, expected {c.vision_dim}: frames were 224×224 "
                    f"but the 3D ResNeXt pools with a fixed 4×4 kernel sized for 112×112 — re-extract with "
                    f"motion.image_size: 112"
                )
            raise DataError(
                f"motion features are {motion.shape[-1]} wide, expected {c.vision_dim} (model vision_dim): "
                f"they do not come from the backbone this model was built for"
            )
        if width != c.vision_dim:
            raise DataError(
                f"appearance features are {width} wide, expected {c.vision_dim} (model vision_dim): "
                f"they do not come from the backbone this model was built for (ResNet-101 pool5 gives 2048)"
            )
        if motion.shape[:2] != (b, n):
            raise DataError(
                f"appearance features have shape {tuple(appearance.shape)} but motion {tuple(motion.shape)}: "
                f"batch and clip counts must agree (both extracted with the same num_clips)"
            )
        if c.num_clips is not None and n != c.num_clips:
            raise DataError(
                f"features have {n} clips per video, the model was built for num_clips={c.num_clips} graph nodes: "
                f"extract features with num_clips {c.num_clips} or build the model with num_clips {n}"
            )
        if c.frames_per_clip is not None and f != c.frames_per_clip:
            raise DataError(
                f"appearance features have {f} frames per clip, the model expects frames_per_clip={c.frames_per_clip}"
            )
        if question.dim() != 2 or question.size(0) != b:
            raise DataError(f"question must be (batch={b}, length) token ids, got shape {tuple(question.shape)}")
        if question.is_floating_point() or question.is_complex() or question.dtype == torch.bool:
            raise DataError(f"question must hold integer token ids, got dtype {question.dtype}")
        if question_len.shape != (b,) or question_len.is_floating_point():
            raise DataError(
                f"question_len must be (batch={b},) integers, got shape {tuple(question_len.shape)} "
                f"dtype {question_len.dtype}"
            )
        if not appearance.is_floating_point() or not motion.is_floating_point():
            raise DataError(f"features must be floating point, got {appearance.dtype} and {motion.dtype}")
        for name, t in (("appearance", appearance), ("motion", motion), ("question", question)):
            if t.device != weight.device:
                raise DataError(f"{name} is on {t.device} but the model is on {weight.device}: move it there")
        lengths = question_len.to("cpu", torch.int64)  # packing needs CPU lengths (B3); a no-op when already there
        if b and (int(lengths.min()) < 1 or int(lengths.max()) > question.size(1)):
            raise DataError(
                f"question lengths must be in 1..{question.size(1)} (the padded length), got "
                f"min {int(lengths.min())} max {int(lengths.max())}: empty questions cannot be packed (B36)"
            )
        return appearance.to(weight.dtype), motion.to(weight.dtype), lengths
