"""Data-parallel training under ``torchrun`` (DDP: gloo on CPU, NCCL on GPU).

The spec's batch stays the *global* batch: every global batch (drawn from the same permutation as a
single-process run) is cut into K contiguous shares of ceil(B/K). Gradients are averaged over ranks by DDP, so
each rank weights its mean losses by n_rank*K/n_global (equal shares: 1) and its batch-summed HSIC by K: the
averaged gradient is then the single-process one. BatchNorm is synchronised (SyncBatchNorm). A rank whose
share of the final, short batch is empty runs one sample with weight 0 (DDP needs every rank to step).
Only rank 0 logs to MLflow and writes checkpoints. Starting the process group and sending jobs to ranks > 0 are
every stage's (:mod:`dualvgr.core.ranks`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist

from dualvgr.core.ranks import Ranks


@dataclass(frozen=True)
class Distributed(Ranks):
    """The ranks of a torchrun launch (:class:`~dualvgr.core.ranks.Ranks`), with the sharing of training batches."""

    def local_batch(self, batch_size: int) -> int:
        return math.ceil(batch_size / self.world_size)

    def _share(self, batch_size: int, total: int, step: int) -> tuple[int, int]:
        """(start within the global batch, count) of this rank's share of global batch ``step``."""
        n_global = min(batch_size, total - step * batch_size)
        local = self.local_batch(batch_size)
        start = self.rank * local
        return start, max(0, min(local, n_global - start))

    def shard_order(self, order: torch.Tensor, batch_size: int) -> torch.Tensor:
        """This rank's positions, batch after batch, such that splitting by ``local_batch`` aligns with steps."""
        if not self.active:
            return order
        pieces = []
        for step in range(math.ceil(len(order) / batch_size)):
            chunk = order[step * batch_size:(step + 1) * batch_size]
            start, count = self._share(batch_size, len(order), step)
            pieces.append(chunk[start:start + count] if count else chunk[:1])  # weight-0 stand-in
        return torch.cat(pieces)

    def batch_weight(self, batch, batch_size: int, total: int, step: int) -> float:
        if not self.active:
            return 1.0
        n_global = min(batch_size, total - step * batch_size)
        _, count = self._share(batch_size, total, step)
        return count * self.world_size / n_global

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return tensor
        reduced = tensor.clone()
        torch_dist.all_reduce(reduced, op=torch_dist.ReduceOp.SUM)
        return reduced

    def wrap(self, model: torch.nn.Module, device: torch.device, find_unused: bool = False) -> torch.nn.Module:
        if not self.active:
            return model
        if device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:  # SyncBatchNorm is GPU-only
            _use_cross_rank_batchnorm(model)
        ids = [device.index] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)


class CrossRankBatchNorm1d(torch.nn.BatchNorm1d):
    """BatchNorm1d whose training statistics cover the global batch of every rank (gloo; differentiable)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        channels = x.shape[1]
        count = torch.full((1,), float(x.shape[0]), dtype=x.dtype, device=x.device)
        totals = all_reduce(torch.cat([x.sum(0), (x * x).sum(0), count]))  # (2C + 1,), summed over ranks
        n = totals[-1]
        mean = totals[:channels] / n
        var = (totals[channels:2 * channels] / n - mean * mean).clamp_min(0.0)
        with torch.no_grad():
            momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked + 1)
            self.running_mean.mul_(1 - momentum).add_(momentum * mean)
            self.running_var.mul_(1 - momentum).add_(momentum * var * n / (n - 1).clamp_min(1.0))
            self.num_batches_tracked += 1
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


def _use_cross_rank_batchnorm(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.__class__ = CrossRankBatchNorm1d
