"""Check a dataset on disk: annotations parse, every referenced video exists and opens, and fingerprint it.

The fingerprint (sha256 of the annotation and mapping files plus a manifest of video names and sizes) identifies
the data a reproduction used; it is logged with ``mlflow.log_input`` and keys the downstream stage cache.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
from tqdm import tqdm

from dualvgr.core.errors import DataError
from dualvgr.core.fingerprint import sha256_file
from dualvgr.data.annotations import SPLITS, load_qa_file, qa_file
from dualvgr.data.layout import msrvtt_video_paths, msvd_video_paths

MISSING_SHOWN = 20


@dataclass
class DatasetInventory:
    kind: str
    root: Path
    annotation_files: dict[str, Path]
    questions: dict[str, int]  # QA pairs per split
    videos_per_split: dict[str, int]
    video_paths: dict[int, Path]  # every video referenced by any split, by dataset video id
    problems: dict[int, str] = field(default_factory=dict)  # video id -> "missing: path" / "unreadable: path"
    fingerprint: str = ""

    @property
    def usable_videos(self) -> dict[int, Path]:
        return {vid: path for vid, path in self.video_paths.items() if vid not in self.problems}


def inspect_dataset(
    kind: str, root: Path, *, layout: str = "auto", mapping_file: str = "youtube_mapping.txt", progress: bool = True
) -> DatasetInventory:
    """Parse annotations, locate and open every video, fingerprint the whole."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset root not found: {root} (set dataset.root to the folder with {{train,val,test}}_qa.json)")
    files = {split: qa_file(root, split) for split in SPLITS}
    items = {split: load_qa_file(path) for split, path in files.items()}
    ids_by_split = {split: {item.video_id for item in split_items} for split, split_items in items.items()}
    all_ids = set().union(*ids_by_split.values())
    if kind == "msrvtt-qa":
        paths = msrvtt_video_paths(root, ids_by_split)
        extra_files = {}
    else:  # msvd-qa and the synthetic demo share the MSVD layout
        paths = msvd_video_paths(root, layout, mapping_file, all_ids)
        extra_files = {"mapping": root / mapping_file}

    problems = {}
    for vid, path in tqdm(paths.items(), desc="checking videos", unit="video", disable=not progress):
        reason = video_problem(path)
        if reason:
            problems[vid] = f"{reason}: {path}"
    inventory = DatasetInventory(
        kind=kind,
        root=root,
        annotation_files=files,
        questions={split: len(split_items) for split, split_items in items.items()},
        videos_per_split={split: len(ids) for split, ids in ids_by_split.items()},
        video_paths=paths,
        problems=problems,
    )
    inventory.fingerprint = dataset_fingerprint(files | extra_files, paths)
    return inventory


def video_problem(path: Path) -> str | None:
    """None if OpenCV can open the file and decode its first frame, else why not."""
    if not path.is_file():
        return "missing"
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return "unreadable (OpenCV cannot open it)"
        ok, _ = capture.read()
        return None if ok else "unreadable (no decodable frame)"
    finally:
        capture.release()


def dataset_fingerprint(files: dict[str, Path], videos: dict[int, Path]) -> str:
    digest = hashlib.sha256()
    for name, path in sorted(files.items()):
        digest.update(f"{name}:{sha256_file(path)}\n".encode())
    for vid, path in sorted(videos.items()):
        size = path.stat().st_size if path.is_file() else -1
        digest.update(f"{vid}:{path.name}:{size}\n".encode())
    return digest.hexdigest()


def problems_message(inventory: DatasetInventory, list_name: str) -> str:
    """The error shown when videos are missing: first 20, the count, and where the full list is."""
    shown = [inventory.problems[vid] for vid in sorted(inventory.problems)[:MISSING_SHOWN]]
    more = len(inventory.problems) - len(shown)
    lines = "\n".join(f"  video {vid}: {text}" for vid, text in zip(sorted(inventory.problems), shown))
    return (
        f"{len(inventory.problems)} of {len(inventory.video_paths)} videos of {inventory.root} are missing or "
        f"unreadable:\n{lines}" + (f"\n  ... and {more} more" if more else "")
        + f"\nFull list: {list_name}. Fix the paths (dataset.root, dataset.layout) or set "
        f"dataset.allow_missing_videos: true (recorded as a deviation; their questions are dropped)."
    )

