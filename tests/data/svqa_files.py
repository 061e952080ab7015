"""A tiny data set in the SVQA release's format, for the SVQA tests: ``questions.json``, ``useVideo/<id>.mp4``
(mp4v, written with OpenCV) and the three split lists in a folder of their own (``dataset.svqa_splits``)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

SPLIT_VIDEOS = {"train": [11, 12, 13], "val": [21], "test": [31, 32]}
# (question, ans, program[-1]['function']) asked of every video.
QUESTIONS = (
    ("How many cubes are there?", 2, "count"),
    ("Is there a red ball?", "yes", "exist"),
    ("What is the color of the big cylinder?", "red", "query_color"),
)


def tiny_mp4(path: Path, frames: int = 6, shade: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (32, 24))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for t in range(frames):
        writer.write(np.full((24, 32, 3), (shade + 25 * t) % 256, np.uint8))
    writer.release()


def svqa_entry(video: int | str, question: str, answer, function: str) -> dict:
    """One questions.json object, with a program of two steps as the release has (the last names the category)."""
    return {"id": video, "question": question, "ans": answer,
            "program": [{"function": "filter", "value_inputs": []}, {"function": function, "value_inputs": []}]}


def write_split_lists(folder: Path, split_videos: dict[str, list[int]] = SPLIT_VIDEOS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, videos in split_videos.items():
        (folder / f"{split}_svqa_ids.txt").write_text("".join(f"{v}\n" for v in videos), encoding="utf-8")
    return folder


def write_svqa(root: Path, splits: Path, *, split_videos: dict[str, list[int]] = SPLIT_VIDEOS,
               entries: list[dict] | None = None) -> list[dict]:
    """Write the data set under ``root`` and its split lists under ``splits``; returns the questions.json objects
    (by default every question of QUESTIONS on every video, video after video)."""
    videos = [video for members in split_videos.values() for video in members]
    if entries is None:
        entries = [svqa_entry(video, *question) for video in videos for question in QUESTIONS]
    for i, video in enumerate(videos):
        tiny_mp4(root / "useVideo" / f"{video}.mp4", shade=40 * i)
    (root / "questions.json").write_text(json.dumps(entries), encoding="utf-8")
    write_split_lists(splits, split_videos)
    return entries
