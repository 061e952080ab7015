"""The ``questions`` stage: QA annotation files -> vocabulary, encoded splits and the GloVe matrix.

Input: the data set the data stage checked, parsed again by its entry (``DATASETS[dataset.kind]``: its QA items
per split and its question categories, which the encoded splits store); ``questions.*`` (GloVe source, answer_top, an original vocabulary to
import). Output: ``vocab.json``, ``{split}_questions.npz`` (+ ``.json``) and ``glove.npy`` (dualvgr.text.prepare).
Logs vocabulary sizes, unknown answers per split, questions without '?', questions so long that they pad their
whole split (also printed as a WARNING line), and GloVe's OOV rate as metrics;
``glove: none`` is a deviation (U(-1, 1) embeddings instead of GloVe).
"""

from __future__ import annotations

from pathlib import Path

from dualvgr.core.fingerprint import file_identity
from dualvgr.core.schema import ExperimentSpec
from dualvgr.core.stage import Stage, StageContext, StageResult, stat_cache
from dualvgr.core.tracking import TAG_DEVIATION_PREFIX
from dualvgr.data.annotations import SPLITS
from dualvgr.data.entry import DatasetSource, dataset_entry
from dualvgr.data.stage import load_manifest
from dualvgr.text.prepare import prepare_questions
from dualvgr.text.storage import sidecar_file


def glove_source(spec: ExperimentSpec) -> Path | None:
    value = spec.questions.glove
    return None if value.strip().lower() in ("none", "") else Path(value).expanduser()


def questions_params(spec: ExperimentSpec) -> dict:
    return {
        "glove": spec.questions.glove,
        "answer_top": spec.questions.answer_top,
        "vocabulary": spec.questions.vocabulary,
        "word_dim": spec.model.word_dim,
    }


def questions_external_inputs(spec: ExperimentSpec) -> dict:
    identities = {}
    for name, value in (("glove", glove_source(spec)), ("vocabulary", spec.questions.vocabulary)):
        if value is not None:
            path = Path(value).expanduser()
            identities[name] = file_identity(path, stat_cache(spec)) if path.is_file() else {"missing": str(path)}
    return identities


def run_questions(ctx: StageContext) -> StageResult:
    spec = ctx.spec
    manifest = load_manifest(ctx.input("data", "manifest"))
    entry = dataset_entry(spec.dataset.kind)
    # The root the data stage checked (resolved), read as that stage read it.
    annotations = entry.read(DatasetSource.from_spec(spec.dataset, root=manifest["root"]))
    source = glove_source(spec)
    result = prepare_questions(
        annotations,
        ctx.out_dir,
        answer_top=spec.questions.answer_top,
        glove_source=source,
        vocab_file=Path(spec.questions.vocabulary).expanduser() if spec.questions.vocabulary else None,
        glove_dim=spec.model.word_dim,
        progress=ctx.progress,
        categories=entry.categories,
    )
    raw = result.metrics()
    metrics = {
        "vocab_questions": result.question_vocabulary_size,
        "vocab_answers": result.answer_vocabulary_size,
    }
    for split in result.splits:
        metrics[f"questions_{split}"] = raw[f"{split}.count"]
        metrics[f"unknown_answers_{split}"] = raw[f"{split}.unknown_answers"]
        metrics[f"questions_without_qmark_{split}"] = raw[f"{split}.without_question_mark"]
        metrics[f"max_length_{split}"] = raw[f"{split}.max_length"]
        metrics[f"long_questions_{split}"] = raw[f"{split}.long_questions"]
        if result.splits[split].long_questions is not None:
            print(f"WARNING: {result.splits[split].long_questions.describe()}", flush=True)
    if result.glove is not None:
        metrics |= {
            "glove_found": result.glove.found,
            "glove_oov": result.glove.oov,
            "glove_oov_rate": result.glove.oov_rate,
            "glove_malformed_lines": result.glove.malformed_lines,
        }
    if result.vocabulary_matches_rebuilt is not None:
        metrics["vocab_matches_rebuilt"] = float(result.vocabulary_matches_rebuilt)
    ctx.log.set_tags(
        {
            "dualvgr.glove.source": "none" if source is None else "file",
            "dualvgr.glove.path": str(source or ""),
            "dualvgr.glove.sha256": "" if source is None else stat_cache(spec).sha256(source, progress=ctx.progress),
            "dualvgr.vocabulary.source": result.vocabulary_source,
            "dualvgr.tokenizer": result.tokenizer,
        }
    )
    if source is None:
        ctx.log.set_tags({TAG_DEVIATION_PREFIX + "glove": "none"})
        print(
            "WARNING: questions.glove is none: word embeddings start from U(-1, 1), not GloVe 840B "
            "(recorded as a deviation)",
            flush=True,
        )
    outputs = {"vocab": result.vocabulary_path} | {f"{s}_questions": p for s, p in result.question_files.items()}
    outputs |= {f"{s}_sidecar": sidecar_file(p) for s, p in result.question_files.items()}
    if result.glove_path is not None:
        outputs["glove"] = result.glove_path
    unknown = ", ".join(
        f"{s} {int(metrics[f'unknown_answers_{s}'])}" for s in SPLITS if f"unknown_answers_{s}" in metrics
    )
    return StageResult(
        outputs=outputs,
        metrics=metrics,
        summary=f"V_q {result.question_vocabulary_size}, V_a {result.answer_vocabulary_size}; unknown answers "
        f"(always wrong in val/test): {unknown}"
        + (f"; GloVe OOV {result.glove.oov_rate:.1%}" if result.glove else "; no GloVe"),
    )


QUESTIONS_STAGE = Stage(
    name="questions",
    version="1",
    params=questions_params,
    run=run_questions,
    upstream=lambda spec: ("data",),
    external_inputs=questions_external_inputs,
)
