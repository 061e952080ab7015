"""The training recipe of dualvgr-original.md §4.3-4.4, resumable and guarded.

Per epoch: optimiser steps (``train.optimizer``: the original's Adam, run fused, see optimizers.py) on
CE + alpha*common + beta*HSIC with global gradient clipping at 12, the step-decayed lr (schedule.py), validation,
the best-val checkpoint (strictly better), and the last checkpoint with everything a resume needs (model,
optimiser, epoch, best, history, RNG states). Checkpoints are written atomically; a damaged ``last.pt`` is set
aside and the seed starts fresh (resume.py). No MLflow here: the caller passes ``on_epoch`` to log.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from dualvgr.core.errors import HarnessError
from dualvgr.model import dualvgr_loss, model_checkpoint
from dualvgr.train.data import SplitQuestions, VideoFeatures, iterate_batches
from dualvgr.train.distributed import Distributed
from dualvgr.train.metrics import accuracies
from dualvgr.train.optimizers import build_optimizer
from dualvgr.train.resume import DamagedCheckpoint, SetAside, read_resume_payload, set_aside, short_reason
from dualvgr.train.schedule import lr_for_epoch, set_lr
from dualvgr.train.seeding import epoch_generator, rng_state, set_rng_state

LAST, BEST = "last.pt", "best.pt"


class TrainingDiverged(HarnessError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass(frozen=True)
class Recipe:
    epochs: int
    lr: float
    lr_decay_every: int
    lr_decay_factor: float
    grad_clip: float | None  # None = no clipping
    batch_size: int
    seed: int
    alpha: float
    beta: float
    precision: str = "fp32"
    workers: int = 0
    optimizer: str = "adam"  # a key of OPTIMIZERS
    # Host synchronisations (progress, finiteness check) every this many steps; 1 on CPU where they are free.
    sync_every: int = 1


@dataclass
class EpochStats:
    loss: float
    ce: float
    common: float
    dependence: float
    acc: float
    samples: int
    seconds: float


@dataclass
class TrainState:
    epoch: int = -1  # last completed epoch
    best_val: float = -math.inf
    best_epoch: int = -1
    history: list[dict[str, float]] = field(default_factory=list)


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def save_atomic(payload: dict, path: Path) -> None:
    """Write to a temporary file and rename: a crash mid-write never leaves a truncated checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def train_epoch(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, split: SplitQuestions, features: VideoFeatures,
    recipe: Recipe, epoch: int, device: torch.device, *, scaler: torch.amp.GradScaler | None = None,
    dist: Distributed | None = None, progress: bool = True,
) -> EpochStats:
    model.train()
    dist = dist or Distributed.single()
    order = torch.randperm(len(split), generator=epoch_generator(recipe.seed, epoch))
    sums = torch.zeros(6, dtype=torch.float64, device=device)  # loss, ce, common, dependence, correct, samples
    started = time.perf_counter()
    steps = math.ceil(len(split) / recipe.batch_size)
    bar = tqdm(total=len(split), desc=f"epoch {epoch + 1}/{recipe.epochs}", unit="q", disable=not progress or not dist.is_main,
               leave=False, mininterval=1.0 if sys.stderr.isatty() else 15.0)  # logs get a line every 15 s
    # Each rank takes its share of every global batch, so the recipe's batch stays the global batch.
    global_batches = iterate_batches(split, features, dist.shard_order(order, recipe.batch_size),
                                     dist.local_batch(recipe.batch_size), workers=recipe.workers, device=device)
    for step, batch in enumerate(global_batches):
        weight = dist.batch_weight(batch, recipe.batch_size, len(split), step)
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, recipe.precision):
            output = model(batch.appearance, batch.motion, batch.questions, batch.lengths)
        losses = dualvgr_loss(output, batch.answers, recipe.alpha, recipe.beta)
        # HSIC is summed over the batch: with K ranks each sums B/K samples and DDP averages, so scale by K.
        objective = weight * (losses["ce"] + recipe.alpha * losses["common"]) + recipe.beta * dist.world_size * (
            losses["dependence"] if weight > 0 else 0.0 * losses["dependence"])
        if scaler is not None:
            scaler.scale(objective).backward()
            scaler.unscale_(optimizer)
        else:
            objective.backward()
        if recipe.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        n = int(batch.answers.numel()) if weight > 0 else 0
        with torch.no_grad():
            correct = (output.logits.argmax(dim=1) == batch.answers).sum() if n else torch.zeros((), device=device)
            parts = torch.stack([losses["total"], losses["ce"], losses["common"], losses["dependence"]]).double()
            sums[:4] += parts * n
            sums[4] += correct
            sums[5] += n
        if (step + 1) % recipe.sync_every == 0 or step + 1 == steps:
            _check_finite(sums, epoch, step)
            seen = int(sums[5].item())
            elapsed = time.perf_counter() - started
            bar.update(seen * dist.world_size - bar.n)
            bar.set_postfix(loss=f"{sums[0].item() / max(seen, 1):.3f}", acc=f"{sums[4].item() / max(seen, 1):.3f}",
                            qps=f"{seen * dist.world_size / elapsed:.0f}", refresh=False)
    bar.close()
    totals = dist.all_reduce(sums)
    _check_finite(totals, epoch, steps - 1)
    seconds = time.perf_counter() - started
    count = max(float(totals[5]), 1.0)
    values = (totals[:5] / count).tolist()
    return EpochStats(*values, samples=int(totals[5]), seconds=seconds)


def _check_finite(sums: torch.Tensor, epoch: int, step: int) -> None:
    if not bool(torch.isfinite(sums).all()):
        raise TrainingDiverged(
            f"the training loss became {sums[0].item()} at epoch {epoch + 1}, step {step + 1}; stopped. The last "
            f"good checkpoint ({LAST}, end of the previous epoch) is kept. Lower train.lr, use precision fp32, "
            f"or check the features for NaN values"
        )


@torch.no_grad()
def predict(
    model: torch.nn.Module, split: SplitQuestions, features: VideoFeatures, batch_size: int, device: torch.device,
    *, precision: str = "fp32", workers: int = 0,
) -> np.ndarray:
    """argmax answer label for every question of ``split``, in order (eval mode, no dropout)."""
    model.eval()
    chunks = []
    order = torch.arange(len(split))  # in order, so the chunks concatenate to the split's order
    for batch in iterate_batches(split, features, order, batch_size, workers=workers, device=device):
        with autocast(device, precision):
            logits = model(batch.appearance, batch.motion, batch.questions, batch.lengths).logits
        chunks.append(logits.argmax(dim=1))
    return torch.cat(chunks).cpu().numpy() if chunks else np.empty(0, dtype=np.int64)


def evaluate(model, split, features, batch_size, device, *, precision="fp32", workers=0) -> tuple[dict, np.ndarray]:
    predictions = predict(model, split, features, batch_size, device, precision=precision, workers=workers)
    return accuracies(predictions, split.answers.numpy(), split.types, split.categories), predictions


class Trainer:
    """Runs the epochs of one seed, writing ``last.pt`` and ``best.pt`` to ``out_dir``; resumes from ``last.pt``."""

    def __init__(
        self, model: torch.nn.Module, recipe: Recipe, train: SplitQuestions, val: SplitQuestions,
        features: VideoFeatures, out_dir: Path, device: torch.device, *, checkpoint_extra: dict | None = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None, dist: Distributed | None = None,
        progress: bool = True, stop_after_epoch: int | None = None,
    ):
        self.model, self.recipe, self.train, self.val, self.features = model, recipe, train, val, features
        self.out_dir, self.device = Path(out_dir), device
        self.dist = dist or Distributed.single()
        self.checkpoint_extra = checkpoint_extra or {}
        self.on_epoch = on_epoch or (lambda epoch, metrics: None)
        self.progress = progress
        self.stop_after_epoch = stop_after_epoch  # tests: simulate a crash after this epoch
        self.optimizer = build_optimizer(recipe.optimizer, model.parameters(), recipe.lr)
        self.scaler = torch.amp.GradScaler(device.type) if recipe.precision == "fp16" else None
        self.state = TrainState()
        self.set_aside: list[SetAside] = []  # damaged checkpoints resume() moved out of the way
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)

    @property
    def last_path(self) -> Path:
        return self.out_dir / LAST

    @property
    def best_path(self) -> Path:
        return self.out_dir / BEST

    def resume(self) -> bool:
        """Load ``last.pt`` if a previous attempt left one; replay its metric history through ``on_epoch``.

        A damaged ``last.pt`` (resume.py says which damage) is set aside, on rank 0 only, and recorded in
        ``set_aside``; the seed then starts from scratch and this returns False.
        """
        if not self.last_path.is_file():
            return False
        model = _unwrap(self.model)
        try:
            payload = read_resume_payload(self.last_path, model, self.optimizer, best_path=self.best_path,
                                          fingerprint=self.checkpoint_extra.get("fingerprint"))
            self._apply(model, payload)
        except DamagedCheckpoint as damage:
            if self.dist.is_main:  # the others see the same file, or none once it is moved: all start fresh
                self.set_aside.append(set_aside(self.last_path, str(damage)))
                if damage.best_too and self.best_path.is_file():
                    self.set_aside.append(set_aside(self.best_path, f"the best checkpoint of the {LAST} set aside"))
            return False
        for epoch, metrics in enumerate(self.state.history):
            self.on_epoch(epoch, metrics)
        return True

    def _apply(self, model: torch.nn.Module, payload: dict) -> None:
        """Load a checked resume state; if any part still fails, put everything back as it was."""
        before = ({k: v.clone() for k, v in model.state_dict().items()}, copy.deepcopy(self.optimizer.state_dict()),
                  rng_state())
        try:
            model.load_state_dict(payload["state_dict"])
            self.optimizer.load_state_dict(payload["optimizer"])
            if self.scaler is not None and payload.get("scaler"):
                self.scaler.load_state_dict(payload["scaler"])
            set_rng_state(payload["rng"])
        except Exception as exc:  # a checked file that still does not load: the same as a damaged one
            model.load_state_dict(before[0])
            self.optimizer.load_state_dict(before[1])
            set_rng_state(before[2])
            raise DamagedCheckpoint(f"does not load: {short_reason(exc)}") from exc
        self.state = TrainState(payload["epoch"], payload["best_val"], payload["best_epoch"], payload["history"])

    def fit(self) -> TrainState:
        recipe = self.recipe
        for epoch in range(self.state.epoch + 1, recipe.epochs):
            set_lr(self.optimizer, lr_for_epoch(recipe.lr, epoch, recipe.lr_decay_every, recipe.lr_decay_factor))
            stats = train_epoch(self.model, self.optimizer, self.train, self.features, recipe, epoch, self.device,
                                scaler=self.scaler, dist=self.dist, progress=self.progress)
            val, _ = evaluate(self.model, self.val, self.features, recipe.batch_size, self.device,
                              precision=recipe.precision, workers=recipe.workers)
            metrics = {
                "train_loss": stats.loss, "train_loss_ce": stats.ce, "train_loss_common": stats.common,
                "train_loss_dependence": stats.dependence, "train_acc": stats.acc,
                "lr": self.optimizer.param_groups[0]["lr"],  # the lr this epoch trained with
                "epoch_seconds": stats.seconds, "train_samples_per_second": stats.samples / max(stats.seconds, 1e-9),
            } | {f"val_{key}": value for key, value in val.items()}
            self.state.history.append(metrics)
            self.state.epoch = epoch
            if self.dist.is_main:
                if val.get("acc", -math.inf) > self.state.best_val:  # strictly better, as the original
                    self.state.best_val, self.state.best_epoch = val["acc"], epoch
                    save_atomic(model_checkpoint(_unwrap(self.model), epoch=epoch, val_acc=val["acc"],
                                                 **self.checkpoint_extra), self.best_path)
                save_atomic(self._last_payload(), self.last_path)
            elif val.get("acc", -math.inf) > self.state.best_val:
                self.state.best_val, self.state.best_epoch = val["acc"], epoch
            self.on_epoch(epoch, metrics)
            if self.stop_after_epoch is not None and epoch >= self.stop_after_epoch:
                raise KeyboardInterrupt(f"stopped after epoch {epoch} (simulated interruption)")
        return self.state

    def _last_payload(self) -> dict:
        return model_checkpoint(
            _unwrap(self.model), epoch=self.state.epoch, best_val=self.state.best_val,
            best_epoch=self.state.best_epoch, history=self.state.history, optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict() if self.scaler is not None else None, rng=rng_state(),
            **self.checkpoint_extra,
        )


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    for attr in ("module", "_orig_mod"):
        while isinstance(getattr(model, attr, None), torch.nn.Module):
            model = getattr(model, attr)
    return model
