"""Batches for training and evaluation: encoded questions joined with their video's features.

Rows of the feature files map to videos only through ``ids`` (dualvgr-original.md §2.7). Features are either
preloaded once (into CPU or GPU memory, then gathered per batch with no worker processes) or streamed from HDF5
by DataLoader workers that open each file once and keep the handle (original bug B15: it reopened both files
for every sample). Question lengths stay on the CPU, where packing needs them (B3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from dualvgr.data.categories import QUESTION_WORDS
from dualvgr.features.reader import FeatureFileInfo
from dualvgr.train.seeding import worker_init


@dataclass
class SplitQuestions:
    """One split's encoded questions, as tensors the model takes, plus what predictions files show."""

    name: str
    questions: torch.Tensor  # (Q, L) int64, zero-padded to the split's longest question
    lengths: torch.Tensor  # (Q,) int64, CPU
    answers: torch.Tensor  # (Q,) int64 answer labels
    video_ids: np.ndarray  # (Q,) int64
    types: np.ndarray  # (Q,) str: the question's category label (what/who/how/when/where/other for MSVD-QA)
    qa_ids: np.ndarray  # (Q,) the annotation file's ids
    question_text: list[str]
    answer_text: list[str]
    # The data set's category names, in reporting order: the per-category accuracies (other counts only overall).
    categories: tuple[str, ...] = QUESTION_WORDS.names

    def __len__(self) -> int:
        return len(self.answers)

    def subset(self, keep: np.ndarray) -> SplitQuestions:
        """The questions at positions ``keep`` (a boolean mask or index array), in order."""
        index = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep)
        tensor_index = torch.from_numpy(index.astype(np.int64))
        return SplitQuestions(
            self.name,
            self.questions[tensor_index],
            self.lengths[tensor_index],
            self.answers[tensor_index],
            self.video_ids[index],
            self.types[index],
            self.qa_ids[index],
            [self.question_text[i] for i in index],
            [self.answer_text[i] for i in index],
            self.categories,
        )


@dataclass
class Batch:
    appearance: torch.Tensor  # (B, N, F, D)
    motion: torch.Tensor  # (B, N, D)
    questions: torch.Tensor  # (B, L)
    lengths: torch.Tensor  # (B,) CPU
    answers: torch.Tensor  # (B,)
    positions: torch.Tensor  # (B,) positions in the split, for predictions


class VideoFeatures:
    """Appearance and motion features of a set of videos, addressed by a dense video slot."""

    def __init__(
        self, appearance: FeatureFileInfo, motion: FeatureFileInfo, video_ids: Sequence[int], *,
        preload: bool, device: torch.device, permute_seed: int | None = None,
    ):
        self.video_ids = np.asarray(sorted(set(int(v) for v in video_ids)), dtype=np.int64)
        self.slot_of = {int(vid): slot for slot, vid in enumerate(self.video_ids)}
        app_rows = np.array([appearance.row_of[v] for v in self.video_ids], dtype=np.int64)
        mot_rows = np.array([motion.row_of[v] for v in self.video_ids], dtype=np.int64)
        if permute_seed is not None:
            # Control experiment: every video gets another video's features (a derangement when possible).
            shift = np.random.default_rng(permute_seed).permutation(len(self.video_ids))
            target = np.roll(shift, 1) if len(shift) > 1 else shift
            order = np.empty_like(shift)
            order[shift] = target
            app_rows, mot_rows = app_rows[order], mot_rows[order]
        self.device = device
        self.reader = _RowReader(appearance, motion, app_rows, mot_rows)
        self.memory: tuple[torch.Tensor, torch.Tensor] | None = None
        if preload:
            app, mot = self.reader.read(np.arange(len(self.video_ids)))
            self.memory = (app.to(device), mot.to(device))

    @classmethod
    def from_arrays(cls, video_ids: Sequence[int], appearance: torch.Tensor, motion: torch.Tensor) -> VideoFeatures:
        """Features already in memory, row i for ``video_ids[i]`` (benchmarks, tests)."""
        features = cls.__new__(cls)
        features.video_ids = np.asarray(video_ids, dtype=np.int64)
        features.slot_of = {int(vid): slot for slot, vid in enumerate(features.video_ids)}
        features.device, features.reader, features.memory = appearance.device, None, (appearance, motion)
        return features

    def slots(self, video_ids: np.ndarray) -> torch.Tensor:
        return torch.tensor([self.slot_of[int(v)] for v in video_ids], dtype=torch.int64)

    @property
    def preloaded(self) -> bool:
        return self.memory is not None


class _RowReader:
    """Reads feature rows for video slots from the two HDF5 files; one handle per process (B15)."""

    def __init__(self, appearance: FeatureFileInfo, motion: FeatureFileInfo, app_rows: np.ndarray, mot_rows: np.ndarray):
        self.files = ((appearance.path, appearance.dataset, app_rows), (motion.path, motion.dataset, mot_rows))
        self._handles: dict[str, h5py.Dataset] | None = None

    def read(self, slots: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        if self._handles is None:
            self._handles = {str(path): h5py.File(path, "r")[name] for path, name, _ in self.files}
        tensors = []
        for path, _, rows in self.files:
            wanted = rows[slots]
            unique, inverse = np.unique(wanted, return_inverse=True)  # h5py needs increasing indices
            block = self._handles[str(path)][unique]
            tensors.append(torch.from_numpy(np.ascontiguousarray(block[inverse])))
        return tensors[0], tensors[1]

    def __getstate__(self):  # h5py handles do not cross process boundaries: each worker opens its own
        return {"files": self.files, "_handles": None}


class _BatchDataset(Dataset):
    """Item k = the k-th batch of positions; used with ``batch_size=None`` so workers read whole batches."""

    def __init__(self, split: SplitQuestions, slots: torch.Tensor, reader: _RowReader, batches: list[torch.Tensor]):
        self.split, self.slots, self.reader, self.batches = split, slots, reader, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, k: int) -> Batch:
        positions = self.batches[k]
        app, mot = self.reader.read(self.slots[positions].numpy())
        return _assemble(self.split, positions, app, mot)


def _assemble(split: SplitQuestions, positions: torch.Tensor, app: torch.Tensor, mot: torch.Tensor) -> Batch:
    return Batch(app, mot, split.questions[positions], split.lengths[positions], split.answers[positions], positions)


def iterate_batches(
    split: SplitQuestions, features: VideoFeatures, order: torch.Tensor, batch_size: int, *,
    workers: int = 0, device: torch.device | None = None,
) -> Iterator[Batch]:
    """Batches of ``split`` in ``order`` (positions), features gathered from memory or read by workers."""
    device = device or features.device
    slots = features.slots(split.video_ids)
    if features.preloaded:
        # Everything a step needs is already on the device: no host copy (hence no stream sync) per step.
        app_all, mot_all = features.memory
        where = app_all.device
        order_on_device = order.to(where)
        slot_order = slots.to(where)[order_on_device]
        questions, answers = split.questions.to(where), split.answers.to(where)
        for start in range(0, len(order), batch_size):
            positions, index = order_on_device[start:start + batch_size], slot_order[start:start + batch_size]
            on_host = order[start:start + batch_size]
            yield Batch(app_all.index_select(0, index), mot_all.index_select(0, index),
                        questions.index_select(0, positions), split.lengths[on_host],
                        answers.index_select(0, positions), on_host)
        return
    loader = DataLoader(
        _BatchDataset(split, slots, features.reader, list(torch.split(order, batch_size))),
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        worker_init_fn=worker_init if workers else None,
        pin_memory=device.type == "cuda",
        collate_fn=_as_is,
    )
    for batch in loader:
        yield _to_device(batch, device)


def _as_is(batch: Batch) -> Batch:
    return batch


def _to_device(batch: Batch, device: torch.device) -> Batch:
    move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
    return Batch(move(batch.appearance), move(batch.motion), move(batch.questions), batch.lengths,
                 move(batch.answers), batch.positions)
