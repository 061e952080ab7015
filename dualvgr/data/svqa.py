"""SVQA as the original reads it: one ``questions.json``, videos ``useVideo/<id>.mp4``, the official split lists.

``docs/original.md`` (SVQA) describes the inputs; this module follows ``preprocess/datautils/svqa.py``:

- ``<root>/questions.json``: a JSON list of objects with ``id`` (the **video** id, read with ``int()`` as the
  original does, so a string of digits is fine), ``question``, ``ans`` (the answer) and ``program`` (a list of
  steps; the last step's ``function`` names the question's category, ``svqa.py:95``);
- ``<root>/useVideo/<id>.mp4`` (``svqa.py:13-23``);
- the split: the original's question preprocessing reads ``{train,val,test}_qa.json``, which nothing in its
  repository writes; its README splits by the video-id lists ``SVQA_splits/{train,val,test}_svqa_ids.txt``
  (8,400 / 1,200 / 2,400 videos), shipped here in ``svqa_splits/`` (see its README) and replaceable with
  ``dataset.svqa_splits`` (a folder with the same three files). A split's questions are the entries of
  ``questions.json`` on its videos, in file order. A video in no list, or in two, is an error.

Categories: the 15 names of ``svqa.py:9-11`` in that order (0..14), the one table of the three the original
has that its preprocessing and ``validate.py`` agree on (B13, B42); a ``function`` outside them is an error
naming the file, the entry and the function.

Two encodings made explicit:

- ``QAItem.id`` is the entry's position in ``questions.json`` (SVQA entries have no question id of their own);
- the answer is ``ans`` as text. The original keys its answer vocabulary by ``instance['ans']`` itself; a JSON
  integer would be an integer key while the vocabulary is built, but its decimal digits once ``vocab.json`` is
  written and read back, so val/test could never match it. Here a string is taken as is and an integer as its
  decimal digits (what ``vocab.json`` stores for it) in every split; any other JSON value is an error.
"""

from __future__ import annotations

import json
from pathlib import Path

from dualvgr.core.errors import DataError
from dualvgr.core.fingerprint import StatCache
from dualvgr.data.annotations import SPLITS, Annotations, QAItem
from dualvgr.data.categories import QuestionCategories, by_annotation
from dualvgr.data.entry import DatasetEntry, DatasetSource, VideoSet, identify_root

QUESTIONS_FILE = "questions.json"
VIDEO_DIR = "useVideo"
SHIPPED_SPLITS = Path(__file__).resolve().parent / "svqa_splits"
SHOWN = 5

# preprocess/datautils/svqa.py:9-11, indices 0..14.
CATEGORIES = QuestionCategories(
    (
        "count", "exist", "query_color", "query_size", "query_actiontype", "query_direction", "query_shape",
        "compare_more", "compare_equal", "compare_less", "attribute_compare_color", "attribute_compare_size",
        "attribute_compare_actiontype", "attribute_compare_direction", "attribute_compare_shape",
    ),
    by_annotation,
)


def split_list_file(source: DatasetSource, split: str) -> Path:
    """``<folder>/<split>_svqa_ids.txt``, the folder being ``dataset.svqa_splits`` or the shipped lists."""
    return (source.svqa_splits or SHIPPED_SPLITS) / f"{split}_svqa_ids.txt"


def svqa_files(source: DatasetSource) -> dict[str, Path]:
    """The files that define the data set's questions and splits."""
    return {"questions": source.root / QUESTIONS_FILE} | {
        f"{split}_ids": split_list_file(source, split) for split in SPLITS
    }


def read_split_list(path: Path) -> list[int]:
    """The video ids of one split list: one integer per line (blank lines, a final newline and CRLF are fine)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"SVQA split list not found: {path}\n  dataset.svqa_splits names a folder with train_svqa_ids.txt, "
            f"val_svqa_ids.txt and test_svqa_ids.txt (null: the official lists shipped with the harness)"
        )
    first_line: dict[int, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        if not text.isdigit():
            raise DataError(f"{path}, line {number}: expected one video id (an integer), got {line!r:.80}")
        video = int(text)
        if video in first_line:
            raise DataError(f"{path}, line {number}: video id {video} is listed twice (first on line "
                            f"{first_line[video]})")
        first_line[video] = number
    if not first_line:
        raise DataError(f"{path} lists no video id")
    return list(first_line)


def read_splits(source: DatasetSource) -> dict[int, str]:
    """Video id -> its split, from the three lists; a video in two lists is an error naming both."""
    split_of: dict[int, str] = {}
    clashes: list[tuple[int, str, str]] = []
    for split in SPLITS:
        for video in read_split_list(split_list_file(source, split)):
            if video in split_of:
                clashes.append((video, split_of[video], split))
            else:
                split_of[video] = split
    if clashes:
        video, first, second = clashes[0]
        more = f" ({len(clashes) - 1} more videos are in two lists)" if len(clashes) > 1 else ""
        raise DataError(
            f"video id {video} is in both {split_list_file(source, first)} and {split_list_file(source, second)}"
            f"{more}: a video belongs to one split; fix the lists (dataset.svqa_splits)"
        )
    return split_of


def read_questions(path: Path) -> list[QAItem]:
    """Every entry of ``questions.json`` as a :class:`QAItem` (id = its position in the file)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"SVQA questions not found: {path}\n  expected the SVQA release's {QUESTIONS_FILE} (a JSON list of "
            f"{{id, question, ans, program}} objects) with the videos in {VIDEO_DIR}/; place it there or set "
            f"dataset.root"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}") from err
    if not isinstance(raw, list):
        raise DataError(f"{path}: expected a JSON list of question objects, got {type(raw).__name__}")
    return [_parse_entry(path, index, entry) for index, entry in enumerate(raw)]


def _parse_entry(path: Path, index: int, entry: object) -> QAItem:
    where = f"{path}, entry {index}"
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected an object, got {type(entry).__name__}: {entry!r:.80}")
    for key in ("id", "question", "ans", "program"):
        if key not in entry:
            raise DataError(f"{where}: missing key '{key}' (has {sorted(entry)})")
    video = entry["id"]
    if isinstance(video, str) and video.strip().isdigit():
        video = int(video)  # the original's int(instance['id'])
    if not isinstance(video, int) or isinstance(video, bool):
        raise DataError(f"{where}: 'id' (the video id) must be an integer, got {type(video).__name__} {video!r:.80}")
    question = entry["question"]
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: 'question' must be a non-empty string, got {type(question).__name__} "
                        f"{question!r:.80}")
    return QAItem(id=index, question=question, answer=_answer_text(where, entry["ans"]), video_id=video,
                  category=_category(where, entry["program"]))


def _answer_text(where: str, answer: object) -> str:
    if isinstance(answer, str):
        return answer
    if isinstance(answer, int) and not isinstance(answer, bool):
        return str(answer)  # what the original's vocab.json holds for an integer key
    raise DataError(
        f"{where}: 'ans' must be a string (or an integer, read as its decimal digits), got "
        f"{type(answer).__name__} {answer!r:.80}"
    )


def _category(where: str, program: object) -> str:
    last = program[-1] if isinstance(program, list) and program else None
    function = last.get("function") if isinstance(last, dict) else None
    if not isinstance(function, str):
        raise DataError(
            f"{where}: 'program' must be a non-empty list of steps whose last step has a 'function' (the question's "
            f"category), got {program!r:.120}"
        )
    if function not in CATEGORIES.names:
        raise DataError(
            f"{where}: question category {function!r} (program[-1]['function']) is not one of SVQA's "
            f"{len(CATEGORIES.names)}: {', '.join(CATEGORIES.names)}; is this the SVQA release's {QUESTIONS_FILE}?"
        )
    return function


def read_svqa(source: DatasetSource) -> Annotations:
    """The questions of each split: ``questions.json``'s entries on that split's videos, in file order."""
    files = svqa_files(source)
    split_of = read_splits(source)
    questions = files["questions"]
    items: dict[str, list[QAItem]] = {split: [] for split in SPLITS}
    unlisted: list[QAItem] = []
    for item in read_questions(questions):
        if item.video_id in split_of:
            items[split_of[item.video_id]].append(item)
        else:
            unlisted.append(item)
    if unlisted:
        videos = sorted({item.video_id for item in unlisted})
        examples = ", ".join(f"entry {item.id} (video {item.video_id})" for item in unlisted[:SHOWN])
        raise DataError(
            f"{len(unlisted)} question(s) of {questions} are on {len(videos)} video(s) that no split list names "
            f"({split_list_file(source, 'train').parent}/{{train,val,test}}_svqa_ids.txt), e.g. {examples}: use the "
            f"split lists of the same SVQA release, or set dataset.svqa_splits to a folder whose lists cover them"
        )
    for split, split_items in items.items():
        if not split_items:
            raise DataError(
                f"no question of {questions} is on a video of {split_list_file(source, split)} (the {split} "
                f"split): a split needs questions; are the questions and the split lists from the same release?"
            )
    return Annotations(
        items={split: tuple(split_items) for split, split_items in items.items()},
        sources=dict.fromkeys(SPLITS, questions),
        files=files,
    )


def svqa_videos(source: DatasetSource, annotations: Annotations) -> VideoSet:
    video_ids = sorted({item.video_id for items in annotations.items.values() for item in items})
    return VideoSet({video: source.root / VIDEO_DIR / f"{video}.mp4" for video in video_ids})


def identify_svqa(entry: DatasetEntry, source: DatasetSource, cache: StatCache) -> dict:
    """questions.json and the split lists by identity (the lists may live outside the root), the root by content."""
    return identify_root(source, cache, svqa_files(source))


SVQA = DatasetEntry(
    title="SVQA",
    holds=f"{QUESTIONS_FILE} and {VIDEO_DIR}/",
    read=read_svqa,
    videos=svqa_videos,
    categories=CATEGORIES,
    paper_table="svqa",
    identify=identify_svqa,
    params=lambda source: {"svqa_splits": None if source.svqa_splits is None else str(source.svqa_splits)},
)
