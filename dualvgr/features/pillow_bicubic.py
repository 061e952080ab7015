"""Pillow's bicubic resize of uint8 RGB frames, bit for bit, several times faster on a batch of frames.

Follows ``dualvgr-original.md`` §2.3: the original resized every clip frame with ``PIL.Image.resize(...,
BICUBIC)``, and on a CPU that resize is most of the preprocessing once decoding is cut to the frames the clips
need. Pillow's 8-bit resampler (``libImaging/Resample.c``) is integer arithmetic fixed by its coefficients:

- per output position ``o`` of an axis resized from ``n_in`` to ``n_out``: ``scale = n_in / n_out``, a
  bicubic kernel (a = -0.5, support 2) stretched by ``max(scale, 1)``, taps ``start .. start+count-1`` around
  ``centre = (o + 0.5) * scale``; the double weights are normalised to sum 1, then rounded half away from
  zero to 22-bit fixed point (``PRECISION_BITS = 32 - 8 - 2``);
- output = ``clamp((2**21 + sum(pixel * weight)) >> 22, 0, 255)`` in 32-bit integers;
- two passes rounded to uint8 in between, each skipped when its axis keeps its size; horizontal first, except
  that Pillow 13.0 (installed here) goes vertical first when the height shrinks more than twice as much as
  the width.

We compute the same coefficients in Python doubles and run the same integer sums, but arranged so that the
summed axis is the leading one and every multiply-add runs over a contiguous row (one frame row of all
columns and channels): the compiler vectorises that, where Pillow's per-pixel loop cannot be. Frames are
transposed in cache for the horizontal pass. The results equal Pillow's exactly; :func:`resize_bicubic`
checks it once per size pair and process on a random probe frame (which also tells the installed Pillow's
pass order) and falls back to Pillow if they ever differed (e.g. a Pillow built with fused multiply-add
changing a double weight).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numba
import numpy as np
from PIL import Image

PRECISION_BITS = 32 - 8 - 2  # Pillow: 8 bits of result, 2 spare bits for negative lobes and overshoot
_HALF = 1 << (PRECISION_BITS - 1)
_SUPPORT = 2.0  # bicubic kernel radius before stretching


def _bicubic_kernel(x: float) -> float:
    """Pillow's bicubic kernel, a = -0.5; the operations in Pillow's order (doubles round alike)."""
    a = -0.5
    if x < 0.0:
        x = -x
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


@dataclass(frozen=True)
class AxisCoefficients:
    """How each of ``n_out`` positions sums input positions ``starts[o] .. starts[o] + counts[o] - 1``."""

    starts: np.ndarray  # (n_out,) int64
    counts: np.ndarray  # (n_out,) int64
    weights: np.ndarray  # (n_out, max_taps) int32, 22-bit fixed point; unused taps are 0


@functools.lru_cache(maxsize=64)
def axis_coefficients(n_in: int, n_out: int) -> AxisCoefficients:
    """Pillow's fixed-point bicubic coefficients for resizing one axis from ``n_in`` to ``n_out``."""
    if n_in < 1 or n_out < 1:
        raise ValueError(f"cannot resize an axis of {n_in} pixels to {n_out}: both must be at least 1")
    scale = float(n_in) / n_out
    filterscale = max(scale, 1.0)
    support = _SUPPORT * filterscale
    max_taps = int(math.ceil(support)) * 2 + 1
    starts = np.zeros(n_out, np.int64)
    counts = np.zeros(n_out, np.int64)
    weights = np.zeros((n_out, max_taps), np.int32)
    for o in range(n_out):
        centre = (o + 0.5) * scale
        inverse = 1.0 / filterscale
        start = max(int(centre - support + 0.5), 0)  # int() truncates toward zero, as C's cast
        stop = min(int(centre + support + 0.5), n_in)
        taps = [_bicubic_kernel((x + start - centre + 0.5) * inverse) for x in range(stop - start)]
        total = 0.0
        for tap in taps:  # sequential sum, Pillow's order
            total += tap
        if total != 0.0:
            taps = [tap / total for tap in taps]
        for x, tap in enumerate(taps):
            fixed = tap * (1 << PRECISION_BITS)
            weights[o, x] = int(fixed - 0.5) if tap < 0 else int(fixed + 0.5)
        starts[o], counts[o] = start, stop - start
    return AxisCoefficients(starts, counts, weights)


@numba.njit(cache=True, nogil=True)
def _resample_leading_axis(source, starts, counts, weights, out):  # pragma: no cover - compiled
    """(n_in, m) uint8 -> (n_out, m) uint8: Pillow's integer sums along axis 0, vectorised along axis 1."""
    n_out, m = out.shape
    accumulator = np.empty(m, np.int32)
    for o in range(n_out):
        accumulator[:] = _HALF
        for t in range(counts[o]):
            weight = weights[o, t]
            row = source[starts[o] + t]
            for j in range(m):
                accumulator[j] += np.int32(row[j]) * weight
        for j in range(m):
            value = accumulator[j] >> PRECISION_BITS
            out[o, j] = 0 if value < 0 else (255 if value > 255 else value)


@numba.njit(cache=True, nogil=True)
def _swap_leading_axes(source, out):  # pragma: no cover - compiled
    """(a, b, 3) -> (b, a, 3), tiled so both sides stay in cache."""
    rows, cols, _ = source.shape
    tile = 32
    for row0 in range(0, rows, tile):
        for col0 in range(0, cols, tile):
            for col in range(col0, min(col0 + tile, cols)):
                for row in range(row0, min(row0 + tile, rows)):
                    out[col, row, 0] = source[row, col, 0]
                    out[col, row, 1] = source[row, col, 1]
                    out[col, row, 2] = source[row, col, 2]


@numba.njit(cache=True, nogil=True)
def _horizontal_pass(frames, starts, counts, weights, out):  # pragma: no cover - compiled
    """(U, H, W, 3) -> (U, H, w, 3): each frame transposed in cache, resampled along its leading axis, back."""
    count, height, width, channels = frames.shape
    new_width = out.shape[2]
    transposed = np.empty((width, height, channels), np.uint8)  # (W, H, 3)
    narrowed = np.empty((new_width, height, channels), np.uint8)  # (w, H, 3)
    for u in range(count):
        _swap_leading_axes(frames[u], transposed)
        _resample_leading_axis(
            transposed.reshape(width, height * channels), starts, counts, weights,
            narrowed.reshape(new_width, height * channels),
        )
        _swap_leading_axes(narrowed, out[u])


@numba.njit(cache=True, nogil=True)
def _vertical_pass(frames, starts, counts, weights, out):  # pragma: no cover - compiled
    """(U, H, W, 3) -> (U, h, W, 3): rows are the leading axis of a frame already."""
    count, height, width, channels = frames.shape
    new_height = out.shape[1]
    for u in range(count):
        _resample_leading_axis(
            frames[u].reshape(height, width * channels), starts, counts, weights,
            out[u].reshape(new_height, width * channels),
        )


def _resize_width(frames: np.ndarray, width: int) -> np.ndarray:
    count, height, in_width, channels = frames.shape
    if width == in_width:
        return frames  # Pillow skips a pass whose axis keeps its size
    out = np.empty((count, height, width, channels), np.uint8)
    coefficients = axis_coefficients(in_width, width)
    _horizontal_pass(frames, coefficients.starts, coefficients.counts, coefficients.weights, out)
    return out


def _resize_height(frames: np.ndarray, height: int) -> np.ndarray:
    count, in_height, width, channels = frames.shape
    if height == in_height:
        return frames
    out = np.empty((count, height, width, channels), np.uint8)
    coefficients = axis_coefficients(in_height, height)
    _vertical_pass(frames, coefficients.starts, coefficients.counts, coefficients.weights, out)
    return out


def _vectorised_resize(frames: np.ndarray, height: int, width: int, *, vertical_first: bool) -> np.ndarray:
    if vertical_first:
        return _resize_width(_resize_height(frames, height), width)
    return _resize_height(_resize_width(frames, width), height)


def pillow_resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """The yardstick: ``Image.resize((width, height), BICUBIC)`` frame by frame (PIL sizes are (w, h))."""
    out = np.empty((len(frames), height, width, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        out[i] = np.asarray(Image.fromarray(frame).resize((width, height), Image.BICUBIC))
    return out


@functools.lru_cache(maxsize=64)
def _pillow_pass_order(in_height: int, in_width: int, height: int, width: int) -> bool | None:
    """Whether this Pillow runs the vertical pass first for this size pair; None if neither order matches it.

    Older Pillow always went horizontal first (its development tree of August 2026 still did); 13.0 goes
    vertical first when the height shrinks more than twice as much as the width. Rounding to uint8 between the
    passes makes the order visible, so we ask the installed Pillow with a random probe frame rather than
    trusting its version number.
    """
    probe = np.random.default_rng(in_height * 7919 + in_width).integers(0, 256, (1, in_height, in_width, 3), np.uint8)
    expected = pillow_resize(probe, height, width)
    for vertical_first in (False, True):
        if np.array_equal(_vectorised_resize(probe, height, width, vertical_first=vertical_first), expected):
            return vertical_first
    warnings.warn(
        f"the vectorised bicubic resize {in_width}x{in_height} -> {width}x{height} differs from this Pillow's "
        f"(Pillow {Image.__version__}); using Pillow itself for this size (slower, same features)",
        RuntimeWarning,
        stacklevel=3,
    )
    return None


def resize_bicubic(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(U, H, W, 3) uint8 RGB -> (U, h, w, 3) uint8, equal to Pillow's bicubic per frame; ``size`` = (h, w)."""
    height, width = size
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (U, H, W, 3) uint8 RGB frames, got {frames.shape} {frames.dtype}")
    count, in_height, in_width, _ = frames.shape
    if (in_height, in_width) == (height, width):
        return frames.copy()  # Pillow copies when nothing changes
    if count == 0:
        return np.empty((0, height, width, 3), np.uint8)
    vertical_first = _pillow_pass_order(in_height, in_width, height, width)
    if vertical_first is None:
        return pillow_resize(frames, height, width)
    return _vectorised_resize(np.ascontiguousarray(frames), height, width, vertical_first=vertical_first)
