"""The original's learning-rate schedule (dualvgr-original.md §4.3 step 5).

At the end of every ``every``-th epoch (0-based epoch e with (e+1) % every == 0) the lr is multiplied by
``factor`` before that epoch's validation, so with 25 epochs: epochs 0-9 at lr, 10-19 at lr/2, 20-24 at lr/4.
The lr is derived from the epoch, never accumulated, so a resumed run cannot drift (original bug B30).
"""

from __future__ import annotations

import torch


def lr_for_epoch(base_lr: float, epoch: int, every: int, factor: float) -> float:
    """The lr used while training 0-based ``epoch``."""
    return base_lr * factor ** (epoch // every)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
