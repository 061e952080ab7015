"""Build what a run trains from the spec: the recipe and the model (no tracking here, so GPU checks and
benchmarks can use it without MLflow). ``build_model`` says how its seeding differs from the original's."""

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
        sync_every=1 if device.type == "cpu" else 25, optimizer=train.optimizer,
    )


def build_model(spec: ExperimentSpec, inputs: TrainInputs) -> DualVGR:
    """The model of the spec, GloVe copied in.

    torch, numpy and random are seeded with ``train.seed`` just before construction (the original seeded torch
    and numpy with 666 at that point), and the weights follow the original's effective initialisation
    (xavier-uniform Linear and LSTM weights, zero biases, U(-1, 1) embedding). They are not the original's
    weights for the same seed: the original's layer constructors first drew values that ours do not draw
    (xavier with gain 1.414 in the GAT, N(0, 0.01) in the MFB fusion), all overwritten afterwards but moving the
    random stream, so "seed 666" here is not the original's seed 666. Training then also departs from the
    original's random stream: each epoch's order comes from its own generator (``seeding.epoch_generator``), not
    from the global one the original's shuffling DataLoader drew from, and the optimiser is fused Adam
    (``optimizers.py``).
    """
    seed_everything(spec.train.seed)
    model = DualVGR(DualVGRConfig(
        question_vocab_size=inputs.vocabulary.num_question_tokens,
        answer_vocab_size=inputs.vocabulary.num_answers,
        vision_dim=spec.model.vision_dim, module_dim=spec.model.module_dim, word_dim=spec.model.word_dim,
        num_clips=spec.features.num_clips, frames_per_clip=spec.features.appearance.frames_per_clip,
        unit_layers=spec.model.unit_layers, graph_layers=spec.model.graph_layers, gat_heads=spec.model.gat_heads,
        graph_module=spec.model.graph_module, original_graph_indexing=spec.model.original_graph_indexing,
    ))
    if inputs.glove is not None:
        model.load_glove(inputs.glove)  # shape-checked copy (B31)
    return model
