"""The DualVGR model and its loss (``../shared/reference/dualvgr-original.md`` §3 and §4.1).

Tensors in, tensors out: no files here except ``checkpoint.py``, no tracking, no printing.

    model = DualVGR(DualVGRConfig(question_vocab_size=V_q, answer_vocab_size=V_a))
    out = model(appearance, motion, question, question_len)   # question_len on the CPU (B3)
    losses = dualvgr_loss(out, answers, alpha, beta)           # {"ce", "common", "dependence", "total"}
"""

from dualvgr.model.checkpoint import (
    CHECKPOINT_FORMAT,
    config_from_state_dict,
    load_model_checkpoint,
    load_original_checkpoint,
    model_checkpoint,
)
from dualvgr.model.dualvgr import DualVGR, DualVGRConfig, DualVGROutput
from dualvgr.model.loss import common_loss, dualvgr_loss, hsic_dependence

__all__ = [
    "CHECKPOINT_FORMAT",
    "DualVGR",
    "DualVGRConfig",
    "DualVGROutput",
    "common_loss",
    "config_from_state_dict",
    "dualvgr_loss",
    "hsic_dependence",
    "load_model_checkpoint",
    "load_original_checkpoint",
    "model_checkpoint",
]
