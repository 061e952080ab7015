"""Tiny annotation files in the MSVD-QA format (dualvgr-original.md §1.1) for the question-preprocessing tests."""

from __future__ import annotations

import json
from pathlib import Path


def write_qa(path: Path, entries: list, *, first_id: int = 0, video_id: int = 7) -> Path:
    """Write a ``*_qa.json``; entries are raw objects or (question, answer) pairs (consecutive ids and video ids)."""
    objects = [
        entry
        if isinstance(entry, dict)
        else {"answer": entry[1], "id": first_id + i, "question": entry[0], "video_id": video_id + i}
        for i, entry in enumerate(entries)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(objects), encoding="utf-8")
    return path
