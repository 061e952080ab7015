"""Every experiment's outside inputs: where each goes (from the experiment's keys) and how it can be had."""

from __future__ import annotations

from pathlib import Path

import pytest

from dualvgr.core.spec import load_spec
from dualvgr.fetch.sources import GLOVE, IMAGENET, MSVD_VIDEOS, SOURCES, plan_inputs, source

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((REPO / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=lambda path: path.stem)
def test_every_input_of_every_experiment_is_downloadable_by_hand_or_nothing(experiment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for item in plan_inputs(load_spec(experiment, [])):
        assert item.kind in ("download", "by hand", "nothing"), item
        if item.kind == "by hand":
            assert item.instructions and all(str(target.parent) in item.instructions for target in item.targets), \
                f"{item.name}: the instructions must name where each file goes: {item.instructions}"
        if item.kind == "download":
            assert item.download_to is not None and item.source.url.startswith("https://"), item
        if item.kind == "nothing":
            assert item.note, f"{item.name}: say why there is nothing to fetch"
        assert all(target.is_absolute() for target in item.targets)


def test_destinations_follow_the_experiment_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    spec = load_spec(REPO / "experiments/msvd_qa.yaml", [
        f"dataset.root={tmp_path / 'msvd'}", "dataset.layout=video", "dataset.mapping_file=map.txt",
        f"questions.glove={tmp_path / 'g' / 'glove.840B.300d.zip'}",
        f"features.motion.weights={tmp_path / 'w' / 'resnext-101-kinetics.pth'}",
    ])
    plan = {item.name: item for item in plan_inputs(spec)}
    assert plan["appearance weights"].targets == (tmp_path / "torch/hub/checkpoints/resnet101-63fe2227.pth",)
    assert plan["motion weights"].targets == (tmp_path / "w/resnext-101-kinetics.pth",)
    assert plan["motion weights"].kind == "by hand" and "drive.google.com" in plan["motion weights"].instructions
    glove = plan["GloVe"]
    assert glove.targets == (tmp_path / "g/glove.840B.300d.zip",) and glove.download_to == glove.targets[0]
    assert not glove.unpacks, "the questions stage streams the zip itself: nothing to unpack"
    qa_files = tuple(tmp_path / "msvd" / f"{split}_qa.json" for split in ("train", "val", "test"))
    assert plan["MSVD-QA annotations"].targets == qa_files
    assert plan["MSVD video mapping"].targets == (tmp_path / "msvd/map.txt",)
    videos = plan["MSVD videos"]
    assert videos.targets == (tmp_path / "msvd/video",) and videos.download_to == tmp_path / "msvd/YouTubeClips.tar"


def test_glove_txt_destination_is_unpacked_from_the_zip(tmp_path):
    spec = load_spec(REPO / "experiments/msvd_qa.yaml", [f"questions.glove={tmp_path / 'glove.840B.300d.txt'}"])
    glove = next(item for item in plan_inputs(spec) if item.name == "GloVe")
    assert glove.unpacks and glove.download_to == tmp_path / "glove.840B.300d.zip"
    assert glove.targets == (tmp_path / "glove.840B.300d.txt",)


def test_glove_file_of_another_name_is_by_hand(tmp_path):
    spec = load_spec(REPO / "experiments/msvd_qa.yaml", [f"questions.glove={tmp_path / 'glove.npy'}"])
    glove = next(item for item in plan_inputs(spec) if item.name == "GloVe")
    assert glove.kind == "by hand" and glove.instructions == (
        f"put the file at {tmp_path / 'glove.npy'}, or set questions.glove to a path ending in glove.840B.300d.zip or "
        f"glove.840B.300d.txt and fetch downloads GloVe 840B 300d there"
    )


def test_imagenet_source_is_torchvisions_url_and_hash_prefix():
    from torchvision.models import ResNet101_Weights

    imagenet = source(SOURCES, IMAGENET)
    assert imagenet.url == ResNet101_Weights.IMAGENET1K_V1.url
    assert imagenet.expected.sha256 == "63fe2227" and imagenet.expected.size is None


def test_known_sources_are_checked_by_hash_or_size():
    glove = source(SOURCES, GLOVE)
    assert glove.expected.size == 2_176_768_927 and glove.member == "glove.840B.300d.txt"
    assert source(SOURCES, MSVD_VIDEOS).folder == "YouTubeClips"


def test_msvd_videos_in_any_accepted_layout_are_present(tmp_path):
    spec = load_spec(REPO / "experiments/msvd_qa.yaml", [f"dataset.root={tmp_path}"])
    videos = lambda: next(item for item in plan_inputs(spec) if item.name == "MSVD videos")  # noqa: E731
    assert not videos().present()
    (tmp_path / "video").mkdir()
    (tmp_path / "video" / "clip_1_5.avi").write_bytes(b"avi")
    assert videos().present(), "dataset.layout: auto also accepts <root>/video/*.avi"


def test_msrvtt_videos_by_hand_name_both_folders(tmp_path):
    spec = load_spec(REPO / "experiments/msrvtt_qa.yaml", [f"dataset.root={tmp_path}"])
    videos = next(item for item in plan_inputs(spec) if item.name == "MSR-VTT videos")
    assert videos.kind == "by hand" and not videos.present()
    for folder in ("TrainValVideo", "TestVideo"):
        assert f"{tmp_path}/video/{folder}/" in videos.instructions, videos.instructions
    for folder in ("TrainValVideo", "TestVideo"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "video1.mp4").write_bytes(b"mp4")
    assert videos.present(), "the data stage also reads <root>/TrainValVideo and <root>/TestVideo"


def test_dataset_kind_without_sources_gets_one_line(tmp_path):
    spec = load_spec(REPO / "experiments/msvd_qa.yaml", [f"dataset.root={tmp_path}"])
    spec.dataset.kind = "some-plugin-qa"  # a kind a plug-in registered, which fetch has no table entry for
    (item,) = [item for item in plan_inputs(spec) if item.key == "dataset.kind"]
    assert item.kind == "nothing" and item.note == (
        f"fetch knows no sources for dataset.kind 'some-plugin-qa': put its files under {tmp_path} as its "
        f"documentation says"
    )
