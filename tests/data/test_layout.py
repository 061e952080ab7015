"""MSVD-QA / MSRVTT-QA layout detection, the mapping file quirks (B23, B24), and the dataset check."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from dualvgr.core.errors import DataError
from dualvgr.data.annotations import load_qa_file
from dualvgr.data.check import inspect_dataset, problems_message
from dualvgr.data.layout import find_msvd_video_dir, read_mapping


def tiny_video(path: Path, frames: int = 5) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (32, 24))
    for t in range(frames):
        writer.write(np.full((24, 32, 3), 20 * t, np.uint8))
    writer.release()


def write_qa(root: Path, video_ids: dict[str, list[int]]) -> None:
    qa_id = 0
    for split, ids in video_ids.items():
        items = []
        for vid in ids:
            items.append({"answer": "man", "id": qa_id, "question": "who is it?", "video_id": vid})
            qa_id += 1
        (root / f"{split}_qa.json").write_text(json.dumps(items))


def make_msvd(root: Path, video_subdir: str, mapping_text: str | None = None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    write_qa(root, {"train": [1, 2], "val": [3], "test": [3]})
    names = {1: "abc_1_5", 2: "d-e_f_3_9", 3: "xyz_0_4"}
    for name in names.values():
        tiny_video(root / video_subdir / f"{name}.avi")
    text = mapping_text if mapping_text is not None else "\n".join(f"{n} vid{k}" for k, n in names.items())
    (root / "youtube_mapping.txt").write_text(text)


@pytest.mark.parametrize("subdir", ["video", "YouTubeClips", "video/YouTubeClips"])
def test_b23_msvd_layouts_are_found(tmp_path, subdir):
    make_msvd(tmp_path, subdir)
    assert find_msvd_video_dir(tmp_path) == tmp_path / subdir
    inventory = inspect_dataset("msvd-qa", tmp_path, progress=False)
    assert inventory.questions == {"train": 2, "val": 1, "test": 1}
    assert inventory.videos_per_split == {"train": 2, "val": 1, "test": 1}
    assert not inventory.problems and len(inventory.video_paths) == 3


def test_b23_explicit_layout_and_missing_folder(tmp_path):
    make_msvd(tmp_path, "YouTubeClips")
    with pytest.raises(DataError, match="no MSVD .avi videos found") as err:
        find_msvd_video_dir(tmp_path, "video")
    assert str(tmp_path / "video") in str(err.value)


@pytest.mark.parametrize("text", ["abc_1_5 vid1\r\nd-e_f_3_9 vid2\r\nxyz_0_4 vid3\r\n",
                                  "abc_1_5 vid1\nd-e_f_3_9 vid2\nxyz_0_4 vid3\n\n"], ids=["crlf", "trailing"])
def test_b24_mapping_crlf_and_trailing_newline(tmp_path, text):
    (tmp_path / "m.txt").write_text(text)
    assert read_mapping(tmp_path / "m.txt") == {1: "abc_1_5", 2: "d-e_f_3_9", 3: "xyz_0_4"}


def test_mapping_errors_name_the_line(tmp_path):
    (tmp_path / "m.txt").write_text("abc vid1\nbroken line here\n")
    with pytest.raises(DataError, match=r"m.txt, line 2: expected '<clip_name> vid<k>'"):
        read_mapping(tmp_path / "m.txt")
    with pytest.raises(DataError, match="mapping file not found"):
        read_mapping(tmp_path / "absent.txt")


def test_msrvtt_layout(tmp_path):
    write_qa(tmp_path, {"train": [0, 1], "val": [6513], "test": [7010]})
    for vid, folder in ((0, "TrainValVideo"), (1, "TrainValVideo"), (6513, "TrainValVideo"), (7010, "TestVideo")):
        tiny_video(tmp_path / "video" / folder / f"video{vid}.mp4")
    inventory = inspect_dataset("msrvtt-qa", tmp_path, progress=False)
    assert not inventory.problems, inventory.problems
    assert inventory.video_paths[7010] == tmp_path / "video" / "TestVideo" / "video7010.mp4"


def test_missing_and_unreadable_videos_are_listed(tmp_path):
    make_msvd(tmp_path, "YouTubeClips")
    (tmp_path / "YouTubeClips" / "abc_1_5.avi").unlink()
    (tmp_path / "YouTubeClips" / "xyz_0_4.avi").write_bytes(b"not a video")
    inventory = inspect_dataset("msvd-qa", tmp_path, progress=False)
    assert set(inventory.problems) == {1, 3}
    assert inventory.problems[1].startswith("missing") and inventory.problems[3].startswith("unreadable")
    message = problems_message(inventory, "LIST")
    assert "2 of 3 videos" in message and "abc_1_5.avi" in message and "allow_missing_videos" in message


def test_fingerprint_changes_with_the_data(tmp_path):
    make_msvd(tmp_path, "video")
    before = inspect_dataset("msvd-qa", tmp_path, progress=False).fingerprint
    tiny_video(tmp_path / "video" / "abc_1_5.avi", frames=9)
    assert inspect_dataset("msvd-qa", tmp_path, progress=False).fingerprint != before


def test_malformed_annotations_name_file_and_entry(tmp_path):
    path = tmp_path / "train_qa.json"
    path.write_text(json.dumps([{"question": "what?", "answer": "a", "video_id": 1, "id": 0},
                                {"question": "who?", "video_id": 2, "id": 1}]))
    with pytest.raises(DataError, match=r"train_qa.json, entry 1: missing key 'answer'"):
        load_qa_file(path)
    path.write_text('[{"question": "what?"')
    with pytest.raises(DataError, match=r"train_qa.json is not valid JSON"):
        load_qa_file(path)
    with pytest.raises(DataError, match="annotation file not found"):
        load_qa_file(tmp_path / "val_qa.json")
