"""Check a dataset on disk: annotations parse, every referenced video exists and decodes whole; fingerprint it.

The data set's entry (:mod:`dualvgr.data.entry`) parses its annotations and says where its videos are; the
check is the same for every data set.

Each video is decoded to its last frame, as the feature stages will (grab only: no colour conversion), so the
check finds before any extraction what would fail it. Two kinds of bad video, with two different remedies:

- **missing or unreadable** (no file, OpenCV cannot open it, or no frame decodes): the dataset layout or the
  copy is wrong. ``problems``; the data stage fails unless ``dataset.allow_missing_videos``, which drops the
  videos and their questions.
- **damaged** (it opens and decodes, but fewer frames than its container declares: truncated, or damaged
  midway; :mod:`dualvgr.features.video`): the file itself is bad and the feature stages would fail on it.
  ``damaged``; the data stage fails unless ``features.allow_failed_videos``, the key that lets the feature
  stages record such a video as failed (a zero row, audited as a deviation), so the check stops exactly where
  the extraction would, only hours earlier. The videos stay in the manifest for the feature stages to record.

The fingerprint (sha256 of the annotation and mapping files and of every video's content, name and size)
identifies the data a reproduction used; it is logged with ``mlflow.log_input``. Files are hashed through the
stage cache's :class:`~dualvgr.core.fingerprint.StatCache`, so an unchanged dataset is read only to be decoded.
Damage that FFmpeg conceals (a few bytes of garbage inside one frame) decodes and passes the check; only the
fingerprint, compared with an earlier run's, sees such a change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
from tqdm import tqdm

from dualvgr.core.errors import DataError
from dualvgr.core.fingerprint import StatCache
from dualvgr.data.entry import DatasetSource, dataset_entry
from dualvgr.features.video import FAILED_VIDEO_FIX, DamagedVideo, VideoError, count_frames, failed_video_message

MISSING_SHOWN = 20
PROBLEM, DAMAGED = "problem", "damaged"


@dataclass
class DatasetInventory:
    kind: str
    root: Path
    annotation_files: dict[str, Path]  # split -> the file its questions come from
    questions: dict[str, int]  # QA pairs per split
    videos_per_split: dict[str, int]
    video_paths: dict[int, Path]  # every video referenced by any split, by dataset video id
    problems: dict[int, str] = field(default_factory=dict)  # video id -> "missing: path" / "unreadable (...): path"
    damaged: dict[int, str] = field(default_factory=dict)  # video id -> why ("only 17 of 36 frames decode (...)")
    identities: dict[int, tuple[int, str]] = field(default_factory=dict)  # video id -> (size, sha256); (-1, "")
    fingerprint: str = ""

    @property
    def usable_videos(self) -> dict[int, Path]:
        """Every video but the missing and unreadable ones (damaged videos are the feature stages' to record)."""
        return {vid: path for vid, path in self.video_paths.items() if vid not in self.problems}


def inspect_dataset(
    kind: str, root: Path, *, layout: str = "auto", mapping_file: str = "youtube_mapping.txt",
    svqa_splits: Path | None = None, progress: bool = True, cache: StatCache | None = None, workers: int = 0,
) -> DatasetInventory:
    """:func:`inspect_source` of the data set ``kind`` (a registered ``dataset.kind``) at ``root``."""
    source = DatasetSource(kind=kind, root=Path(root), layout=layout, mapping_file=mapping_file,
                           svqa_splits=None if svqa_splits is None else Path(svqa_splits))
    return inspect_source(source, progress=progress, cache=cache, workers=workers)


def inspect_source(
    source: DatasetSource, *, progress: bool = True, cache: StatCache | None = None, workers: int = 0,
) -> DatasetInventory:
    """Parse annotations, locate and decode every video (in ``workers`` processes; 0: this one), fingerprint.

    Parsing and the video layout are the data set's entry's (``DATASETS[source.kind]``).
    """
    entry = dataset_entry(source.kind)
    root = Path(source.root)
    if not root.is_dir():
        raise DataError(f"dataset root not found: {root} (set dataset.root to the folder with {entry.holds})")
    annotations = entry.read(source)
    ids_by_split = {split: {item.video_id for item in items} for split, items in annotations.items.items()}
    videos = entry.videos(source, annotations)
    paths = videos.paths

    problems, damaged = {}, {}
    for vid, verdict in zip(paths, _check_all(list(paths.values()), workers, progress)):
        if verdict is not None:
            category, text = verdict
            (damaged if category == DAMAGED else problems)[vid] = text
    cache = StatCache(None) if cache is None else cache
    identities = {vid: _identity(path, cache) for vid, path in paths.items()}
    return DatasetInventory(
        kind=source.kind,
        root=root,
        annotation_files=dict(annotations.sources),
        questions={split: len(items) for split, items in annotations.items.items()},
        videos_per_split={split: len(ids) for split, ids in ids_by_split.items()},
        video_paths=paths,
        problems=problems,
        damaged=damaged,
        identities=identities,
        fingerprint=dataset_fingerprint(annotations.files | videos.files, paths, identities, cache),
    )


def video_problem(path: Path) -> tuple[str, str] | None:
    """None if every frame the container declares decodes, else (PROBLEM or DAMAGED, what is wrong)."""
    try:
        count_frames(path)
    except DamagedVideo as error:
        return DAMAGED, error.reason
    except VideoError as error:
        if not path.is_file():
            return PROBLEM, f"missing: {path}"
        return PROBLEM, f"unreadable ({error.reason}): {path}"
    except cv2.error as error:  # opened, then OpenCV itself failed midway
        return DAMAGED, f"OpenCV failed while decoding it ({error})"
    return None


def _check_all(paths: list[Path], workers: int, progress: bool) -> Iterable[tuple[str, str] | None]:
    """:func:`video_problem` of each path, in order; decoding dominates, so several processes share it."""
    bar = tqdm(total=len(paths), desc="checking videos", unit="video", disable=not progress)
    with bar:
        if workers < 1 or len(paths) < 2:
            for path in paths:
                yield video_problem(path)
                bar.update()
            return
        # Chunks of several videos amortise the round trips; small enough that the bar still moves.
        chunk = max(1, min(64, len(paths) // (8 * workers)))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for verdict in pool.map(video_problem, paths, chunksize=chunk):
                yield verdict
                bar.update()


def _identity(path: Path, cache: StatCache) -> tuple[int, str]:
    return (path.stat().st_size, cache.sha256(path)) if path.is_file() else (-1, "")


def dataset_fingerprint(
    files: dict[str, Path], videos: dict[int, Path], identities: dict[int, tuple[int, str]], cache: StatCache
) -> str:
    """sha256 over the annotation/mapping files' digests and every video's name, size and content digest."""
    digest = hashlib.sha256()
    for name, path in sorted(files.items()):
        digest.update(f"{name}:{cache.sha256(path)}\n".encode())
    for vid, path in sorted(videos.items()):
        size, sha256 = identities[vid]
        digest.update(f"{vid}:{path.name}:{size}:{sha256}\n".encode())
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


def damaged_message(inventory: DatasetInventory, list_name: str) -> str:
    """The error shown when videos are truncated or damaged: one line for one video, else the first 20."""
    ids = sorted(inventory.damaged)
    if len(ids) == 1:
        return failed_video_message(ids[0], inventory.video_paths[ids[0]], inventory.damaged[ids[0]])
    lines = "\n".join(
        f"  video {vid} ({inventory.video_paths[vid]}): {inventory.damaged[vid]}" for vid in ids[:MISSING_SHOWN]
    )
    more = len(ids) - MISSING_SHOWN
    return (
        f"{len(ids)} of {len(inventory.video_paths)} videos of {inventory.root} are truncated or damaged (they decode "
        f"fewer frames than their container declares):\n{lines}" + (f"\n  ... and {more} more" if more > 0 else "")
        + f"\nFull list: {list_name}. For each video: {FAILED_VIDEO_FIX}."
    )
