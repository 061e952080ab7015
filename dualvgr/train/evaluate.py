"""The ``evaluate`` stage: score any checkpoint (ours, or one saved by the original ``train.py``) on any split.

Input: ``evaluate.checkpoint`` (``best`` = this experiment's best-val checkpoint per seed, or a file path),
``evaluate.split``, the feature files and the questions stage's outputs. Output: ``<split>_predictions.csv``;
metrics ``<split>_acc``, ``<split>_acc_<type>`` and ``<split>_prior_acc``, as the train stage names them.
Fixes the original ``validate.py``: no hard-coded checkpoint path (B18), unit_layers read from the weights
(B17), ids converted on the host (B16). An original checkpoint needs the vocabulary it was trained with
(``questions.vocabulary``: its ``vocab.json``); a vocabulary that disagrees with a checkpoint is refused.
"""

from __future__ import annotations

from pathlib import Path

from dualvgr.core.device import resolve_device, set_tf32
from dualvgr.core.errors import DataError
from dualvgr.core.fingerprint import file_identity
from dualvgr.core.schema import ExperimentSpec
from dualvgr.core.stage import Stage, StageContext, StageResult, seed_label, stat_cache
from dualvgr.model import DualVGR, load_model_checkpoint
from dualvgr.text.vocabulary import Vocabulary, load_vocabulary
from dualvgr.train.inputs import load_inputs
from dualvgr.train.metrics import questions_dropped_metric
from dualvgr.train.scoring import score_split
from dualvgr.train.stage import seed_variants, train_params

FEATURE_STAGES = ("data", "appearance", "motion", "questions")


def evaluate_upstream(spec: ExperimentSpec) -> tuple[str, ...]:
    return FEATURE_STAGES + (("train",) if spec.evaluate.checkpoint == "best" else ())


def evaluate_params(spec: ExperimentSpec) -> dict:
    params = {"checkpoint": spec.evaluate.checkpoint, "split": spec.evaluate.split,
              "original_graph_indexing": spec.model.original_graph_indexing, "device": train_params(spec)["device"]}
    if spec.evaluate.checkpoint == "best":
        params["seed"] = spec.train.seed
    return params


def evaluate_external_inputs(spec: ExperimentSpec) -> dict | None:
    if spec.evaluate.checkpoint == "best":
        return None
    path = Path(spec.evaluate.checkpoint).expanduser()
    return file_identity(path, stat_cache(spec)) if path.is_file() else {"missing": str(path)}


def checked_vocabulary(model: DualVGR, payload: dict, stage_vocabulary: Vocabulary, checkpoint: Path) -> Vocabulary:
    """The vocabulary to encode questions with; a checkpoint and vocabulary that disagree are refused."""
    own = payload.get("vocabulary")
    if own is not None:
        recorded = Vocabulary(**own)
        if recorded.fingerprint() != stage_vocabulary.fingerprint():
            raise DataError(
                f"{checkpoint} was trained with another vocabulary than the questions stage produced "
                f"(V_q {recorded.num_question_tokens} vs {stage_vocabulary.num_question_tokens}, V_a "
                f"{recorded.num_answers} vs {stage_vocabulary.num_answers}); evaluate it with the experiment that "
                f"trained it, or set questions.vocabulary to the vocab.json it was trained with"
            )
    config = model.config
    if (config.question_vocab_size, config.answer_vocab_size) != (
            stage_vocabulary.num_question_tokens, stage_vocabulary.num_answers):
        raise DataError(
            f"{checkpoint} has V_q={config.question_vocab_size}, V_a={config.answer_vocab_size} but the vocabulary "
            f"has V_q={stage_vocabulary.num_question_tokens}, V_a={stage_vocabulary.num_answers}: an original "
            f"checkpoint needs the vocab.json it was trained with (set questions.vocabulary to it; a vocabulary "
            f"rebuilt by another nltk version reorders rows, B8)"
        )
    return stage_vocabulary


def run_evaluate(ctx: StageContext) -> StageResult:
    spec = ctx.spec
    paths = {f"{stage}.{name}": path for stage, rec in ctx.upstream.items() for name, path in rec.outputs.items()}
    checkpoint = paths["train.best"] if spec.evaluate.checkpoint == "best" else Path(spec.evaluate.checkpoint).expanduser()
    if not checkpoint.is_file():
        raise DataError(f"checkpoint not found: {checkpoint} (set evaluate.checkpoint to a file, or 'best')")
    device = resolve_device(spec.train.device)
    set_tf32(spec.train.tf32)
    model, payload = load_model_checkpoint(
        checkpoint, map_location=device,
        original_graph_indexing=spec.model.original_graph_indexing if spec.model.graph_layers > 1 else None,
    )
    vocabulary = checked_vocabulary(model, payload, load_vocabulary(paths["questions.vocab"]), checkpoint)
    inputs = load_inputs(spec, paths, device, vocabulary=vocabulary)
    split_name = spec.evaluate.split
    score = score_split(model, inputs, split_name, ctx.out_dir, batch_size=spec.train.batch_size, device=device,
                        precision=spec.train.precision, workers=spec.train.workers)
    metrics = score.metrics(f"{split_name}_")
    metrics[questions_dropped_metric(split_name)] = inputs.dropped[split_name]
    ctx.log.set_tags({
        "dualvgr.checkpoint.path": str(checkpoint.resolve()),
        "dualvgr.checkpoint.sha256": stat_cache(spec).sha256(checkpoint),
        "dualvgr.checkpoint.format": "harness" if payload.get("format") else "original",
        "dualvgr.checkpoint.unit_layers": model.config.unit_layers,
    })
    return StageResult(
        outputs={"predictions": score.predictions_path}, metrics=metrics,
        summary=f"{checkpoint.name} on {split_name}: accuracy {score.scores['acc']:.4f} "
        f"(answer prior {score.prior_acc:.4f}, {score.questions} questions"
        + (f", {inputs.dropped[split_name]} without features dropped)" if inputs.dropped[split_name] else ")"),
    )


EVALUATE_STAGE = Stage(
    name="evaluate",
    version="1",
    params=evaluate_params,
    run=run_evaluate,
    upstream=evaluate_upstream,
    external_inputs=evaluate_external_inputs,
    variants=lambda spec: seed_variants(spec) if spec.evaluate.checkpoint == "best" else [spec],
    run_label=seed_label,
)
