"""Which runs a report is about: FINISHED executed train runs, newest configuration, one per seed."""

from __future__ import annotations

import pytest

from dualvgr.core.errors import StageError
from dualvgr.report.collect import RunInfo, collect, select_runs, unflatten_params
from tests.report.fakes import log_reproduction, log_run, log_train, log_upstream, paper_like_spec, unique_name


def info(run_id, *, stage="train", experiment="x", config="c1", seed="666", start=0, status="FINISHED", cache="false"):
    tags = {"dualvgr.stage": stage, "dualvgr.experiment": experiment, "dualvgr.config_hash": config,
            "dualvgr.seed": seed, "dualvgr.cache_hit": cache}
    return RunInfo(run_id, status, start, tags)


def test_select_newest_group_one_run_per_seed():
    runs = [
        info("old1", config="c0", seed="666", start=1), info("old2", config="c0", seed="667", start=2),
        info("a", seed="667", start=10), info("b", seed="666", start=11), info("b-again", seed="666", start=12),
        info("failed", seed="668", start=13, status="FAILED"), info("hit", seed="669", start=14, cache="true"),
        info("group", stage="train-seeds", start=15), info("pipe", stage="pipeline", start=16),
        info("other", experiment="y", start=17),
    ]
    selection = select_runs(runs, "x")
    assert [r.run_id for r in selection.runs] == ["b-again", "a"], "newest run per seed, sorted by seed"
    assert selection.config_hash == "c1"
    assert [(g.config_hash, g.run_ids, g.seeds) for g in selection.older_groups] == [("c0", ("old1", "old2"),
                                                                                       ("666", "667"))]
    notes = " ".join(selection.notes)
    assert "seed 666 was trained twice" in notes and "b-again" in notes and "not FINISHED (FAILED)" in notes
    assert "cache-hit" in notes and "older configuration" in notes


def test_select_group_newest_by_its_newest_run():
    runs = [info("c1-early", config="c1", start=1), info("c2", config="c2", start=5),
            info("c1-late", config="c1", seed="667", start=9)]
    assert select_runs(runs, "x").config_hash == "c1"


def test_select_nothing_executed():
    selection = select_runs([info("hit", cache="true")], "x")
    assert selection.runs == () and "cache-hit" in selection.notes[0]


def test_unflatten_params_restores_types():
    raw = unflatten_params({"train.lr": "0.0001", "train.seeds": "[1, 2]", "questions.vocabulary": "null",
                            "dataset.root": "data/msvd-qa", "train.preload": "false", "name": "x"})
    assert raw == {"train": {"lr": 0.0001, "seeds": [1, 2], "preload": False},
                   "questions": {"vocabulary": None}, "dataset": {"root": "data/msvd-qa"}, "name": "x"}


def test_collect_from_store_reads_spec_curves_and_upstream(tracker, request):
    name = unique_name(request)
    spec = paper_like_spec(name)
    upstream = log_upstream(tracker, spec)
    log_train(tracker, spec, 666, 0.38, upstream=upstream, epochs=4)
    log_train(tracker, spec, 667, 0.39, upstream=upstream, epochs=4, status="FAILED")
    log_train(tracker, spec, 668, 0.40, upstream=upstream, epochs=4, cache_hit=True)
    log_run(tracker, spec, "train-seeds")
    collection = collect(tracker, name)
    (run,) = collection.runs
    assert run.info.seed == "666" and run.info.metrics["test_acc"] == pytest.approx(0.38)
    assert run.values["name"] == name and run.value("train.epochs") == 25 and run.spec_note is None
    assert [epoch for epoch, _ in run.curves["val_acc"]] == [0, 1, 2, 3]
    assert set(run.upstream) == {"data", "appearance", "motion", "questions"}
    assert run.upstream["motion"].metrics["feature_width"] == 2048
    assert any("FAILED" in note for note in collection.notes)


def test_collect_without_runs_is_a_clear_stage_error(tracker, request):
    name = unique_name(request)
    with pytest.raises(StageError) as error:
        collect(tracker, name)
    message = str(error.value)
    assert f"no FINISHED train runs for experiment '{name}'" in message
    assert tracker.tracking_uri in message and "dualvgr train" in message


def test_collect_counts_seeds_of_one_configuration(tracker, request):
    name = unique_name(request)
    log_reproduction(tracker, paper_like_spec(name), {1: 0.38, 2: 0.39, 3: 0.40})
    collection = collect(tracker, name)
    assert [r.info.seed for r in collection.runs] == ["1", "2", "3"]
    assert len({r.info.tags["dualvgr.config_hash"] for r in collection.runs}) == 1, "seeds share the config hash"
