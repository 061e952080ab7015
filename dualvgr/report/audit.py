"""Fidelity audit: every difference between the reported runs and the paper's configuration, with its severity.

Two sources of findings, merged by topic (one finding per topic, evidence from every run that shows it):

1. **Spec diff.** Each run's resolved spec, flattened (``train.epochs``), against the paper's experiment file
   flattened: the one the paper's table names (``paper_tables.yaml``; a demo is audited against the file of the
   table it is shown beside). Whatever a rule needs to know about a data set (its ``dataset.kind``, its published
   split sizes) comes from that table, never from a data set's name here.
   :data:`KEY_RULES` classifies every key of the schema:

   - *cosmetic*: labels and report/tracking settings (``name``, ``paper.*``, ``report.*``, ``tracking.*``),
     parallelism and I/O (``*.workers``, ``features.num_shards``, feature batch sizes: the backbones run in eval
     mode, so a video's features do not depend on its batch), permissions whose effect is audited from run-time
     evidence instead (``allow_*``), seeds (the interval is over seeds by design), ``evaluate.*`` (the reported
     test accuracy comes from the train runs);
   - *conditional* (a callable decides from run-time evidence): paths that may only relocate the standard
     content (``dataset.root``, ``dataset.mapping_file``: the data run has the published split sizes, counted by
     questions or by videos as the table publishes them, and no missing video; ``questions.glove``: a GloVe
     file was read and its OOV rate is plausible;
     ``features.*.weights``: the appearance file has the IMAGENET1K_V1 checksum prefix, the motion file was read
     and gives 2048-wide features), ``*.device`` (cosmetic in fp32 without TF32), ``model.original_graph_indexing``
     (cosmetic with one graph layer, where u+j = u*G+j, B11);
   - *can change results*: everything else (dimensions, clips, frame sizes, optimisation, precision, split...).
     A key missing from the table is treated as such (the tests require every schema key to be classified).

2. **Run-time evidence** (``evidence.py``): tags and metrics of the train runs and their upstream runs.

3. **Implementation-level deviations** from the original code, the ledger's ``deviation`` entries (initial weights,
   shuffle order, fused Adam, folded BatchNorm, GloVe rows of NA-like words, tokenizer): no setting shows them, so
   each is a finding of its own severity whenever it applies to a reported run, with where it lives in the code
   and the tags the runs record about it (e.g. the questions run's ``dualvgr.tokenizer``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Callable

from dualvgr.core.schema import ExperimentSpec
from dualvgr.core.spec import flatten
from dualvgr.report.collect import TRAIN_STAGE, Collection, RunInfo, TrainRun
from dualvgr.report.evidence import EVAL_SPLIT_WHY, GLOVE_OOV_LIMIT, runtime_evidence
from dualvgr.report.findings import Audit, Evidence, Findings, Severity
from dualvgr.report.ledger import LedgerEntry, deviations
from dualvgr.report.paper import PaperTable

# A key's classification: (severity, why); a conditional rule computes it from the run's evidence.
Decision = tuple[Severity, str]
Rule = Decision | Callable[["KeyContext"], Decision]


@dataclass(frozen=True)
class KeyContext:
    key: str
    value: Any
    paper: Any
    run: TrainRun
    table: PaperTable


# ------------------------------------------------------------------------------------ conditional rules

# IMAGENET1K_V1 ResNet-101 is torchvision's resnet101-63fe2227.pth: the name carries the sha256's first 8 digits.
IMAGENET1K_V1_SHA256_PREFIX = "63fe2227"


def _upstream(run: TrainRun, stage: str) -> RunInfo | None:
    return run.upstream.get(stage)


def published_counts_match(data: RunInfo | None, table: PaperTable) -> bool:
    """The data run found the published size of every split (questions or videos, as published), no missing video."""
    if data is None:
        return False
    sizes = table.split_sizes
    for split, accepted in sizes.counts.items():
        if int(data.metrics.get(sizes.metric(split), -1)) not in accepted:
            return False
    return data.metrics.get("videos_missing", 0) == 0


def _dataset_path(ctx: KeyContext) -> Decision:
    if ctx.run.value("dataset.kind", ctx.table.dataset) != ctx.table.dataset:
        return Severity.RESULTS, "the location of another dataset (see dataset.kind)"
    unit = f"{ctx.table.split_sizes.unit} per split"
    if published_counts_match(_upstream(ctx.run, "data"), ctx.table):
        return Severity.COSMETIC, (f"relocates the data: the data run found the published {ctx.table.title} split "
                                   f"sizes ({unit})")
    return Severity.RESULTS, (f"the data found here does not have the published {ctx.table.title} split sizes "
                              f"({unit}), or its data run is missing: see the dataset findings")


def _glove_path(ctx: KeyContext) -> Decision:
    if str(ctx.value).lower() == "none":
        return Severity.RESULTS, "no GloVe: word embeddings start random instead of from glove.840B.300d"
    questions = _upstream(ctx.run, "questions")
    if questions is not None and questions.tags.get("dualvgr.glove.source") == "file" and \
            questions.metrics.get("glove_oov_rate", 1.0) <= GLOVE_OOV_LIMIT:
        return Severity.COSMETIC, "relocates the GloVe file: one was read and its OOV rate is plausible for 840B"
    return Severity.RESULTS, "another embedding source, or one whose use is not recorded by a questions run"


def _weights(ctx: KeyContext) -> Decision:
    stage = ctx.key.split(".")[1]  # appearance / motion
    if str(ctx.value) == "random":
        return Severity.RESULTS, "random backbone weights: the features carry no pretrained knowledge"
    run = _upstream(ctx.run, stage)
    if run is None:
        return Severity.RESULTS, f"other {stage} weights, and no {stage} run records which file was read"
    sha = run.tags.get("dualvgr.weights.sha256", "")
    if stage == "appearance":
        if sha.startswith(IMAGENET1K_V1_SHA256_PREFIX):
            return Severity.COSMETIC, "relocates torchvision's IMAGENET1K_V1 file (checksum prefix 63fe2227 matches)"
        return Severity.RESULTS, "not the IMAGENET1K_V1 file (its sha256 does not start with 63fe2227)"
    if run.tags.get("dualvgr.weights.source") == "file" and run.metrics.get("feature_width") == 2048:
        return Severity.COSMETIC, ("relocates the Kinetics checkpoint: a file was loaded strictly and gives 2048-wide "
                                   "features (no published checksum exists: compare its sha256 under Provenance)")
    return Severity.RESULTS, "the motion weights read are not a loaded Kinetics file"


def _device(ctx: KeyContext) -> Decision:
    if ctx.run.value("train.precision") == "fp32" and not ctx.run.value("train.tf32", False):
        return Severity.COSMETIC, "another device in fp32 without TF32: same arithmetic up to float rounding order"
    return Severity.RESULTS, "another device with reduced precision or TF32: numerics differ by device"


def _graph_indexing(ctx: KeyContext) -> Decision:
    if ctx.run.value("model.graph_layers") == 1:
        return Severity.COSMETIC, "with one graph layer u+j and u*G+j pick the same module (B11)"
    return Severity.RESULTS, "with several graph layers the graph-module index changes the model (B11)"


# ------------------------------------------------------------------------------------------ the table

_COSMETIC: dict[str, str] = {
    "name": "the experiment's label",
    "description": "free text",
    "paper.*": "which published table and tolerance the report uses; not read by any stage that trains",
    "report.*": "report settings",
    "tracking.*": "where runs and stage outputs are stored",
    "evaluate.*": "the evaluate stage; the reported test accuracy comes from the train runs",
    "train.seed": ("seeds differ by design: the report's interval is over seeds (the paper's code used 666, and a "
                   "seed here draws other weights and batch orders than the original's: ledger D1, D2)"),
    "train.seeds": "seeds differ by design: the report's interval is over seeds",
    "features.workers": "decoding parallelism only",
    "features.num_shards": "extraction parallelism only: shards merge into the single-process file",
    "features.appearance.batch_size": "inference batching: eval-mode features do not depend on the batch",
    "features.motion.batch_size": "inference batching: eval-mode features do not depend on the batch",
    "train.workers": "data-loading parallelism only",
    "train.preload": "I/O only: features read once into memory",
    "dataset.layout": "where the videos sit under the root; the data run checks they are all found",
    "dataset.allow_missing_videos": "a permission; missing videos are audited from the data run",
    "features.allow_random_weights": "a permission; the weights used are audited from the feature runs",
    "features.allow_failed_videos": "a permission; failed videos are audited from the feature runs",
    "dataset.synthetic.*": "only read for the synthetic dataset, which the dataset.kind finding covers",
}
_CONDITIONAL: dict[str, Callable[[KeyContext], Decision]] = {
    "dataset.root": _dataset_path,
    "dataset.mapping_file": _dataset_path,
    "dataset.svqa_splits": _dataset_path,  # other split lists: the data run then lacks the published split sizes
    "questions.glove": _glove_path,
    "features.appearance.weights": _weights,
    "features.motion.weights": _weights,
    "features.device": _device,
    "train.device": _device,
    "model.original_graph_indexing": _graph_indexing,
}
_RESULTS: dict[str, str] = {
    "dataset.kind": "another dataset than the paper's",
    "features.num_clips": "clips per video = graph nodes of the model",
    "features.appearance.backbone": "another appearance network",
    "features.appearance.frames_per_clip": "frames per clip feed the appearance encoder",
    "features.appearance.image_size": "frame size changes the ResNet features",
    "features.appearance.normalization": "the original's std 0.224 (B25) produced the paper's features",
    "features.motion.backbone": "another motion network",
    "features.motion.frames_per_clip": "the 3D network's temporal extent",
    "features.motion.image_size": "frame size changes the 3D ResNeXt features (224 gives 32768 wide, B20)",
    "features.motion.sample_size": "the pooling kernel of the 3D ResNeXt",
    "questions.answer_top": "the answer vocabulary, and which val/test answers count as unknown",
    "questions.vocabulary": "an imported vocabulary can tokenise and order words differently",
    "model.*": "the model's architecture or loss weights",
    "train.optimizer": "the optimiser",
    "train.lr": "the learning rate",
    "train.lr_decay_every": "the lr schedule",
    "train.lr_decay_factor": "the lr schedule",
    "train.grad_clip": "gradient clipping absorbs the first steps' spikes",
    "train.batch_size": "the batch size (and the batch-summed HSIC's scale)",
    "train.epochs": "training length (and which checkpoint is best on val)",
    "train.precision": "reduced precision changes the numerics",
    "train.tf32": "TF32 changes conv/matmul numerics on Ampere+ GPUs (B40)",
    "train.compile": "torch.compile reorders float operations",
    "train.train_num": "trains on a subset",
    "train.val_num": "selects the checkpoint on a val subset",
    "train.test_num": "scores a test subset",
    "train.permute_visual": "a control that shuffles the visual features across videos",
    "train.eval_split": EVAL_SPLIT_WHY,
}
KEY_RULES: dict[str, Rule] = {
    **{key: (Severity.COSMETIC, why) for key, why in _COSMETIC.items()},
    **_CONDITIONAL,
    **{key: (Severity.RESULTS, why) for key, why in _RESULTS.items()},
}
_UNCLASSIFIED = "not in the audit's key table (dualvgr/report/audit.py): treated as able to change results"
# Topics that run-time evidence shares with a spec key; titles for a readable table.
_TITLES = {
    "features.appearance.weights": "appearance backbone weights",
    "features.motion.weights": "motion backbone weights",
    "questions.glove": "GloVe embeddings",
    "train.eval_split": "split the reported accuracy was computed on",
    "train.epochs": "number of epochs",
    "train.batch_size": "batch size",
    "train.precision": "numeric precision",
}


def rule_for(key: str) -> Rule | None:
    """The rule classifying ``key``: an exact entry first, then the longest matching pattern."""
    if key in KEY_RULES:
        return KEY_RULES[key]
    patterns = [p for p in KEY_RULES if "*" in p and fnmatch.fnmatchcase(key, p)]
    return KEY_RULES[max(patterns, key=len)] if patterns else None


def classify(ctx: KeyContext) -> Decision:
    rule = rule_for(ctx.key)
    if rule is None:
        return Severity.RESULTS, _UNCLASSIFIED
    return rule(ctx) if callable(rule) else rule


ABSENT = "(absent)"  # a key one side's schema does not have


def show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def spec_differences(run: TrainRun, paper: ExperimentSpec, table: PaperTable, findings: Findings) -> None:
    """Add one finding per key where ``run``'s resolved spec differs from the paper's (absent = older schema)."""
    ours, theirs = run.values or {}, flatten(paper)
    for key in [*ours, *(k for k in theirs if k not in ours)]:
        value, paper_value = ours.get(key, ABSENT), theirs.get(key, ABSENT)
        if value == paper_value:
            continue
        severity, why = classify(KeyContext(key, value, paper_value, run, table))
        if ABSENT in (value, paper_value) and why == _UNCLASSIFIED:
            why = "a key of another schema version than the paper's file: treated as able to change results"
        title = _TITLES.get(key, key)
        if key.endswith(".weights") and value == "random":
            title = f"random {key.split('.')[1]} backbone weights"
        findings.add(key, title, severity, why, Evidence(run.run_id, key, show(value), show(paper_value)))


def _stage_run(run: TrainRun, stage: str) -> RunInfo | None:
    return run.info if stage == TRAIN_STAGE else run.upstream.get(stage)


def _exempt(run: TrainRun, entry: LedgerEntry) -> bool:
    """A run whose recorded tags show ``entry`` did not apply to it (the ledger's ``unless``)."""
    return any((source := _stage_run(run, stage)) is not None and source.tags.get(tag) == value
               for stage, tag, value in entry.unless)


def ledger_deviations(runs: list[TrainRun], findings: Findings) -> None:
    """One implementation-level finding per ledger deviation that applies to a reported run, with its evidence."""
    for entry in deviations():
        affected = [run for run in runs if not _exempt(run, entry)]
        if not affected:
            continue
        topic, title = f"ledger.{entry.bug}", f"{entry.bug}: {entry.title}"
        findings.add(topic, title, Severity.IMPLEMENTATION, entry.effect, code=entry.where)
        for run in affected:
            for stage, tags in entry.evidence:
                source = _stage_run(run, stage)
                for tag in tags if source is not None else ():
                    if source.tags.get(tag):
                        findings.add(topic, title, Severity.IMPLEMENTATION, entry.effect,
                                     Evidence(source.run_id, tag, source.tags[tag]))


def audit(collection: Collection, table: PaperTable, paper: ExperimentSpec, reference: str,
          comparable: bool) -> Audit:
    """Spec differences, run-time evidence and the ledger's deviations, for every reported run."""
    findings, unverified = Findings(), []
    for run in collection.runs:
        if run.spec_note:
            unverified.append(run.spec_note)
        if run.values is None:
            findings.add("spec", "resolved spec unreadable", Severity.RESULTS,
                         "the configuration cannot be compared with the paper's",
                         Evidence(run.run_id, "spec.yaml", "unreadable"))
        else:
            spec_differences(run, paper, table, findings)
        runtime_evidence(run, table, findings, unverified)
    ledger_deviations(collection.runs, findings)
    note = (f"Compared with {reference}, the paper's {table.title} configuration." if comparable else
            f"This experiment reproduces no published table (paper.table: none): it is audited against "
            f"{reference}, the paper's {table.title} configuration, to show how far it is from the paper.")
    return Audit(reference, note, findings.sorted(), sorted(set(unverified)))
