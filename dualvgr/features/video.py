"""Decode only the frames the clips need, with the frame count the original's read loop sees.

Follows ``dualvgr-original.md`` §2.1. The original ``read()`` every frame until it failed (T = frames read),
converted BGR->RGB with split/merge and kept them all. The clip centres depend on T, so T must be exact:
``CAP_PROP_FRAME_COUNT`` comes from container metadata and can be wrong (estimated from duration x fps for
some containers, off by packed or dropped frames for others), and seeking is inexact for inter-frame codecs.
So we still walk the whole stream with ``grab()`` (decodes but skips the colour conversion and the copy) and
count the frames ourselves; ``retrieve()`` runs only for frames the clips use. Which frames those are depends
on T, known only at the end: we guess them from ``CAP_PROP_FRAME_COUNT`` and, when the real count differs
and a needed frame was skipped, decode a second time (counted in ``decode_passes``).

A container that declares more frames than decode is a **failed video**, not a short one. Truncating an MJPG
AVI keeps its header's count (17 of 36 frames decode from half the bytes), garbage inside an MPEG-4 stream stops
the decoder midway (18 of 36), and the original's loop sampled its clips from whatever was left, silently. So
the walk must reach ``CAP_PROP_FRAME_COUNT`` whenever the container gives one (> 0); the price is that a whole
video whose container over-declares (a count estimated from the duration) fails too, with the counts in the
message. A container declaring fewer frames than decode was only a wrong guess (the second pass above). A
wanted frame that grabs but does not convert (``read()`` would fail there) is a failed video as well. Both raise
:class:`DamagedVideo`; the feature stages then stop, or record a zero row with ``features.allow_failed_videos``.
Damage FFmpeg conceals cannot be seen here: a few garbage bytes inside one JPEG or MPEG-4 frame decode to a
smeared frame and every frame still comes out; only the dataset's content fingerprint notices such a change
against an earlier run.

Retrieved frames go straight into one preallocated buffer. BGR->RGB is a channel reversal, the same pure
permutation as the original's split/merge; the extraction does it after resizing. Missing, unreadable and
frameless videos are :class:`VideoError` naming the file (the original gave T = 0 and an IndexError, B22, or
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


FAILED_VIDEO_FIX = (
    "replace it, or set features.allow_failed_videos: true to record it as failed (a zero row, audited as a "
    "deviation)"
)


def failed_video_message(video_id: int, path: str | os.PathLike, reason: str) -> str:
    """The error a stage shows for a failed video: which one, why, and the two ways out."""
    return f"video {video_id} ({path}): {reason}; {FAILED_VIDEO_FIX}"


class VideoError(DataError):
    """A video that cannot be decoded completely; ``reason`` says why without the path (callers add their own)."""

    def __init__(self, path: str | os.PathLike, reason: str, message: str | None = None) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(message or f"{path}: {reason}")

    def failed_video(self, video_id: int) -> str:
        return failed_video_message(video_id, self.path, self.reason)


class DamagedVideo(VideoError):
    """The video opens and some frames decode, but not all it declares: truncated, or damaged midway."""


def _open(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise VideoError(path, "the file does not exist", f"video file not found: {path}")
    if not os.access(path, os.R_OK):
        reason = "the file is not readable: check its permissions"
        raise VideoError(path, reason, f"video file not readable (permissions): {path}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        reason = (
            "OpenCV's video backends cannot open it: a corrupt file, an unsupported container or codec, or not a video"
        )
        raise VideoError(path, reason, f"cannot open video {path}: {reason}")
    return capture


def _declared_frames(capture: cv2.VideoCapture) -> int:
    """The container's frame count, 0 when it gives none (metadata: checked against the decoded count)."""
    return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))


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


class _FrameFailed(Exception):
    """A frame grabbed but did not convert (``read()`` fails there): the video is damaged at ``frame``."""

    def __init__(self, frame: int) -> None:
        super().__init__(f"frame {frame} does not convert")
        self.frame = frame


def _walk(
    capture: cv2.VideoCapture, wanted: Sequence[int], *, stop_after: int | None = None
) -> tuple[_FrameStore, int]:
    """One pass: grab every frame (up to ``stop_after``), retrieve the wanted ones; returns them and the count."""
    store, wanted_set = _FrameStore(len(wanted)), set(wanted)
    count = 0
    try:
        while (stop_after is None or count <= stop_after) and capture.grab():
            if count in wanted_set and not store.retrieve(capture, count):
                raise _FrameFailed(count)
            count += 1
    finally:
        capture.release()
    return store, count


def _walk_checked(
    path: Path, capture: cv2.VideoCapture, wanted: Sequence[int], declared: int
) -> tuple[_FrameStore, int]:
    """:func:`_walk` over the whole video, whose result must be complete (:func:`check_complete`)."""
    try:
        store, total = _walk(capture, wanted)
    except _FrameFailed as failed:
        of = f" of {declared}" if declared else ""
        raise DamagedVideo(
            path, f"frame {failed.frame}{of} decodes but does not convert to an image (the file is damaged)"
        ) from None
    check_complete(path, total, declared)
    return store, total


def check_complete(path: Path, decoded: int, declared: int) -> None:
    """Refuse a video that decodes no frame, or fewer frames than its container declares (module docstring)."""
    if decoded == 0:
        raise VideoError(
            path, "no frame decodes: the file is empty, truncated or not a video OpenCV can decode",
            f"{path}: 0 frames decoded, cannot sample clips; the file is empty, truncated or not a video OpenCV can "
            f"decode (the original crashed here with IndexError, B22)",
        )
    if decoded < declared:
        raise DamagedVideo(path, f"only {decoded} of {declared} frames decode (the file is truncated or damaged)")


def count_frames(path: str | os.PathLike) -> int:
    """Decode every frame of ``path`` (no colour conversion) and return T; :class:`VideoError` if it is not whole."""
    path = Path(path)
    capture = _open(path)
    _, decoded = _walk_checked(path, capture, (), _declared_frames(capture))
    return decoded


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
    declared = _declared_frames(capture)  # metadata: a guess of T, and the least the walk must reach
    guessed = clip_frame_indices(declared, num_clips, frames_per_clip) if declared else np.empty(0, np.int64)
    store, total = _walk_checked(path, capture, np.unique(guessed).tolist(), declared)
    indices = clip_frame_indices(total, num_clips, frames_per_clip, source=str(path))  # (N, F)
    frame_ids, index = np.unique(indices, return_inverse=True)
    missing = [int(i) for i in frame_ids if int(i) not in store]
    passes = 1
    if missing:  # the container declared fewer frames than decode: the centres moved
        try:
            more, _ = _walk(_open(path), missing, stop_after=max(missing))
        except _FrameFailed as failed:
            raise DamagedVideo(path, f"frame {failed.frame} decodes but does not convert on a second pass") from None
        store.update(more)
        passes = 2
        if any(i not in store for i in missing):
            raise DamagedVideo(path, f"frames {missing[:5]} could not be decoded again on a second pass")
    frames = store.take(frame_ids.tolist())  # (U, H, W, 3) BGR
    if channels == "rgb":
        frames = bgr_to_rgb(frames)
    return ClipFrames(frames, index.reshape(indices.shape), frame_ids, total, passes)


def read_video_clips(path: str | os.PathLike, num_clips: int, frames_per_clip: int = 16) -> tuple[np.ndarray, int]:
    """The original's clips of ``path`` as (N, F, H, W, 3) uint8 RGB at source size, and its frame count T."""
    clip_frames = read_clip_frames(path, num_clips, frames_per_clip)
    return clip_frames.clips(), clip_frames.total_frames
