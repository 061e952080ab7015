"""Where each dataset keeps its videos (dualvgr-original.md §1.1; original bugs B9, B23, B24).

- MSVD-QA: ``youtube_mapping.txt`` maps ``vid<k>`` (the json ``video_id`` k) to a YouTube clip name; the clip is
  ``<videos>/<name>.avi`` where ``<videos>`` is ``<root>/video/``, ``<root>/YouTubeClips/`` or
  ``<root>/video/YouTubeClips/`` depending on how the archive was unpacked.
- MSRVTT-QA: ``video<id>.mp4`` under ``TrainValVideo/`` (train, val) or ``TestVideo/`` (test), below
  ``<root>/video/`` or directly below ``<root>``.
The synthetic demo dataset uses the MSVD-QA layout.
"""

from __future__ import annotations

from pathlib import Path

from dualvgr.core.errors import DataError

MSVD_VIDEO_DIRS = ("video/YouTubeClips", "YouTubeClips", "video")


def read_mapping(path: Path) -> dict[int, str]:
    """``{k: clip_name}`` from lines ``<clip_name> vid<k>``; CRLF, blank lines and a final newline are fine (B24)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"video mapping file not found: {path}\n  MSVD-QA needs youtube_mapping.txt (lines '<clip> vid<k>') "
            f"beside the QA json files; set dataset.mapping_file if it has another name"
        )
    mapping: dict[int, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].startswith("vid") or not parts[1][3:].isdigit():
            raise DataError(f"{path}, line {number}: expected '<clip_name> vid<k>', got {line!r:.120}")
        key = int(parts[1][3:])
        if key in mapping and mapping[key] != parts[0]:
            raise DataError(f"{path}, line {number}: vid{key} mapped twice ({mapping[key]} and {parts[0]})")
        mapping[key] = parts[0]
    if not mapping:
        raise DataError(f"{path} holds no '<clip_name> vid<k>' lines")
    return mapping


def find_msvd_video_dir(root: Path, layout: str = "auto") -> Path:
    """The folder holding the ``.avi`` clips; ``auto`` takes the candidate with the most of them."""
    root = Path(root)
    candidates = MSVD_VIDEO_DIRS if layout == "auto" else (layout,)
    counts = {name: _count(root / name, "*.avi") for name in candidates}
    best = max(candidates, key=lambda name: counts[name])
    if counts[best] == 0:
        tried = ", ".join(str(root / name) for name in candidates)
        raise DataError(
            f"no MSVD .avi videos found under {root} (tried {tried}).\n"
            f"  Unpack YouTubeClips.tar there (any of these layouts works), or set dataset.root / dataset.layout"
        )
    return root / best


def msvd_video_paths(root: Path, layout: str, mapping_file: str, video_ids: set[int]) -> dict[int, Path]:
    mapping = read_mapping(Path(root) / mapping_file)
    unmapped = sorted(video_ids - set(mapping))
    if unmapped:
        raise DataError(
            f"{Path(root) / mapping_file} has no line for {len(unmapped)} video id(s) used in the QA files, "
            f"e.g. vid{unmapped[0]}; is it the mapping file of this dataset?"
        )
    video_dir = find_msvd_video_dir(root, layout)
    return {vid: video_dir / f"{mapping[vid]}.avi" for vid in sorted(video_ids)}


def msrvtt_video_paths(root: Path, ids_by_split: dict[str, set[int]]) -> dict[int, Path]:
    root = Path(root)
    base = root / "video" if (root / "video" / "TrainValVideo").is_dir() or (root / "video" / "TestVideo").is_dir() else root
    paths: dict[int, Path] = {}
    for split, ids in ids_by_split.items():
        folder = base / ("TestVideo" if split == "test" else "TrainValVideo")
        for vid in ids:
            paths[vid] = folder / f"video{vid}.mp4"
    return dict(sorted(paths.items()))


def _count(folder: Path, pattern: str) -> int:
    return sum(1 for _ in folder.glob(pattern)) if folder.is_dir() else 0
