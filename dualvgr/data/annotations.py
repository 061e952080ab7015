"""Read MSVD-QA / MSRVTT-QA style QA annotation files (``{train,val,test}_qa.json``).

Format (``docs/original.md``, raw annotations): a JSON list of objects with ``question`` (str), ``answer``
(str), ``video_id`` (int) and ``id`` (int; MSRVTT adds ``category_id``, which is ignored). The original reads
only question, answer and video_id; we validate all three and report the first offending entry by index.

:class:`QAItem` is what every data set's parser yields, whatever its file format (:mod:`dualvgr.data.entry`);
:class:`Annotations` is a data set's items per split with the files they come from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dualvgr.core.errors import DataError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class QAItem:
    """One question-answer pair as stored in the annotation file."""

    id: int
    question: str
    answer: str
    video_id: int
    category: str | None = None  # the category the annotation names (SVQA); None where the question decides it


@dataclass(frozen=True)
class Annotations:
    """A data set's QA items per split, and the files they were read from."""

    items: dict[str, tuple[QAItem, ...]]  # split -> its QA items, in file order
    sources: dict[str, Path]  # split -> the file its items come from (messages, the questions stage's records)
    files: dict[str, Path]  # name -> every file that defines the items (the dataset fingerprint hashes them)


def qa_file(root: Path, split: str) -> Path:
    """Where the annotation file of ``split`` lives under a dataset root."""
    return Path(root) / f"{split}_qa.json"


def load_qa_file(path: Path) -> list[QAItem]:
    """Parse one ``*_qa.json`` file, failing with the file name and the offending entry."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"annotation file not found: {path}\n"
            f"  expected a JSON list of {{question, answer, video_id, id}} objects "
            f"(MSVD-QA/MSRVTT-QA release); place it there or set dataset.root"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(
            f"{path} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        ) from err
    if not isinstance(raw, list):
        raise DataError(f"{path}: expected a JSON list of QA objects, got {type(raw).__name__}")
    return [_parse_item(path, index, entry) for index, entry in enumerate(raw)]


def _parse_item(path: Path, index: int, entry: object) -> QAItem:
    where = f"{path}, entry {index}"
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected an object, got {type(entry).__name__}: {entry!r:.80}")
    for key, kind in (("question", str), ("answer", str), ("video_id", int)):
        if key not in entry:
            raise DataError(f"{where}: missing key '{key}' (has {sorted(entry)})")
        value = entry[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise DataError(
                f"{where}: '{key}' must be {kind.__name__}, got {type(value).__name__} {value!r:.80}"
            )
    if not entry["question"].strip():
        raise DataError(f"{where}: empty question (id {entry.get('id', index)})")
    qa_id = entry.get("id", index)
    if not isinstance(qa_id, int) or isinstance(qa_id, bool):
        raise DataError(f"{where}: 'id' must be int, got {type(qa_id).__name__} {qa_id!r:.80}")
    return QAItem(id=qa_id, question=entry["question"], answer=entry["answer"], video_id=entry["video_id"])


def load_splits(root: Path, splits: tuple[str, ...] = SPLITS) -> dict[str, list[QAItem]]:
    """All splits of a dataset root, keyed by split name."""
    return {split: load_qa_file(qa_file(root, split)) for split in splits}


def load_qa_files(files: dict[str, Path]) -> Annotations:
    """:class:`Annotations` of ``{split: *_qa.json}`` files (the MSVD-QA / MSRVTT-QA format)."""
    files = {split: Path(path) for split, path in files.items()}
    return Annotations(
        items={split: tuple(load_qa_file(path)) for split, path in files.items()}, sources=files, files=dict(files)
    )
