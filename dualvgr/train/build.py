"""Build what a run trains from the spec: the recipe and the model (no tracking here, so GPU checks and
benchmarks can use it without MLflow)."""

from __future__ import annotations

import torch

from dualvgr.core.errors import SpecError
from dualvgr.core.schema import ExperimentSpec
from dualvgr.model import DualVGR, DualVGRConfig
from dualvgr.train.inputs import TrainInputs
from dualvgr.train.loop import Recipe
from dualvgr.train.seeding import seed_everything


def recipe_from(spec: ExperimentSpec, device: torch.device) -> Recipe:
    train = spec.train
    if train.precision != "fp32" and device.type != "cuda":
        raise SpecError(
            f"train.precision {train.precision} needs a CUDA device (autocast), but the run is on {device}; "
            f"use precision fp32 on the CPU"
        )
    return Recipe(
        epochs=train.epochs, lr=train.lr, lr_decay_every=train.lr_decay_every, lr_decay_factor=train.lr_decay_factor,
        grad_clip=train.grad_clip, batch_size=train.batch_size, seed=train.seed, alpha=spec.model.alpha,
        beta=spec.model.beta, precision=train.precision, workers=train.workers,
        sync_every=1 if device.type == "cpu" else 25,
    )


def build_model(spec: ExperimentSpec, inputs: TrainInputs) -> DualVGR:
    """The model of the spec, seeded as the original (torch seeded before construction), GloVe copied in."""
    seed_everything(spec.train.seed)
    model = DualVGR(DualVGRConfig(
        question_vocab_size=inputs.vocabulary.num_question_tokens,
        answer_vocab_size=inputs.vocabulary.num_answers,
        vision_dim=spec.model.vision_dim, module_dim=spec.model.module_dim, word_dim=spec.model.word_dim,
        num_clips=spec.features.num_clips, frames_per_clip=spec.features.appearance.frames_per_clip,
        unit_layers=spec.model.unit_layers, graph_layers=spec.model.graph_layers, gat_heads=spec.model.gat_heads,
        original_graph_indexing=spec.model.original_graph_indexing,
    ))
    if inputs.glove is not None:
        model.load_glove(inputs.glove)  # shape-checked copy (B31)
    return model
