"""The questions stage's work: annotation files in, vocabulary + encoded splits + GloVe matrix out.

dualvgr-original.md §1.2 (run in train mode, then val and test), §1.3 and §1.4, with our file formats
(:mod:`dualvgr.text.storage`). Inputs: a data set's annotations (its QA items per split, as its entry parses them,
or ``{train,val,test}_qa.json`` files in the MSVD-QA format) and its question categories, a GloVe source (or none)
and optionally the original ``vocab.json`` to encode with instead of building one (to evaluate original
checkpoints, B8). Outputs in ``out_dir``:

- ``vocab.json``: the original's structure (built from train, or a copy of the imported one);
- ``{split}_questions.npz`` + ``{split}_questions.json`` for each given split;
- ``glove.npy``: float32 (V_q, D), when a GloVe source is given (a stale one is removed for ``glove: none``).

No MLflow here: :meth:`QuestionsResult.metrics` flattens the statistics for the stage to log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dualvgr.core.errors import DataError
from dualvgr.data.annotations import SPLITS, Annotations, load_qa_files
from dualvgr.data.categories import QUESTION_WORDS, QuestionCategories
from dualvgr.text.encode import SplitStats, encode_split, tokenize_split
from dualvgr.text.glove import GloveStats, load_glove
from dualvgr.text.storage import questions_file, save_encoded_questions, save_glove_matrix
from dualvgr.text.tokenize import QuestionTokenizer
from dualvgr.text.vocabulary import build_vocabulary, load_vocabulary, save_vocabulary

VOCAB_FILE, GLOVE_FILE = "vocab.json", "glove.npy"


@dataclass(frozen=True)
class QuestionsResult:
    """Where the outputs went and what preprocessing found."""

    vocabulary_path: Path
    question_files: dict[str, Path]  # split -> .npz (its .json sidecar sits beside it)
    glove_path: Path | None  # None for glove: none (the model keeps its U(-1, 1) init)
    splits: dict[str, SplitStats]
    question_vocabulary_size: int  # V_q
    answer_vocabulary_size: int  # V_a
    vocabulary_source: str  # "built from <train file>" or the imported vocab.json
    vocabulary_matches_rebuilt: (
        bool | None
    )  # imported vocabulary == what train builds now (None: not imported/no train)
    glove: GloveStats | None
    tokenizer: str  # what produced the tokens (nltk version, B8)

    def metrics(self) -> dict[str, float]:
        """Flat numeric statistics, named ``<split>.<stat>``, ``vocab.<stat>`` and ``glove.<stat>``."""
        metrics: dict[str, float] = {
            "vocab.question_size": self.question_vocabulary_size,
            "vocab.answer_size": self.answer_vocabulary_size,
        }
        if self.vocabulary_matches_rebuilt is not None:
            metrics["vocab.matches_rebuilt"] = float(self.vocabulary_matches_rebuilt)
        for split, stats in self.splits.items():
            metrics.update(
                {
                    f"{split}.count": stats.count,
                    f"{split}.max_length": stats.max_length,
                    f"{split}.unknown_answers": stats.unknown_answers,
                    f"{split}.unknown_answer_rate": stats.unknown_answers / stats.count if stats.count else 0.0,
                    f"{split}.unknown_tokens": stats.unknown_tokens,
                    f"{split}.without_question_mark": stats.without_question_mark,
                    f"{split}.long_questions": len(stats.long_questions.questions) if stats.long_questions else 0,
                    **{f"{split}.type.{name}": count for name, count in stats.type_counts.items()},
                }
            )
        if self.glove is not None:
            for name in ("dim", "found", "oov", "oov_rate", "entries_read", "malformed_lines", "duplicate_words"):
                metrics[f"glove.{name}"] = getattr(self.glove, name)
        return {name: float(value) for name, value in metrics.items()}


def prepare_questions(
    annotation_files: Mapping[str, Path] | Annotations,
    out_dir: Path,
    *,
    answer_top: int,
    glove_source: Path | None,
    vocab_file: Path | None = None,
    glove_dim: int | None = None,
    progress: bool = False,
    categories: QuestionCategories = QUESTION_WORDS,
) -> QuestionsResult:
    """Preprocess the splits of ``annotation_files`` (keys among train/val/test) into ``out_dir``.

    ``annotation_files`` is a data set's parsed :class:`Annotations` or ``{split: *_qa.json}`` in the MSVD-QA
    format; ``categories`` are the data set's question categories. The vocabulary is built from train
    (``answer_top`` answers), or read from ``vocab_file`` (then train is optional, and ``answer_top`` is unused).
    ``glove_dim`` (the model's word_dim) is checked against the GloVe vectors when given.
    """
    split_names = annotation_files.items if isinstance(annotation_files, Annotations) else annotation_files
    unknown = sorted(set(split_names) - set(SPLITS))
    if unknown:
        raise DataError(f"unknown split(s) {unknown} in annotation_files, expected among {list(SPLITS)}")
    if "train" not in split_names and vocab_file is None:
        raise DataError(
            f"annotation_files has no 'train' entry (got {sorted(split_names)}): the vocabulary is built from "
            f"train — add it, or pass the original vocab.json as vocab_file"
        )
    # Every file checked before any work.
    annotations = annotation_files if isinstance(annotation_files, Annotations) else load_qa_files(annotation_files)
    splits = [split for split in SPLITS if split in annotations.items]  # train first: it builds the vocabulary
    sources = {split: Path(annotations.sources[split]) for split in splits}
    items = {split: annotations.items[split] for split in splits}
    tokenizer = QuestionTokenizer()
    tokenized = {
        split: tokenize_split(
            items[split], split=split, source=str(sources[split]), tokenizer=tokenizer, progress=progress
        )
        for split in splits
    }
    rebuilt = None
    if "train" in tokenized:
        rebuilt = build_vocabulary(
            tokenized["train"].tokens, (item.answer for item in items["train"]), answer_top=answer_top
        )
    if vocab_file is not None:
        vocabulary, source = load_vocabulary(vocab_file), str(vocab_file)
        matches = None if rebuilt is None else vocabulary == rebuilt
    else:
        vocabulary, source, matches = rebuilt, f"built from {sources['train']}", None

    out_dir = Path(out_dir)
    vocabulary_path = save_vocabulary(vocabulary, out_dir / VOCAB_FILE)
    glove_path, glove_stats, glove_record = None, None, None
    if glove_source is not None:
        glove = load_glove(glove_source, vocabulary.question_idx_to_token, expected_dim=glove_dim, progress=progress)
        glove_path, glove_stats = save_glove_matrix(glove.matrix, out_dir / GLOVE_FILE), glove.stats
        glove_record = {"file": GLOVE_FILE, **glove.stats.as_dict()}
    else:
        (out_dir / GLOVE_FILE).unlink(missing_ok=True)  # a stale matrix must not be mistaken for this run's

    question_files, stats = {}, {}
    for split in splits:
        encoded, stats[split] = encode_split(tokenized[split], items[split], vocabulary, categories)
        extra = {"glove": glove_record} if split == "train" else {}
        extra.update(annotation_file=str(sources[split]), vocabulary_source=source, tokenizer=tokenizer.description)
        question_files[split] = save_encoded_questions(encoded, questions_file(out_dir, split), extra=extra)
    return QuestionsResult(
        vocabulary_path=vocabulary_path,
        question_files=question_files,
        glove_path=glove_path,
        splits=stats,
        question_vocabulary_size=vocabulary.num_question_tokens,
        answer_vocabulary_size=vocabulary.num_answers,
        vocabulary_source=source,
        vocabulary_matches_rebuilt=matches,
        glove=glove_stats,
        tokenizer=tokenizer.description,
    )
