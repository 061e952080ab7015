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

BGR->RGB uses ``cv2.cvtColor``, a pure channel permutation identical to split/merge. Missing, unreadable and
frameless videos are :class:`DataError` naming the file (the original gave T = 0 and an IndexError, B22, or
died on ``cv2.waitKey`` under headless OpenCV, B21: nothing here touches the GUI).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dualvgr.core.errors import DataError
from dualvgr.features.sampling import clip_frame_indices


@dataclass(frozen=True)
class ClipFrames:
    """The distinct frames a video's clips use, and where each clip frame is among them."""

    frames: np.ndarray  # (U, H, W, 3) uint8 RGB, distinct frames in increasing frame order
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


def _rgb(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def _walk(
    capture: cv2.VideoCapture, wanted: set[int], *, stop_after: int | None = None
) -> tuple[dict[int, np.ndarray], int]:
    """One pass: grab every frame (up to ``stop_after``), retrieve the wanted ones; returns them and the count."""
    kept: dict[int, np.ndarray] = {}
    count = 0
    try:
        while (stop_after is None or count <= stop_after) and capture.grab():
            if count in wanted:
                ok, frame = capture.retrieve()
                if not ok:  # read() would have failed here: the original's video ends at this frame
                    break
                kept[count] = _rgb(frame)
            count += 1
    finally:
        capture.release()
    return kept, count


def read_clip_frames(path: str | os.PathLike, num_clips: int, frames_per_clip: int) -> ClipFrames:
    """Decode the frames the original's clips of ``path`` use (RGB, source size), counting T exactly."""
    path = Path(path)
    capture = _open(path)
    hint = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))  # metadata: a guess of T, checked below
    guessed = clip_frame_indices(hint, num_clips, frames_per_clip) if hint > 0 else np.empty(0, np.int64)
    kept, total = _walk(capture, set(guessed.ravel().tolist()))
    indices = clip_frame_indices(total, num_clips, frames_per_clip, source=str(path))  # (N, F); T = 0 raises
    frame_ids, index = np.unique(indices, return_inverse=True)
    missing = [int(i) for i in frame_ids if int(i) not in kept]
    passes = 1
    if missing:  # the container's frame count was wrong: the centres moved
        more, _ = _walk(_open(path), set(missing), stop_after=max(missing))
        kept.update(more)
        passes = 2
        if any(i not in kept for i in missing):
            raise DataError(f"{path}: frames {missing[:5]} could not be decoded again on a second pass")
    frames = np.stack([kept[int(i)] for i in frame_ids])  # (U, H, W, 3)
    return ClipFrames(frames, index.reshape(indices.shape), frame_ids, total, passes)


def read_video_clips(path: str | os.PathLike, num_clips: int, frames_per_clip: int = 16) -> tuple[np.ndarray, int]:
    """The original's clips of ``path`` as (N, F, H, W, 3) uint8 RGB at source size, and its frame count T."""
    clip_frames = read_clip_frames(path, num_clips, frames_per_clip)
    return clip_frames.clips(), clip_frames.total_frames
