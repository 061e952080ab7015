"""Decode only the frames the clips need, with the frame count the original's read loop sees.

Follows ``dualvgr-original.md`` §2.1. The original ``read()`` every frame until it failed (T = frames read),
converted BGR->RGB with split/merge and kept them all. The clip centres depend on T, so T must be exact:
``CAP_PROP_FRAME_COUNT`` comes from container metadata and can be wrong (estimated from duration x fps for
some containers, off by packed or dropped frames for others), and seeking is inexact for inter-frame codecs.
So we still walk the whole stream with ``grab()`` (decodes but skips the colour conversion and the copy) and
count the frames ourselves; ``retrieve()`` runs only for frames the clips use. Which frames those are depends
on T, known only at the end: we guess them from ``CAP_PROP_FRAME_COUNT`` and, when the real count differs
and a needed frame was skipped, decode a second time (counted in ``decode_passes``).

``read()`` is ``grab()`` then ``retrieve()``, so the counts agree unless a frame grabs but fails to convert;
such a frame among those we retrieve ends the video at that point, as it ended the original's loop.

Retrieved frames go straight into one preallocated buffer. BGR->RGB is a channel reversal, the same pure
permutation as the original's split/merge; the extraction does it after resizing. Missing, unreadable and
frameless videos are :class:`DataError` naming the file (the original gave T = 0 and an IndexError, B22, or
died on ``cv2.waitKey`` under headless OpenCV, B21: nothing here touches the GUI).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dualvgr.core.errors import DataError
from dualvgr.features.sampling import clip_frame_indices


@dataclass(frozen=True)
class ClipFrames:
    """The distinct frames a video's clips use, and where each clip frame is among them."""

    frames: np.ndarray  # (U, H, W, 3) uint8 RGB (or BGR if asked), distinct frames in increasing frame order
    index: np.ndarray  # (N, F) int64 positions into `frames`
    frame_ids: np.ndarray  # (U,) frame numbers of `frames`
    total_frames: int  # T, as the original's read-every-frame loop counts it
    decode_passes: int  # 1, or 2 when the container's frame count was wrong

    def clips(self) -> np.ndarray:
        return self.frames[self.index]  # (N, F, H, W, 3)


def _open(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise DataError(f"video file not found: {path}")
    if not os.access(path, os.R_OK):
        raise DataError(f"video file not readable (permissions): {path}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DataError(
            f"cannot open video {path}: OpenCV's video backends cannot read it (corrupt file, unsupported "
            f"container or codec, or not a video)"
        )
    return capture


def bgr_to_rgb(frames: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) BGR -> a new RGB array: the original's split/merge, a pure channel permutation."""
    flat = frames.reshape(-1, *frames.shape[-2:])  # cvtColor takes one 2D image of 3-channel pixels
    return cv2.cvtColor(flat, cv2.COLOR_BGR2RGB).reshape(frames.shape)


class _FrameStore:
    """Retrieved frames, written straight into one (capacity, H, W, 3) buffer: no per-frame array, no stack."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.buffer: np.ndarray | None = None
        self.slots: dict[int, int] = {}  # frame number -> row of `buffer`
        self.extra: dict[int, np.ndarray] = {}  # frames of another size, or beyond the capacity

    def retrieve(self, capture: cv2.VideoCapture, frame: int) -> bool:
        row = len(self.slots)
        target = self.buffer[row] if self.buffer is not None and row < self.capacity else None
        ok, image = capture.retrieve(target) if target is not None else capture.retrieve()
        if not ok:
            return False
        if target is not None and image.ctypes.data == target.ctypes.data:
            self.slots[frame] = row
        elif self.buffer is None and row < self.capacity:  # the first frame tells the size
            self.buffer = np.empty((self.capacity, *image.shape), np.uint8)
            self.buffer[0] = image
            self.slots[frame] = 0
        else:  # OpenCV allocated anew (size changed mid-stream): keep it apart
            self.extra[frame] = image.copy()
        return True

    def __contains__(self, frame: int) -> bool:
        return frame in self.slots or frame in self.extra

    def take(self, frames: Sequence[int]) -> np.ndarray:
        """(len(frames), H, W, 3): a view of the buffer when its first rows are exactly these frames in order."""
        if not self.extra and list(self.slots) == list(frames):  # rows are filled 0, 1, ... in frame order
            return self.buffer[: len(frames)]
        return np.stack([self.extra[f] if f in self.extra else self.buffer[self.slots[f]] for f in frames])

    def update(self, other: _FrameStore) -> None:
        for frame in other.slots:
            self.extra[frame] = other.buffer[other.slots[frame]]
        self.extra.update(other.extra)


def _walk(
    capture: cv2.VideoCapture, wanted: Sequence[int], *, stop_after: int | None = None
) -> tuple[_FrameStore, int]:
    """One pass: grab every frame (up to ``stop_after``), retrieve the wanted ones; returns them and the count."""
    store, wanted_set = _FrameStore(len(wanted)), set(wanted)
    count = 0
    try:
        while (stop_after is None or count <= stop_after) and capture.grab():
            if count in wanted_set and not store.retrieve(capture, count):
                break  # read() would have failed here: the original's video ends at this frame
            count += 1
    finally:
        capture.release()
    return store, count


def read_clip_frames(
    path: str | os.PathLike, num_clips: int, frames_per_clip: int, *, channels: str = "rgb"
) -> ClipFrames:
    """Decode the frames the original's clips of ``path`` use (source size), counting T exactly.

    ``channels="bgr"`` leaves OpenCV's order: resizing treats channels independently, so the extraction swaps
    them after resizing, on smaller frames (the same values as swapping first).
    """
    if channels not in ("rgb", "bgr"):
        raise ValueError(f"channels must be 'rgb' or 'bgr', got {channels!r}")
    path = Path(path)
    capture = _open(path)
    hint = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))  # metadata: a guess of T, checked below
    guessed = clip_frame_indices(hint, num_clips, frames_per_clip) if hint > 0 else np.empty(0, np.int64)
    store, total = _walk(capture, np.unique(guessed).tolist())
    indices = clip_frame_indices(total, num_clips, frames_per_clip, source=str(path))  # (N, F); T = 0 raises
    frame_ids, index = np.unique(indices, return_inverse=True)
    missing = [int(i) for i in frame_ids if int(i) not in store]
    passes = 1
    if missing:  # the container's frame count was wrong: the centres moved
        more, _ = _walk(_open(path), missing, stop_after=max(missing))
        store.update(more)
        passes = 2
        if any(i not in store for i in missing):
            raise DataError(f"{path}: frames {missing[:5]} could not be decoded again on a second pass")
    frames = store.take(frame_ids.tolist())  # (U, H, W, 3) BGR
    if channels == "rgb":
        frames = bgr_to_rgb(frames)
    return ClipFrames(frames, index.reshape(indices.shape), frame_ids, total, passes)


def read_video_clips(path: str | os.PathLike, num_clips: int, frames_per_clip: int = 16) -> tuple[np.ndarray, int]:
    """The original's clips of ``path`` as (N, F, H, W, 3) uint8 RGB at source size, and its frame count T."""
    clip_frames = read_clip_frames(path, num_clips, frames_per_clip)
    return clip_frames.clips(), clip_frames.total_frames
