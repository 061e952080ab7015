"""The embedded demo dataset: deterministic, MSVD-QA format, readable videos, answers only in the video."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import cv2
import numpy as np
import pytest

from dualvgr.core.errors import DataError
from dualvgr.core.schema import SyntheticSpec
from dualvgr.data.annotations import load_splits
from dualvgr.data.layout import read_mapping
from dualvgr.data.synthetic import generate_dataset, plan_scenes

SMALL = SyntheticSpec(seed=3, num_videos=24, frames=20, fps=10, width=64, height=48)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn") / "demo"
    sizes = generate_dataset(root, SMALL, progress=False)
    return root, sizes


def test_msvd_on_disk_format(dataset):
    root, sizes = dataset
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == [
        "test_qa.json", "train_qa.json", "val_qa.json", "video", "youtube_mapping.txt"]
    splits = load_splits(root)
    assert {k: len(v) for k, v in splits.items()} == sizes
    entry = json.loads((root / "train_qa.json").read_text())[0]
    assert sorted(entry) == ["answer", "id", "question", "video_id"], "the MSVD-QA release's keys"
    ids = [item.id for split in ("train", "val", "test") for item in splits[split]]
    assert ids == list(range(len(ids))), "QA ids run globally over train, val, test"
    mapping = read_mapping(root / "youtube_mapping.txt")
    assert set(mapping) == set(range(1, SMALL.num_videos + 1))
    assert not (root / "youtube_mapping.txt").read_text().endswith("\n"), "like the release: no final newline"
    videos = {split: {i.video_id for i in items} for split, items in splits.items()}
    assert not (videos["train"] & videos["val"]) and not (videos["train"] & videos["test"]), "split by video"


def test_videos_are_real_and_readable(dataset):
    root, _ = dataset
    files = sorted((root / "video").glob("*.avi"))
    assert len(files) == SMALL.num_videos
    capture = cv2.VideoCapture(str(files[0]))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == SMALL.frames and frames[0].shape == (SMALL.height, SMALL.width, 3)
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 1.0, "shapes must move"


def test_all_five_question_types(dataset):
    root, _ = dataset
    items = [i for split in load_splits(root).values() for i in split]
    first_words = Counter(i.question.split()[0] for i in items)
    assert set(first_words) == {"what", "who", "how", "when", "where"}


def test_answers_depend_on_the_video_not_the_question(dataset):
    """Each question text must have several answers, and the per-type prior must be clearly beatable."""
    root, _ = dataset
    items = [i for split in load_splits(root).values() for i in split]
    answers_per_question = defaultdict(set)
    for item in items:
        answers_per_question[item.question].add(item.answer)
    assert all(len(a) >= 2 for a in answers_per_question.values()), answers_per_question
    by_type = defaultdict(Counter)
    for item in items:
        by_type[item.question.split()[0]][item.answer] += 1
    prior = sum(c.most_common(1)[0][1] for c in by_type.values()) / len(items)
    assert prior < 0.6, f"the answer prior already scores {prior:.2f}; the demo could not show learning"


def test_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate_dataset(a, SMALL, progress=False)
    generate_dataset(b, SMALL, progress=False)
    for name in ("train_qa.json", "val_qa.json", "test_qa.json", "youtube_mapping.txt"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    va, vb = sorted((a / "video").iterdir()), sorted((b / "video").iterdir())
    assert [p.read_bytes() for p in va] == [p.read_bytes() for p in vb]
    assert plan_scenes(SMALL) != plan_scenes(SyntheticSpec(seed=4, num_videos=24))


def test_refuses_to_overwrite_foreign_data(tmp_path):
    (tmp_path / "precious.txt").write_text("user data")
    with pytest.raises(DataError, match="refusing to overwrite"):
        generate_dataset(tmp_path, SMALL, progress=False)
    assert (tmp_path / "precious.txt").exists()


def test_too_few_videos_for_the_split(tmp_path):
    with pytest.raises(DataError, match="too small"):
        generate_dataset(tmp_path / "d", SyntheticSpec(num_videos=2), progress=False)
