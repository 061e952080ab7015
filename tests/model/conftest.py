"""Fixtures for the model tests: tiny configurations and random inputs, so every test runs in milliseconds."""

from __future__ import annotations

from typing import Any, Callable

import pytest
import torch

from dualvgr.model import DualVGR, DualVGRConfig

# Small but structurally complete: module_dim divisible by the 4 GAT heads, vision_dim unlike module_dim.
TINY: dict[str, Any] = dict(
    question_vocab_size=11,
    answer_vocab_size=7,
    vision_dim=24,
    module_dim=16,
    word_dim=6,
    num_clips=3,
    frames_per_clip=4,
)


@pytest.fixture(autouse=True)
def _one_cpu_thread():
    """Tiny tensors gain nothing from intra-op threads, and on a busy machine each parallel region can wait a
    scheduler slice; tests that need a thread count set it themselves."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def tiny_config() -> Callable[..., DualVGRConfig]:
    def build(**overrides: Any) -> DualVGRConfig:
        return DualVGRConfig(**{**TINY, **overrides})

    return build


@pytest.fixture
def tiny_model(tiny_config) -> Callable[..., DualVGR]:
    def build(seed: int = 0, **overrides: Any) -> DualVGR:
        torch.manual_seed(seed)
        return DualVGR(tiny_config(**overrides))

    return build


@pytest.fixture
def make_inputs() -> Callable[..., dict[str, torch.Tensor]]:
    """appearance (B,N,F,V), motion (B,N,V), question (B,L), question_len (B,) on the CPU, answers (B,)."""

    def build(
        config: DualVGRConfig,
        *,
        batch: int = 2,
        clips: int | None = None,
        frames: int | None = None,
        length: int = 5,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        n = clips or config.num_clips or 3
        f = frames or config.frames_per_clip or 4
        lengths = torch.randint(1, length + 1, (batch,), generator=g)
        lengths[0] = length  # the longest question fills the padded length, as a collate function pads
        question = torch.randint(2, config.question_vocab_size, (batch, length), generator=g)
        question[torch.arange(length) >= lengths[:, None]] = 0  # <NULL> padding
        return {
            "appearance": torch.randn(batch, n, f, config.vision_dim, generator=g).to(device),
            "motion": torch.randn(batch, n, config.vision_dim, generator=g).to(device),
            "question": question.to(device),
            "question_len": lengths,
            "answers": torch.randint(0, config.answer_vocab_size, (batch,), generator=g).to(device),
        }

    return build


def forward(model: DualVGR, inputs: dict[str, torch.Tensor]):
    return model(inputs["appearance"], inputs["motion"], inputs["question"], inputs["question_len"])


@pytest.fixture
def run() -> Callable:
    """run(model, inputs) -> DualVGROutput."""
    return forward
