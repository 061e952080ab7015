"""The data sets in the MSVD-QA annotation format: MSVD-QA, MSRVTT-QA and the synthetic demo.

All three keep ``{train,val,test}_qa.json`` under their root (:mod:`dualvgr.data.annotations`) and take a
question's category from its first token (what, who, how, when, where). They differ in where the videos are
(:mod:`dualvgr.data.layout`): MSVD-QA maps each video id to a clip name through ``youtube_mapping.txt``; MSRVTT-QA
names ``video<id>.mp4`` in a train/val and a test folder; the demo writes itself in the MSVD-QA layout
(:mod:`dualvgr.data.synthetic`) before the check.
"""

from __future__ import annotations

from dualvgr.core.fingerprint import StatCache, file_identity, folder_manifest, manifest_digest
from dualvgr.data.annotations import SPLITS, Annotations, load_qa_files, qa_file
from dualvgr.data.categories import QUESTION_WORDS
from dualvgr.data.entry import DatasetEntry, DatasetSource, VideoSet
from dualvgr.data.layout import msrvtt_video_paths, msvd_video_paths

HOLDS = "{train,val,test}_qa.json"


def read_qa_files(source: DatasetSource) -> Annotations:
    """``{train,val,test}_qa.json`` under the root."""
    return load_qa_files({split: qa_file(source.root, split) for split in SPLITS})


def identify_qa_root(entry: DatasetEntry, source: DatasetSource, cache: StatCache) -> dict:
    """Every ``*_qa.json`` under the root by its identity, and every file under the root by its content."""
    root = source.root
    return {
        "qa": {path.name: file_identity(path, cache) for path in sorted(root.glob("*_qa.json"))},
        "files": manifest_digest(folder_manifest(root, cache)),
    }


def msvd_videos(source: DatasetSource, annotations: Annotations) -> VideoSet:
    video_ids = {item.video_id for items in annotations.items.values() for item in items}
    paths = msvd_video_paths(source.root, source.layout, source.mapping_file, video_ids)
    return VideoSet(paths, {"mapping": source.root / source.mapping_file})


def msrvtt_videos(source: DatasetSource, annotations: Annotations) -> VideoSet:
    ids_by_split = {split: {item.video_id for item in items} for split, items in annotations.items.items()}
    return VideoSet(msrvtt_video_paths(source.root, ids_by_split))


def write_synthetic(source: DatasetSource, progress: bool) -> None:
    from dualvgr.data.synthetic import generate_dataset  # OpenCV: only once a demo is written

    generate_dataset(source.root, source.synthetic, progress=progress)


MSVD_QA = DatasetEntry(
    title="MSVD-QA",
    holds=f"{HOLDS}, youtube_mapping.txt and the clips",
    read=read_qa_files,
    videos=msvd_videos,
    categories=QUESTION_WORDS,
    paper_table="msvd-qa",
    identify=identify_qa_root,
)

MSRVTT_QA = DatasetEntry(
    title="MSRVTT-QA",
    holds=f"{HOLDS} and video/TrainValVideo/, video/TestVideo/",
    read=read_qa_files,
    videos=msrvtt_videos,
    categories=QUESTION_WORDS,
    paper_table="msrvtt-qa",
    identify=identify_qa_root,
)

SYNTHETIC = DatasetEntry(
    title="synthetic demo (MSVD-QA format)",
    holds=HOLDS,
    read=read_qa_files,
    videos=msvd_videos,
    categories=QUESTION_WORDS,
    paper_table="none",
    identify=identify_qa_root,
    # A function of dataset.synthetic: the generator's config is its fingerprint.
    params=lambda source: {"synthetic": source.synthetic},
    generate=write_synthetic,
)
