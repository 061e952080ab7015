"""Which resume state can be trusted, and what happens to a damaged checkpoint: it is set aside, never deleted.

``last.pt`` is what a killed run resumes from. A file that cannot be read (truncated, garbage), a readable one
without the keys a resume needs, one whose weights do not fit the model, one written by another run
configuration, or one whose best-val epoch has no readable ``best.pt`` beside it, cannot be resumed from: the
trainer renames it to ``last.pt.damaged-<UTC time>`` (the bytes stay for inspection) and trains the seed from
scratch; the train stage says so on stderr and in an MLflow tag. Checkpoints are written atomically, so such a
file was damaged by something outside the harness (a full disk on another writer, a copy, a hand edit).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dualvgr.core.errors import DataError
from dualvgr.model import CHECKPOINT_FORMAT, load_model_checkpoint

# What a resume reads from last.pt (model_checkpoint adds format/config/state_dict; the trainer the rest).
RESUME_KEYS = ("format", "config", "state_dict", "epoch", "best_val", "best_epoch", "history", "optimizer", "rng")
RNG_KEYS = ("torch", "numpy", "random")
_REASON_CHARS = 300  # unpickling errors can run to pages; the first line says what broke


class DamagedCheckpoint(Exception):
    """A checkpoint that cannot be used; the message says why (internal: the trainer sets the file aside).

    ``best_too``: the best.pt beside it is damaged or belongs to another state, and goes aside with it.
    """

    def __init__(self, reason: str, *, best_too: bool = False):
        super().__init__(reason)
        self.best_too = best_too


@dataclass(frozen=True)
class SetAside:
    """A damaged checkpoint moved out of the way: where it was, where it is now, and why."""

    path: Path
    moved_to: Path
    reason: str

    def describe(self) -> str:
        return f"{self.path} is damaged ({self.reason}); moved aside to {self.moved_to.name}"


def set_aside(path: Path, reason: str) -> SetAside:
    """Rename ``path`` to ``<name>.damaged-<UTC time>`` in its folder (a suffix keeps an earlier one intact)."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    counter = 1
    while target.exists():
        counter += 1
        target = path.with_name(f"{path.name}.damaged-{stamp}-{counter}")
    os.replace(path, target)
    return SetAside(path, target, reason)


def short_reason(error: BaseException) -> str:
    """``Type: first line`` of an error, at most a few hundred characters."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 3] + "..."


def read_resume_payload(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, best_path: Path,
    fingerprint: str | None = None,
) -> dict[str, Any]:
    """The payload of ``last.pt`` after checking everything a resume will use; DamagedCheckpoint otherwise.

    Nothing is loaded into ``model`` or ``optimizer`` here: a resume either applies a whole checked state or
    starts from scratch, never half of each.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, garbage bytes, a pickle weights_only refuses: all unreadable
        raise DamagedCheckpoint(f"cannot be read: {short_reason(exc)}") from exc
    if not isinstance(payload, Mapping):
        raise DamagedCheckpoint(f"holds a {type(payload).__name__}, expected the trainer's dict")
    missing = [key for key in RESUME_KEYS if key not in payload]
    if missing:
        raise DamagedCheckpoint(f"lacks {missing} (keys present: {sorted(map(str, payload))[:12]})")
    if payload["format"] != CHECKPOINT_FORMAT:
        raise DamagedCheckpoint(f"has format {payload['format']!r}, expected {CHECKPOINT_FORMAT!r}")
    recorded = payload.get("fingerprint")
    if fingerprint is not None and recorded is not None and recorded != fingerprint:
        raise DamagedCheckpoint(
            f"was written by another run configuration (fingerprint {str(recorded)[:12]}, this run {fingerprint[:12]})"
        )
    _check_weights(payload["state_dict"], model)
    epoch, best_epoch, history = payload["epoch"], payload["best_epoch"], payload["history"]
    if not (_is_int(epoch) and _is_int(best_epoch) and -1 <= best_epoch <= epoch):
        raise DamagedCheckpoint(f"has epoch {epoch!r} and best_epoch {best_epoch!r}, expected -1 <= best <= epoch")
    if not isinstance(history, list) or len(history) != epoch + 1 or not all(isinstance(h, Mapping) for h in history):
        size = f"{len(history)} epoch(s)" if isinstance(history, list) else f"a {type(history).__name__}"
        raise DamagedCheckpoint(f"has a metric history of {size} after epoch {epoch + 1}, expected {epoch + 1} epochs")
    if not isinstance(payload["best_val"], float) or (best_epoch >= 0 and not math.isfinite(payload["best_val"])):
        raise DamagedCheckpoint(f"has best_val {payload['best_val']!r}, expected a finite float")
    _check_optimizer(payload["optimizer"], optimizer)
    rng = payload["rng"]
    if not isinstance(rng, Mapping) or any(key not in rng for key in RNG_KEYS):
        raise DamagedCheckpoint(f"has no complete RNG state (expected keys {list(RNG_KEYS)})")
    if best_epoch >= 0:
        _check_best(best_path, best_epoch, epoch)
    return dict(payload)


def _check_weights(state_dict: Any, model: torch.nn.Module) -> None:
    if not isinstance(state_dict, Mapping):
        raise DamagedCheckpoint(f"has a state_dict of type {type(state_dict).__name__}, expected a mapping")
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state_dict)), sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise DamagedCheckpoint(f"weights do not fit this model: missing {missing[:3]}, unexpected {unexpected[:3]}")
    for name, tensor in expected.items():
        value = state_dict[name]
        if not isinstance(value, torch.Tensor) or value.shape != tensor.shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise DamagedCheckpoint(f"weight {name} is {shape}, the model's is {tuple(tensor.shape)}")


def _check_optimizer(state: Any, optimizer: torch.optim.Optimizer) -> None:
    groups = state.get("param_groups") if isinstance(state, Mapping) else None
    if not isinstance(groups, list) or "state" not in state:
        raise DamagedCheckpoint("has no optimizer state dict (state, param_groups)")
    saved = [len(group.get("params", ())) if isinstance(group, Mapping) else -1 for group in groups]
    ours = [len(group["params"]) for group in optimizer.param_groups]
    if saved != ours:
        raise DamagedCheckpoint(f"optimizer state covers parameter groups of sizes {saved}, the model's are {ours}")


def _check_best(best_path: Path, best_epoch: int, epoch: int) -> None:
    """The best epoch's weights must be in best.pt: last.pt alone cannot restore them."""
    if not best_path.is_file():
        raise DamagedCheckpoint(f"its best epoch {best_epoch + 1} has no {best_path.name} beside it")
    try:
        _, best = load_model_checkpoint(best_path)
    except DataError as exc:
        raise DamagedCheckpoint(f"its best epoch's {best_path.name} is damaged: {short_reason(exc)}",
                                best_too=True) from exc
    # best.pt is saved just before last.pt: a run killed between the two has best.pt one epoch ahead, and the
    # resumed epoch recomputes (and rewrites) it.
    if best.get("epoch") not in (best_epoch, epoch + 1):
        raise DamagedCheckpoint(
            f"says the best epoch is {best_epoch + 1} but {best_path.name} holds epoch "
            f"{_human_epoch(best.get('epoch'))}",
            best_too=True,
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _human_epoch(value: Any) -> str:
    return str(value + 1) if _is_int(value) else repr(value)
