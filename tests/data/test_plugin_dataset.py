"""A data set added from outside the package: a toy format of its own, registered in DATASETS by this test, runs
the data and questions stages through the real Runner; an unknown dataset.kind lists the registered ones."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dualvgr.core.errors import DataError, SpecError
from dualvgr.core.registries import DATASETS
from dualvgr.core.runner import Runner
from dualvgr.core.spec import spec_from_dict
from dualvgr.data.annotations import SPLITS, Annotations, QAItem
from dualvgr.data.categories import QuestionCategories, by_annotation
from dualvgr.data.entry import DatasetEntry, DatasetSource, VideoSet
from dualvgr.data.stage import DATA_STAGE, load_manifest
from dualvgr.text.stage import QUESTIONS_STAGE
from dualvgr.text.storage import load_encoded_questions
from tests.data.svqa_files import tiny_mp4

# The toy format: questions.csv (split, video, question, answer, topic) and clips/v<video>.mp4.
ROWS = [
    ("train", 1, "What colour is the ball?", "red", "colour"),
    ("train", 1, "Does the ball move?", "yes", "motion"),
    ("train", 2, "What colour is the ball?", "blue", "colour"),
    ("train", 2, "Does the ball move?", "no", "motion"),
    ("val", 3, "What colour is the ball?", "red", "colour"),
    ("test", 4, "Does the ball move?", "yes", "motion"),
    ("test", 4, "Is it daytime?", "yes", ""),  # no topic: counts only overall
]


def read_toy(source: DatasetSource) -> Annotations:
    path = source.root / "questions.csv"
    if not path.is_file():
        raise DataError(f"toy questions not found: {path}")
    items: dict[str, list[QAItem]] = {split: [] for split in SPLITS}
    with open(path, newline="", encoding="utf-8") as handle:
        for row_number, row in enumerate(csv.DictReader(handle)):
            items[row["split"]].append(QAItem(id=row_number, question=row["question"], answer=row["answer"],
                                              video_id=int(row["video"]), category=row["topic"] or None))
    return Annotations({split: tuple(rows) for split, rows in items.items()}, dict.fromkeys(SPLITS, path),
                       {"questions": path})


def toy_videos(source: DatasetSource, annotations: Annotations) -> VideoSet:
    ids = {item.video_id for items in annotations.items.values() for item in items}
    return VideoSet({video: source.root / "clips" / f"v{video}.mp4" for video in sorted(ids)})


TOY = DatasetEntry(
    title="Toy-QA", holds="questions.csv and clips/", read=read_toy, videos=toy_videos,
    categories=QuestionCategories(("colour", "motion"), by_annotation),
)


@pytest.fixture()
def toy_kind():
    DATASETS.register("toy-qa", TOY)
    yield "toy-qa"
    DATASETS.unregister("toy-qa")


def write_toy(root: Path) -> None:
    root.mkdir(parents=True)
    with open(root / "questions.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("split", "video", "question", "answer", "topic"))
        writer.writerows(ROWS)
    for video in {row[1] for row in ROWS}:
        tiny_mp4(root / "clips" / f"v{video}.mp4", shade=50 * video)


def toy_spec(tmp_path: Path, kind: str, name: str = "toy-qa"):
    return spec_from_dict({
        "name": name, "dataset": {"kind": kind, "root": str(tmp_path / "toy")}, "features": {"workers": 0},
        "questions": {"glove": "none"}, "tracking": {"outputs": str(tmp_path / "outputs")},
    })


def runner_for(tracker) -> Runner:
    return Runner({"data": DATA_STAGE, "questions": QUESTIONS_STAGE}, tracker, progress=False, echo=False)


def test_a_registered_data_set_runs_the_data_and_questions_stages(tmp_path, tracker, toy_kind):
    write_toy(tmp_path / "toy")
    spec = toy_spec(tmp_path, toy_kind)
    (data,) = runner_for(tracker).run("data", spec)
    run = tracker.client.get_run(data.run_id)
    assert run.info.status == "FINISHED"
    assert {split: run.data.metrics[f"questions_{split}"] for split in SPLITS} == {"train": 4, "val": 1, "test": 2}
    assert sorted(load_manifest(data.outputs["manifest"])["videos"]) == [1, 2, 3, 4]

    (questions,) = runner_for(tracker).run("questions", spec)
    train = load_encoded_questions(questions.outputs["train_questions"])
    assert train.category_names == ("colour", "motion", "other")
    assert train.question_types.tolist() == [0, 1, 0, 1]
    test = load_encoded_questions(questions.outputs["test_questions"])
    assert [test.category_names[i] for i in test.question_types] == ["motion", "other"], "no topic: overall only"

    # The toy data is identified by content like any real data set: a changed question reruns both stages.
    (tmp_path / "toy" / "questions.csv").write_text(
        (tmp_path / "toy" / "questions.csv").read_text().replace("Is it daytime?", "Is it night?"))
    (again,) = runner_for(tracker).run("questions", spec)
    assert not again.cache_hit


def test_unknown_dataset_kind_fails_the_data_stage_listing_the_registered_ones(tmp_path, tracker, toy_kind):
    spec = toy_spec(tmp_path, "svqaa", name="unknown-kind")
    with pytest.raises(SpecError) as error:
        runner_for(tracker).run("data", spec)
    assert str(error.value) == (
        "'dataset.kind' is 'svqaa', which is no registered data set; did you mean 'svqa'? (registered: msrvtt-qa, "
        "msvd-qa, svqa, synthetic, toy-qa; a plug-in module listed under 'plugins' can register more)"
    )


def test_category_the_annotation_names_outside_the_table_is_an_error(tmp_path, tracker, toy_kind):
    write_toy(tmp_path / "toy")
    path = tmp_path / "toy" / "questions.csv"
    path.write_text(path.read_text().replace(",red,colour", ",red,size", 1))
    with pytest.raises(DataError) as error:
        runner_for(tracker).run("questions", toy_spec(tmp_path, toy_kind, name="toy-bad-category"))
    assert str(error.value) == (
        f"{path} (train): question id 0 has the category 'size', which is not one of this data set's categories "
        f"(colour, motion); fix its annotation, or register the data set with it"
    )
