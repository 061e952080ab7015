"""The ``train`` stage (the project's main job): features + questions -> a trained DualVGR, scored on one split.

Input: both feature files, the questions stage's outputs, ``model.*`` and ``train.*`` of the spec (one run per
seed). Output: ``best.pt`` (best val accuracy, strictly better), ``last.pt`` (resume state),
``<eval_split>_predictions.csv``, TensorBoard event files. Logs the per-epoch metrics, and the best checkpoint's
final scores on ``train.eval_split`` (and the answer-prior baseline's) under the prefix ``metrics.py`` maps the
split to: ``test_`` (the paper's split) or ``best_val_`` (then no ``test_*`` metric exists, and scoring best.pt
on val again must reproduce the val accuracy it was selected with, exactly). Questions dropped for lack of
features are logged per split. A killed run resumes from ``last.pt`` when started again; a damaged one is set
aside and the seed starts from scratch (resume.py). Under torchrun, rank 0 runs this stage and sends each job to
the other ranks, which :func:`follow` it (the stage's ``follow``, dualvgr.core.ranks).
"""

from __future__ import annotations

import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter

from dualvgr.core.device import resolve_device, set_tf32
from dualvgr.core.errors import DataError, HarnessError
from dualvgr.core.ranks import Ranks
from dualvgr.core.schema import ExperimentSpec
from dualvgr.core.spec import replace_in, spec_hash
from dualvgr.core.stage import Stage, StageContext, StageResult, seed_label
from dualvgr.core.tracking import TAG_DEVIATION_PREFIX, RunLogger
from dualvgr.data.annotations import SPLITS
from dualvgr.model import load_model_checkpoint
from dualvgr.train.build import build_model, recipe_from
from dualvgr.train.distributed import Distributed
from dualvgr.train.inputs import load_inputs
from dualvgr.train.loop import BEST, LAST, Trainer, TrainState
from dualvgr.train.metrics import final_metric, final_metric_prefix, questions_dropped_metric
from dualvgr.train.predictions import predictions_file
from dualvgr.train.resume import SetAside, set_aside, short_reason
from dualvgr.train.scoring import SplitScore, score_split

TAG_SET_ASIDE = "dualvgr.checkpoint.set_aside"  # damaged checkpoints moved aside before this run trained


class RescoreMismatch(HarnessError):
    """The best checkpoint, scored again on val, does not give the accuracy it was selected with."""


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
    split = spec.train.eval_split
    prefix = final_metric_prefix(split)  # an unscorable split fails here, before any training
    device = resolve_device(spec.train.device)
    if dist.active and device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    set_tf32(spec.train.tf32)
    recipe = recipe_from(spec, device)
    inputs = load_inputs(spec, job.inputs, device)
    model = build_model(spec, inputs).to(device)
    extra = {"spec_hash": spec_hash(spec), "fingerprint": job.fingerprint,
             "vocabulary": inputs.vocabulary.to_json_dict(), "vocabulary_fingerprint": inputs.vocabulary.fingerprint()}
    epoch_log = _EpochLog(log)
    network = dist.wrap(model, device, find_unused=spec.model.original_graph_indexing)
    if spec.train.compile:
        network = torch.compile(network)
    trainer = Trainer(network, recipe, inputs.train, inputs.val, inputs.features, job.out_dir, device,
                      checkpoint_extra=extra, on_epoch=epoch_log, dist=dist, progress=progress,
                      stop_after_epoch=stop_after_epoch)
    resumed = trainer.resume()  # replays the finished epochs into MLflow
    if log is not None:
        _report_set_aside(log, trainer.set_aside, spec.train.seed)
        if resumed:
            log.set_tags({"dualvgr.resumed_from_epoch": trainer.state.epoch})
        epoch_log.writer = SummaryWriter(str(_tensorboard_dir(spec, job, fresh=not resumed)))
        for epoch, metrics in enumerate(trainer.state.history):
            epoch_log.write_tensorboard(epoch, metrics)
    state = trainer.fit()
    epoch_log.close()
    if not dist.is_main:
        return {}

    best = _load_best(trainer.best_path, spec.train.seed, state.best_epoch, device)
    score = score_split(best, inputs, split, job.out_dir, batch_size=recipe.batch_size, device=device,
                        precision=recipe.precision, workers=recipe.workers)
    if split == "val":  # the split best.pt was selected on: its score there is already known, exactly
        _check_rescore(score, state, trainer.best_path)
    final = {"best_val_acc": state.best_val, "best_epoch": state.best_epoch} | score.metrics(prefix)
    final |= {questions_dropped_metric(name): inputs.dropped[name] for name in SPLITS}
    if log is not None:
        log.log_metrics(final)
        _log_artifacts(log, epoch_log.directory)
    return final


def send_job(job: TrainJob, dist: Distributed) -> None:
    """Rank 0: hand ``job`` to every other rank under torchrun, whose :func:`follow` trains it."""
    dist.send(TRAIN_STAGE.name, job)


def follow(job: TrainJob, ranks: Ranks) -> None:
    """Ranks > 0 under torchrun (the train stage's ``follow``): train rank 0's ``job``, their share of each batch.

    Rank 0 runs the pipeline as usual (upstream stages, the cache, MLflow); the other ranks never touch the
    tracking store or write checkpoints.
    """
    train_job(job, log=None, dist=Distributed.from_environment(), progress=False)


def run_train(ctx: StageContext) -> StageResult:
    spec = ctx.spec
    dist = Distributed.from_environment()
    job = TrainJob(spec, {f"{stage}.{name}": path for stage, rec in ctx.upstream.items()
                          for name, path in rec.outputs.items()}, ctx.out_dir, ctx.fingerprint)
    _log_run_facts(ctx, spec)
    if dist.active:
        send_job(job, dist)
    final = train_job(job, ctx.log, dist, progress=ctx.progress)
    split = spec.train.eval_split
    outputs = {"best": ctx.out_dir / BEST, "last": ctx.out_dir / LAST,
               "predictions": ctx.out_dir / predictions_file(split)}
    return StageResult(
        outputs=outputs,
        summary=f"seed {spec.train.seed}: best val {final['best_val_acc']:.4f} (epoch {final['best_epoch'] + 1}); "
        f"best checkpoint on {split}: {final[final_metric(split)]:.4f} vs answer prior "
        f"{final[final_metric(split, 'prior_acc')]:.4f}" + _dropped_note(final),
    )


class _EpochLog:
    """Per-epoch metrics to MLflow (when logging) and TensorBoard (once its writer is open)."""

    def __init__(self, log: RunLogger | None):
        self.log, self.writer = log, None

    @property
    def directory(self) -> Path | None:
        return Path(self.writer.log_dir) if self.writer is not None else None

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        if self.log is not None:
            self.log.log_metrics(metrics, step=epoch)
        self.write_tensorboard(epoch, metrics)

    def write_tensorboard(self, epoch: int, metrics: dict[str, float]) -> None:
        if self.writer is None:
            return
        for name, value in metrics.items():
            self.writer.add_scalar(name.replace("_acc_", "_acc/").replace("train_loss_", "train_loss/"), value, epoch)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _report_set_aside(log: RunLogger, moved: list[SetAside], seed: int) -> None:
    """Say on stderr and in a tag that a damaged checkpoint was moved aside and the seed starts fresh."""
    if not moved:
        return
    for record in moved:
        print(f"[train] {record.describe()}; seed {seed} starts from scratch", file=sys.stderr, flush=True)
    log.set_tags({TAG_SET_ASIDE: "; ".join(f"{r.path.name} -> {r.moved_to} ({r.reason})" for r in moved)[:4000]})


def _load_best(path: Path, seed: int, best_epoch: int, device: torch.device) -> torch.nn.Module:
    """The best-val checkpoint, or an error naming it; a damaged one is set aside so a rerun trains afresh."""
    try:
        model, _ = load_model_checkpoint(path, map_location=device)
    except DataError as error:
        moved = f"; moved aside to {set_aside(path, short_reason(error)).moved_to.name}" if path.is_file() else ""
        raise DataError(
            f"{path}, the best-val checkpoint of seed {seed} (epoch {best_epoch + 1}), cannot be scored: "
            f"{short_reason(error)}{moved}. {LAST} cannot restore the best epoch's weights: run the train stage "
            f"again and seed {seed} trains from scratch"
        ) from error
    return model


def _check_rescore(score: SplitScore, state: TrainState, best_path: Path) -> None:
    """Scoring best.pt on val must give exactly the val accuracy its epoch was selected with."""
    rescored = score.scores.get("acc", math.nan)
    if rescored != state.best_val:
        raise RescoreMismatch(
            f"rescoring {best_path} on val gives accuracy {rescored!r} ({score.correct}/{score.questions}), but "
            f"training selected it at epoch {state.best_epoch + 1} with val accuracy {state.best_val!r}: best.pt is "
            f"not the checkpoint training selected, or evaluation is not deterministic on this device (train.compile, "
            f"TF32). No score is reported; rerun the train stage with --force"
        )


def _dropped_note(final: dict[str, float]) -> str:
    dropped = {name: int(final[questions_dropped_metric(name)]) for name in SPLITS}
    if not any(dropped.values()):
        return ""
    return "; questions without features dropped: " + ", ".join(f"{name} {n}" for name, n in dropped.items())


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


def _tensorboard_dir(spec: ExperimentSpec, job: TrainJob, *, fresh: bool) -> Path:
    path = Path(spec.tracking.tensorboard_dir) / spec.name / f"seed{spec.train.seed}-{job.fingerprint[:8]}"
    if path.exists() and fresh:
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
    follow=follow,
)
