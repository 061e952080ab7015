"""The ``train`` stage (the project's main job): features + questions -> a trained DualVGR, scored on test.

Input: both feature files, the questions stage's outputs, ``model.*`` and ``train.*`` of the spec (one run per
seed). Output: ``best.pt`` (best val accuracy, strictly better), ``last.pt`` (resume state), test predictions CSV,
TensorBoard event files. Logs the per-epoch and final metrics the report relies on (names in the README) and the
test score of the answer-prior baseline. A killed run resumes from ``last.pt`` when started again.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter

from dualvgr.core.device import resolve_device, set_tf32
from dualvgr.core.schema import ExperimentSpec
from dualvgr.core.spec import replace_in, spec_hash
from dualvgr.core.stage import Stage, StageContext, StageResult, seed_label
from dualvgr.core.tracking import TAG_DEVIATION_PREFIX, RunLogger
from dualvgr.model import load_model_checkpoint
from dualvgr.train.build import build_model, recipe_from
from dualvgr.train.distributed import Distributed
from dualvgr.train.inputs import load_inputs
from dualvgr.train.loop import BEST, Trainer, evaluate
from dualvgr.train.metrics import accuracies, prior_predictions
from dualvgr.train.predictions import write_predictions



def train_params(spec: ExperimentSpec) -> dict:
    train = spec.train
    return {
        "model": spec.model,
        "recipe": {k: getattr(train, k) for k in ("optimizer", "lr", "lr_decay_every", "lr_decay_factor", "grad_clip",
                                                   "batch_size", "epochs", "seed", "precision", "tf32", "compile",
                                                   "train_num", "val_num", "test_num", "permute_visual", "eval_split")},
        # CPU and GPU kernels give slightly different numbers; a run on one is not a cached run on the other.
        "device": resolve_device(train.device).type,
    }


def seed_variants(spec: ExperimentSpec) -> list[ExperimentSpec]:
    if not spec.train.seeds:
        return [spec]
    return [replace_in(spec, **{"train.seed": seed, "train.seeds": []}) for seed in spec.run_seeds]


@dataclass
class TrainJob:
    """Everything a rank needs to train one seed (rank 0 sends it to the others under torchrun)."""

    spec: ExperimentSpec
    inputs: dict[str, Path]  # upstream output name -> path
    out_dir: Path
    fingerprint: str


def train_job(job: TrainJob, log: RunLogger | None, dist: Distributed, progress: bool = True,
              stop_after_epoch: int | None = None) -> dict[str, float]:
    """Train one seed and score its best checkpoint; only rank 0 (``log`` given) writes and logs."""
    spec = job.spec
    device = resolve_device(spec.train.device)
    if dist.active and device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    set_tf32(spec.train.tf32)
    recipe = recipe_from(spec, device)
    inputs = load_inputs(spec, job.inputs, device)
    model = build_model(spec, inputs).to(device)
    extra = {"spec_hash": spec_hash(spec), "fingerprint": job.fingerprint,
             "vocabulary": inputs.vocabulary.to_json_dict(), "vocabulary_fingerprint": inputs.vocabulary.fingerprint()}
    tensorboard = _tensorboard_dir(spec, job) if log else None
    writer = SummaryWriter(str(tensorboard)) if tensorboard else None

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        if log is not None:
            log.log_metrics(metrics, step=epoch)
        if writer is not None:
            for name, value in metrics.items():
                writer.add_scalar(name.replace("_acc_", "_acc/").replace("train_loss_", "train_loss/"), value, epoch)
            writer.flush()

    network = dist.wrap(model, device, find_unused=spec.model.original_graph_indexing)
    if spec.train.compile:
        network = torch.compile(network)
    trainer = Trainer(network, recipe, inputs.train, inputs.val, inputs.features, job.out_dir, device,
                      checkpoint_extra=extra, on_epoch=on_epoch, dist=dist, progress=progress,
                      stop_after_epoch=stop_after_epoch)
    if trainer.resume() and log is not None:
        log.set_tags({"dualvgr.resumed_from_epoch": trainer.state.epoch})
    state = trainer.fit()
    if writer is not None:
        writer.close()
    if not dist.is_main:
        return {}

    best, _ = load_model_checkpoint(job.out_dir / BEST, map_location=device)
    scores, predictions = evaluate(best, inputs.test, inputs.features, recipe.batch_size, device,
                                   precision=recipe.precision, workers=recipe.workers)
    prior = prior_predictions(inputs.train.answers.numpy(), inputs.train.types, inputs.test.types)
    final = {"best_val_acc": state.best_val, "best_epoch": state.best_epoch}
    final |= {f"test_{name}": value for name, value in scores.items()}
    final["test_prior_acc"] = accuracies(prior, inputs.test.answers.numpy(), inputs.test.types).get("acc", math.nan)
    write_predictions(job.out_dir / "test_predictions.csv", inputs.test, predictions,
                      inputs.vocabulary.answer_idx_to_token)
    if log is not None:
        log.log_metrics(final)
        _log_artifacts(log, tensorboard)
    return final


def run_train(ctx: StageContext) -> StageResult:
    spec = ctx.spec
    dist = Distributed.from_environment()
    job = TrainJob(spec, {f"{stage}.{name}": path for stage, rec in ctx.upstream.items()
                          for name, path in rec.outputs.items()}, ctx.out_dir, ctx.fingerprint)
    _log_run_facts(ctx, spec)
    if dist.active:
        from dualvgr.train.followers import send_job

        send_job(job, dist)
    final = train_job(job, ctx.log, dist, progress=ctx.progress)
    outputs = {"best": ctx.out_dir / BEST, "last": ctx.out_dir / "last.pt",
               "predictions": ctx.out_dir / "test_predictions.csv"}
    split = spec.train.eval_split
    return StageResult(
        outputs=outputs,
        summary=f"seed {spec.train.seed}: best val {final['best_val_acc']:.4f} (epoch {final['best_epoch'] + 1}); "
        f"{split} {final['test_acc']:.4f} vs answer prior {final['test_prior_acc']:.4f}",
    )


def _log_run_facts(ctx: StageContext, spec: ExperimentSpec) -> None:
    device = resolve_device(spec.train.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    ctx.log.set_tags({"dualvgr.device": f"{device.type}:{name}" if device.type == "cuda" else "cpu",
                      "dualvgr.precision": spec.train.precision})
    deviations = {}
    if spec.train.eval_split != "test":
        deviations["eval_split"] = spec.train.eval_split
    if spec.train.precision != "fp32":
        deviations["precision"] = spec.train.precision
    if spec.train.permute_visual:
        deviations["permute_visual"] = "true"
    if spec.train.tf32 and device.type == "cuda":
        deviations["tf32"] = "true"
    if spec.train.compile:
        deviations["compile"] = "true"
    if deviations:
        ctx.log.set_tags({TAG_DEVIATION_PREFIX + key: value for key, value in deviations.items()})


def _tensorboard_dir(spec: ExperimentSpec, job: TrainJob) -> Path:
    path = Path(spec.tracking.tensorboard_dir) / spec.name / f"seed{spec.train.seed}-{job.fingerprint[:8]}"
    if path.exists() and not (job.out_dir / "last.pt").exists():
        shutil.rmtree(path)  # a fresh (not resumed) run starts a fresh log
    path.mkdir(parents=True, exist_ok=True)
    return path


def _log_artifacts(log: RunLogger, tensorboard: Path | None) -> None:
    """The event files; checkpoints and predictions are outputs, which the runner logs or references."""
    if tensorboard is not None:
        log.log_artifact(tensorboard, "tensorboard")


TRAIN_STAGE = Stage(
    name="train",
    version="1",
    params=train_params,
    run=run_train,
    upstream=lambda spec: ("data", "appearance", "motion", "questions"),
    variants=seed_variants,
    run_label=seed_label,
)
