"""Deterministic seeding and the RNG state a resumed run must restore (dualvgr-original.md §4.5).

The original seeds torch and numpy with 666; we also seed ``random``, every DataLoader worker, and derive each
epoch's shuffle from (seed, epoch), so a run resumed after epoch k draws exactly what an uninterrupted one does.

That shuffle is not the original's: its DataLoader (shuffle=True) drew every epoch's permutation from the global
torch generator, after the model's construction and the previous epochs' dropout draws, whereas ours comes from
a generator of its own (:func:`epoch_generator`), independent of both. Dropout still draws from the global
generator. With the initialisation difference ``build.build_model`` describes, the same seed therefore gives
another run than the original's, not a replay of it.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator that shuffles ``epoch``'s training order."""
    return torch.Generator().manual_seed(seed * 10_007 + epoch)


def worker_init(worker_id: int) -> None:
    """DataLoader workers: numpy and random follow torch's per-worker seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def rng_state() -> dict:
    """Every RNG a run draws from, in types ``torch.load(weights_only=True)`` accepts (B33)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    numpy_state = [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]
    state = {"torch": torch.get_rng_state(), "numpy": numpy_state, "random": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["random"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
