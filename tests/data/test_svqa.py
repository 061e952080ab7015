"""SVQA: questions.json + useVideo/, split by the official lists; 15 categories from the program (B13, B42)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from dualvgr.core.errors import DataError
from dualvgr.core.runner import Runner
from dualvgr.core.spec import load_spec, spec_from_dict
from dualvgr.data.annotations import SPLITS
from dualvgr.data.check import inspect_dataset
from dualvgr.data.entry import DatasetSource, dataset_entry
from dualvgr.data.stage import DATA_STAGE, load_manifest
from dualvgr.data.svqa import CATEGORIES, SHIPPED_SPLITS, read_split_list, read_svqa, split_list_file
from dualvgr.text.stage import QUESTIONS_STAGE
from dualvgr.text.storage import load_encoded_questions, read_sidecar
from tests.data.svqa_files import QUESTIONS, SPLIT_VIDEOS, svqa_entry, write_split_lists, write_svqa

REPO = Path(__file__).resolve().parents[2]
# preprocess/datautils/svqa.py:9-11 of the original, value -> name.
ORIGINAL_TABLE = {
    "count": 0, "exist": 1, "query_color": 2, "query_size": 3, "query_actiontype": 4, "query_direction": 5,
    "query_shape": 6, "compare_more": 7, "compare_equal": 8, "compare_less": 9, "attribute_compare_color": 10,
    "attribute_compare_size": 11, "attribute_compare_actiontype": 12, "attribute_compare_direction": 13,
    "attribute_compare_shape": 14,
}


def source(tmp_path: Path) -> DatasetSource:
    return DatasetSource(kind="svqa", root=tmp_path / "svqa", svqa_splits=tmp_path / "splits")


def written(tmp_path: Path, **kwargs) -> DatasetSource:
    write_svqa(tmp_path / "svqa", tmp_path / "splits", **kwargs)
    return source(tmp_path)


def svqa_spec(tmp_path: Path, name: str, **dataset):
    return spec_from_dict({
        "name": name,
        "dataset": {"kind": "svqa", "root": str(tmp_path / "svqa"), "svqa_splits": str(tmp_path / "splits"),
                    **dataset},
        "features": {"workers": 0},
        "questions": {"glove": "none"},
        "tracking": {"outputs": str(tmp_path / "outputs")},
    })


# --- the shipped split and the category table -----------------------------------------------------------------


def test_shipped_split_lists_are_the_official_ones():
    lists = {split: read_split_list(SHIPPED_SPLITS / f"{split}_svqa_ids.txt") for split in SPLITS}
    assert {split: len(ids) for split, ids in lists.items()} == {"train": 8400, "val": 1200, "test": 2400}
    every = [video for ids in lists.values() for video in ids]
    assert len(set(every)) == 12000, "no video in two lists"
    assert min(every) >= 1 and max(every) <= 32575
    readme = (SHIPPED_SPLITS / "README.md").read_text(encoding="utf-8")
    for split in SPLITS:
        digest = hashlib.sha256((SHIPPED_SPLITS / f"{split}_svqa_ids.txt").read_bytes()).hexdigest()
        assert re.search(rf"`{split}_svqa_ids.txt` \| [\d,]+ \| `{digest}`", readme), \
            f"{split}_svqa_ids.txt differs from the copy the README records (sha256 {digest})"


def test_the_default_split_is_the_shipped_one(tmp_path):
    spec = load_spec(REPO / "experiments" / "svqa.yaml")
    default = DatasetSource.from_spec(spec.dataset)
    assert split_list_file(default, "val") == SHIPPED_SPLITS / "val_svqa_ids.txt"
    assert split_list_file(source(tmp_path), "val") == tmp_path / "splits" / "val_svqa_ids.txt"


def test_b13_b42_one_category_table_in_the_order_of_svqa_py():
    assert {name: i for i, name in enumerate(CATEGORIES.names)} == ORIGINAL_TABLE
    assert dataset_entry("svqa").categories is CATEGORIES and dataset_entry("svqa").paper_table == "svqa"


def test_svqa_experiment_is_the_official_setup():
    spec = load_spec(REPO / "experiments" / "svqa.yaml")
    assert (spec.dataset.kind, spec.dataset.svqa_splits, spec.features.num_clips) == ("svqa", None, 20)
    assert (spec.model.module_dim, spec.model.unit_layers, spec.model.graph_module) == (768, 2, "GAT")
    t = spec.train
    assert (t.batch_size, t.lr, t.epochs, t.seed, t.eval_split) == (256, 1e-4, 25, 666, "test")
    assert spec.questions.glove.endswith("glove.840B.300d.txt") and spec.questions.answer_top == 4000


# --- parsing ---------------------------------------------------------------------------------------------------


def test_questions_are_split_by_the_lists_in_file_order(tmp_path):
    annotations = read_svqa(written(tmp_path))
    train = annotations.items["train"]
    assert [item.video_id for item in train] == [11, 11, 11, 12, 12, 12, 13, 13, 13]
    assert [item.video_id for item in annotations.items["test"]] == [31, 31, 31, 32, 32, 32]
    assert [item.category for item in train[:3]] == ["count", "exist", "query_color"]
    assert [item.id for item in annotations.items["val"]] == [9, 10, 11], "id = the entry's place in questions.json"
    assert train[0].answer == "2", "an integer answer is its decimal digits, as vocab.json stores it"
    assert set(annotations.sources.values()) == {tmp_path / "svqa" / "questions.json"}
    assert annotations.files == {"questions": tmp_path / "svqa" / "questions.json",
                                 **{f"{s}_ids": tmp_path / "splits" / f"{s}_svqa_ids.txt" for s in SPLITS}}


def test_video_ids_written_as_text_are_read_with_int_as_the_original(tmp_path):
    entries = [svqa_entry(str(video), "Is there a ball?", "no", "exist")
               for members in SPLIT_VIDEOS.values() for video in members]
    annotations = read_svqa(written(tmp_path, entries=entries))
    assert [item.video_id for item in annotations.items["val"]] == [21]


def test_svqa_check_finds_every_video_and_fingerprints_the_lists(tmp_path):
    src = written(tmp_path)
    inventory = inspect_dataset("svqa", src.root, svqa_splits=src.svqa_splits, progress=False)
    assert not inventory.problems and not inventory.damaged
    assert inventory.video_paths[31] == src.root / "useVideo" / "31.mp4"
    assert inventory.questions == {"train": 9, "val": 3, "test": 6}
    assert inventory.videos_per_split == {"train": 3, "val": 1, "test": 2}
    write_split_lists(src.svqa_splits, {"train": [11, 12], "val": [21, 13], "test": [31, 32]})
    moved = inspect_dataset("svqa", src.root, svqa_splits=src.svqa_splits, progress=False)
    assert moved.fingerprint != inventory.fingerprint, "another split is another dataset"


# --- faults a user can cause -----------------------------------------------------------------------------------


def test_unknown_category_function_is_an_error_naming_file_entry_and_function(tmp_path):
    write_svqa(tmp_path / "svqa", tmp_path / "splits")
    path = tmp_path / "svqa" / "questions.json"
    entries = json.loads(path.read_text())
    entries[4]["program"][-1]["function"] = "query_material"
    path.write_text(json.dumps(entries))
    with pytest.raises(DataError) as error:
        read_svqa(source(tmp_path))
    assert str(error.value) == (
        f"{path}, entry 4: question category 'query_material' (program[-1]['function']) is not one of SVQA's 15: "
        f"{', '.join(CATEGORIES.names)}; is this the SVQA release's questions.json?"
    )


def test_program_without_a_function_is_an_error_naming_the_entry(tmp_path):
    write_svqa(tmp_path / "svqa", tmp_path / "splits")
    path = tmp_path / "svqa" / "questions.json"
    entries = json.loads(path.read_text())
    entries[2]["program"] = []
    path.write_text(json.dumps(entries))
    with pytest.raises(DataError) as error:
        read_svqa(source(tmp_path))
    assert str(error.value) == (
        f"{path}, entry 2: 'program' must be a non-empty list of steps whose last step has a 'function' (the "
        f"question's category), got []"
    )


def test_video_in_no_split_list_is_an_error_naming_its_questions(tmp_path):
    src = written(tmp_path)
    write_split_lists(src.svqa_splits, {"train": [11, 12], "val": [21], "test": [31, 32]})
    with pytest.raises(DataError) as error:
        read_svqa(src)
    assert str(error.value) == (
        f"3 question(s) of {src.root / 'questions.json'} are on 1 video(s) that no split list names "
        f"({src.svqa_splits}/{{train,val,test}}_svqa_ids.txt), e.g. entry 6 (video 13), entry 7 (video 13), "
        f"entry 8 (video 13): use the split lists of the same SVQA release, or set dataset.svqa_splits to a folder "
        f"whose lists cover them"
    )


def test_video_in_two_split_lists_is_an_error_naming_both(tmp_path):
    src = written(tmp_path)
    write_split_lists(src.svqa_splits, {"train": [11, 12, 13], "val": [21, 31], "test": [31, 32]})
    with pytest.raises(DataError) as error:
        read_svqa(src)
    assert str(error.value) == (
        f"video id 31 is in both {src.svqa_splits / 'val_svqa_ids.txt'} and {src.svqa_splits / 'test_svqa_ids.txt'}: "
        f"a video belongs to one split; fix the lists (dataset.svqa_splits)"
    )


def test_non_integer_line_in_a_split_list_names_the_file_and_line(tmp_path):
    src = written(tmp_path)
    (src.svqa_splits / "test_svqa_ids.txt").write_text("31\r\n\r\nvideo32\r\n")
    with pytest.raises(DataError) as error:
        read_svqa(src)
    assert str(error.value) == (
        f"{src.svqa_splits / 'test_svqa_ids.txt'}, line 3: expected one video id (an integer), got 'video32'"
    )


def test_video_listed_twice_in_one_list_names_both_lines(tmp_path):
    src = written(tmp_path)
    (src.svqa_splits / "train_svqa_ids.txt").write_text("11\n12\n13\n12\n")
    with pytest.raises(DataError) as error:
        read_svqa(src)
    assert str(error.value) == (
        f"{src.svqa_splits / 'train_svqa_ids.txt'}, line 4: video id 12 is listed twice (first on line 2)"
    )


def test_missing_split_list_names_the_key_and_the_files_expected(tmp_path):
    src = written(tmp_path)
    (src.svqa_splits / "val_svqa_ids.txt").unlink()
    with pytest.raises(DataError) as error:
        read_svqa(src)
    assert str(error.value) == (
        f"SVQA split list not found: {src.svqa_splits / 'val_svqa_ids.txt'}\n  dataset.svqa_splits names a folder "
        f"with train_svqa_ids.txt, val_svqa_ids.txt and test_svqa_ids.txt (null: the official lists shipped with "
        f"the harness)"
    )


def test_split_without_questions_is_an_error(tmp_path):
    src = written(tmp_path)
    write_split_lists(src.svqa_splits, {"train": [11, 12, 13, 21], "val": [40], "test": [31, 32]})
    with pytest.raises(DataError) as error:
        read_svqa(src)
    assert str(error.value) == (
        f"no question of {src.root / 'questions.json'} is on a video of {src.svqa_splits / 'val_svqa_ids.txt'} (the "
        f"val split): a split needs questions; are the questions and the split lists from the same release?"
    )


@pytest.mark.parametrize("answer,shown", [(2.5, "float 2.5"), (True, "bool True"), (None, "NoneType None"),
                                          (["red"], "list ['red']")])
def test_answer_that_is_neither_text_nor_an_integer_is_an_error(tmp_path, answer, shown):
    write_svqa(tmp_path / "svqa", tmp_path / "splits")
    path = tmp_path / "svqa" / "questions.json"
    entries = json.loads(path.read_text())
    entries[1]["ans"] = answer
    path.write_text(json.dumps(entries))
    with pytest.raises(DataError) as error:
        read_svqa(source(tmp_path))
    assert str(error.value) == (
        f"{path}, entry 1: 'ans' must be a string (or an integer, read as its decimal digits), got {shown}"
    )


def test_missing_key_and_bad_video_id_name_the_entry(tmp_path):
    write_svqa(tmp_path / "svqa", tmp_path / "splits")
    path = tmp_path / "svqa" / "questions.json"
    entries = json.loads(path.read_text())
    del entries[0]["ans"]
    path.write_text(json.dumps(entries))
    with pytest.raises(DataError) as error:
        read_svqa(source(tmp_path))
    assert str(error.value) == f"{path}, entry 0: missing key 'ans' (has ['id', 'program', 'question'])"
    entries[0] = svqa_entry("eleven", "Is there a cube?", "yes", "exist")
    path.write_text(json.dumps(entries))
    with pytest.raises(DataError) as error:
        read_svqa(source(tmp_path))
    assert str(error.value) == f"{path}, entry 0: 'id' (the video id) must be an integer, got str 'eleven'"


def test_missing_questions_json_says_what_goes_where(tmp_path):
    src = written(tmp_path)
    (src.root / "questions.json").unlink()
    with pytest.raises(DataError) as error:
        read_svqa(src)
    assert str(error.value) == (
        f"SVQA questions not found: {src.root / 'questions.json'}\n  expected the SVQA release's questions.json (a "
        f"JSON list of {{id, question, ans, program}} objects) with the videos in useVideo/; place it there or set "
        f"dataset.root"
    )


def test_missing_root_names_what_an_svqa_root_holds(tmp_path):
    with pytest.raises(DataError) as error:
        inspect_dataset("svqa", tmp_path / "absent", progress=False)
    assert str(error.value) == (
        f"dataset root not found: {tmp_path / 'absent'} (set dataset.root to the folder with questions.json and "
        f"useVideo/)"
    )


# --- through the runner ----------------------------------------------------------------------------------------


def runner_for(tracker) -> Runner:
    """A new runner per command, as the CLI makes (a runner memoises fingerprints for one command)."""
    return Runner({"data": DATA_STAGE, "questions": QUESTIONS_STAGE}, tracker, progress=False, echo=False)


def test_svqa_data_and_questions_stages_store_the_categories(tmp_path, tracker):
    write_svqa(tmp_path / "svqa", tmp_path / "splits")
    spec = svqa_spec(tmp_path, "svqa-stages")
    (data,) = runner_for(tracker).run("data", spec)
    run = tracker.client.get_run(data.run_id)
    assert run.info.status == "FINISHED" and run.data.params["dataset.kind"] == "svqa"
    assert {name: run.data.metrics[f"questions_{name}"] for name in SPLITS} == {"train": 9, "val": 3, "test": 6}
    assert run.data.metrics["videos_total"] == 6 and run.data.metrics["videos_missing"] == 0
    manifest = load_manifest(data.outputs["manifest"])
    assert set(manifest["annotation_files"].values()) == {(tmp_path / "svqa" / "questions.json").resolve()}

    (questions,) = runner_for(tracker).run("questions", spec)
    train = load_encoded_questions(questions.outputs["train_questions"])
    assert train.category_names == (*CATEGORIES.names, "other")
    assert read_sidecar(questions.outputs["train_questions"])["question_types"] == [*CATEGORIES.names, "other"]
    expected = [ORIGINAL_TABLE[function] for _, _, function in QUESTIONS] * 3
    assert train.question_types.tolist() == expected, "the category integers are svqa.py's, never mapped twice (B13)"
    assert train.question_types.dtype == np.int8 and train.answer_texts[:3] == ("2", "yes", "red")
    test = load_encoded_questions(questions.outputs["test_questions"])
    assert test.answers.tolist() == train.answers[:6].tolist(), "integer answers match across splits"

    # Moving a video to another split is another data set: the data stage and its downstream rerun.
    write_split_lists(tmp_path / "splits", {"train": [11, 12], "val": [21, 13], "test": [31, 32]})
    (again,) = runner_for(tracker).run("questions", spec)
    assert not again.cache_hit
    assert load_encoded_questions(again.outputs["val_questions"]).video_ids.tolist() == [13] * 3 + [21] * 3, "file order"
