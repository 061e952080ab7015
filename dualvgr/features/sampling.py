"""Which frames make up each clip: the original's clip sampler, edge padding included.

Follows ``dualvgr-original.md`` §2.2 (identical for appearance and motion). Centres are
``np.linspace(0, T, N + 2, dtype=np.int32)[1:N + 1]`` (float64 then truncated, so ``np.linspace`` itself is
used to reproduce the rounding). Around each centre ``c`` the window is ``[s, e) = [c - F//2, c - F//2 + F)``,
then the original's edge rules run in its order:

1. ``s < 0``  -> ``s = 0``;
2. ``e > T``  -> ``e = T - 1`` (``e == T`` is left alone);
3. clip = frames ``s .. e-1``;
4. ``s == 0`` -> prepend ``F - (e - s)`` copies of frame 0;
5. ``e == T - 1`` -> append ``F - (e - s)`` copies of frame ``T - 1`` (the shortage is recomputed from s and e,
   not from the clip's current length, and frame ``T - 1`` was excluded by the slice);
6. keep the first ``F`` frames.

Generalisation for ``F != 16`` (the original only ever ran F = 16): the window starts ``F//2`` frames before the
centre and holds ``F`` frames. For even F that is exactly the original's ``c - F/2 .. c + F/2 - 1``; for odd F
the original's ``c ± int(F/2)`` would give F - 1 frames and crash on the missing last one, so we take one more
frame at the end. Two further cases where the original crashed and we do not: T = 1 (the original's
``np.concatenate`` of padding with an empty clip raised ``ValueError``) gives F copies of frame 0; T = 0 is a
:class:`DataError` naming the video (the original raised a bare ``IndexError``, bug B22).
"""

from __future__ import annotations

import numpy as np

from dualvgr.core.errors import DataError


def clip_centres(total_frames: int, num_clips: int) -> np.ndarray:
    """The N clip centres the original picks for a video of ``total_frames`` frames, as int64."""
    # int32 first, exactly as the original, so truncation and overflow behave identically.
    return np.linspace(0, total_frames, num_clips + 2, dtype=np.int32)[1 : num_clips + 1].astype(np.int64)


def _clip(centre: int, total_frames: int, frames_per_clip: int) -> list[int]:
    """Frame indices of one clip, rules 1-6 of the module docstring in the original's order."""
    start = centre - frames_per_clip // 2
    end = start + frames_per_clip
    if start < 0:
        start = 0
    if end > total_frames:
        end = total_frames - 1
    clip = list(range(start, end))
    if start == 0:
        clip = [0] * (frames_per_clip - (end - start)) + clip
    if end == total_frames - 1:
        clip = clip + [total_frames - 1] * (frames_per_clip - (end - start))
    return clip[:frames_per_clip]


def clip_frame_indices(
    total_frames: int, num_clips: int, frames_per_clip: int = 16, *, source: str | None = None
) -> np.ndarray:
    """Frame indices of every clip, shape (num_clips, frames_per_clip), int64, as the original samples them.

    ``source`` (a path or name) only serves the error message when the video has no frame.
    """
    if num_clips < 1 or frames_per_clip < 1:
        raise ValueError(
            f"num_clips={num_clips} and frames_per_clip={frames_per_clip} must both be >= 1 "
            f"(the original used num_clips 8/16/20 and 16 frames per clip)"
        )
    if total_frames < 1:
        raise DataError(
            f"{source or 'video'}: {total_frames} frames decoded, cannot sample {num_clips} clips; the file is "
            f"empty, truncated or not a video OpenCV can decode (the original crashed here with IndexError, B22)"
        )
    clips = [_clip(int(c), total_frames, frames_per_clip) for c in clip_centres(total_frames, num_clips)]
    return np.asarray(clips, dtype=np.int64)  # (N, F)
