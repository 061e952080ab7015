"""The vectorised resize equals Pillow's bicubic bit for bit (dualvgr-original.md §2.3)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from dualvgr.features import pillow_bicubic
from dualvgr.features.pillow_bicubic import axis_coefficients, pillow_resize, resize_bicubic

RNG = np.random.default_rng(0)


def _pillow(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Independent of the module: PIL's (width, height) order written out here."""
    return np.stack([np.asarray(Image.fromarray(f).resize(size[::-1], Image.BICUBIC)) for f in frames])


@pytest.mark.parametrize(
    ("source", "size"),
    [
        ((240, 320), (224, 224)),  # MSVD frames -> appearance
        ((240, 320), (112, 112)),  # MSVD frames -> motion
        ((30, 40), (32, 48)),  # upscale, non-square: (height, width) order
        ((30, 40), (48, 32)),
        ((240, 320), (240, 100)),  # width only: Pillow skips the vertical pass
        ((240, 320), (100, 320)),  # height only
        ((179, 100), (11, 38)),  # height shrinks > 2x the width: Pillow 13.0 goes vertical first
        ((1, 1), (7, 9)),
        ((9, 7), (1, 1)),
    ],
)
def test_equals_pillow_bicubic(source, size):
    frames = RNG.integers(0, 256, (3, *source, 3), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to Pillow would hide a wrong vectorised result
        got = resize_bicubic(frames, size)
    assert got.shape == (3, *size, 3), f"(height, width) = {size} must give frames {size} high and wide"
    expected = _pillow(frames, size)
    assert np.array_equal(got, expected), f"{int((got != expected).sum())} pixels differ from Pillow"


def test_equals_pillow_on_random_sizes():
    rng = np.random.default_rng(7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(25):
            in_h, in_w, h, w = (int(v) for v in rng.integers(1, 300, 4))
            frames = rng.integers(0, 256, (2, in_h, in_w, 3), dtype=np.uint8)
            got = resize_bicubic(frames, (h, w))
            assert np.array_equal(got, _pillow(frames, (h, w))), f"{in_w}x{in_h} -> {w}x{h} differs from Pillow"


def test_same_size_is_a_copy_and_empty_batches_work():
    frames = RNG.integers(0, 256, (2, 8, 9, 3), dtype=np.uint8)
    same = resize_bicubic(frames, (8, 9))
    assert np.array_equal(same, frames) and not np.shares_memory(same, frames)
    assert resize_bicubic(frames[:0], (4, 4)).shape == (0, 4, 4, 3)


def test_coefficients_are_pillows_fixed_point():
    coefficients = axis_coefficients(320, 224)
    sums = coefficients.weights.sum(axis=1)
    assert np.all(np.abs(sums - (1 << 22)) <= coefficients.counts), "each row of weights sums to 1.0 in 22-bit fixed point"
    assert coefficients.starts[0] == 0 and coefficients.starts[-1] + coefficients.counts[-1] == 320
    assert coefficients.weights.shape[1] == 7, "support 2 x scale 1.43 -> ceil(2.86) * 2 + 1 taps"


def test_falls_back_to_pillow_when_the_vectorised_result_disagrees(monkeypatch):
    frames = RNG.integers(0, 256, (2, 13, 17, 3), dtype=np.uint8)
    pillow_bicubic._pillow_pass_order.cache_clear()
    monkeypatch.setattr(pillow_bicubic, "_vectorised_resize", lambda frames, h, w, vertical_first: np.zeros((1, h, w, 3), np.uint8))
    with pytest.warns(RuntimeWarning, match=r"17x13 -> 5x6 differs from this Pillow's"):
        got = resize_bicubic(frames, (6, 5))
    pillow_bicubic._pillow_pass_order.cache_clear()
    assert np.array_equal(got, pillow_resize(frames, 6, 5))


@pytest.mark.parametrize("bad", [np.zeros((2, 4, 4), np.uint8), np.zeros((1, 4, 4, 3), np.float32)])
def test_rejects_what_is_not_a_batch_of_uint8_rgb_frames(bad):
    with pytest.raises(ValueError, match=r"expected \(U, H, W, 3\) uint8 RGB frames"):
        resize_bicubic(bad, (2, 2))
