"""Which runs a report is about: FINISHED executed train runs, the newest pool (by pool key), one per seed."""

from __future__ import annotations

import pytest

from dualvgr.core.errors import StageError
from dualvgr.core.tracking import TAG_CONFIG_HASH, TAG_POOL_KEY
from dualvgr.report.collect import RunInfo, collect, select_runs, unflatten_params
from tests.report.fakes import log_reproduction, log_run, log_train, log_upstream, paper_like_spec, unique_name


def info(run_id, *, stage="train", experiment="x", config="c1", seed="666", start=0, status="FINISHED", cache="false",
         pool=None, commit=None, dirty=None):
    tags = {"dualvgr.stage": stage, "dualvgr.experiment": experiment, "dualvgr.config_hash": config,
            "dualvgr.seed": seed, "dualvgr.cache_hit": cache}
    for key, value in ((TAG_POOL_KEY, pool), ("dualvgr.git_commit", commit), ("dualvgr.git_dirty", dirty)):
        if value is not None:
            tags[key] = value
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
    assert (selection.pooled_by, selection.pool_key) == (TAG_CONFIG_HASH, "c1"), "no pool key: the config hash"
    assert [(g.pooled_by, g.key, g.run_ids, g.seeds) for g in selection.older_groups] == [
        (TAG_CONFIG_HASH, "c0", ("old1", "old2"), ("666", "667"))]
    notes = " ".join(selection.notes)
    assert "seed 666 was trained twice" in notes and "b-again" in notes and "not FINISHED (FAILED)" in notes
    assert "cache-hit" in notes and "1 older pool(s)" in notes


def test_select_group_newest_by_its_newest_run():
    runs = [info("c1-early", pool="p1", start=1), info("c2", pool="p2", start=5),
            info("c1-late", pool="p1", seed="667", start=9)]
    assert select_runs(runs, "x").pool_key == "p1"


def test_seeds_differing_in_settings_no_stage_reads_share_a_pool():
    """train.workers, report.*, paper.tolerance, device auto vs cpu change the config hash, not the pool key."""
    runs = [info("w4", config="workers-4", pool="p", seed="666", start=1),
            info("w8", config="workers-8", pool="p", seed="667", start=2),
            info("tol", config="tolerance-2", pool="p", seed="668", start=3)]
    selection = select_runs(runs, "x")
    assert [r.run_id for r in selection.runs] == ["w4", "w8", "tol"], "no seed is dropped as an older configuration"
    assert (selection.pooled_by, selection.older_groups) == (TAG_POOL_KEY, ())
    assert not [n for n in selection.notes if "older pool" in n or TAG_CONFIG_HASH in n], selection.notes


def test_seeds_trained_by_other_code_are_not_pooled_with_the_same_config_hash():
    runs = [info("v1-a", pool="code-v1", seed="666", start=1), info("v1-b", pool="code-v1", seed="667", start=2),
            info("v2", pool="code-v2", seed="668", start=3)]
    selection = select_runs(runs, "x")
    assert [r.run_id for r in selection.runs] == ["v2"], "same config hash, other code: another pool"
    assert [(g.pooled_by, g.key, g.seeds) for g in selection.older_groups] == [
        (TAG_POOL_KEY, "code-v1", ("666", "667"))]


def test_runs_without_a_pool_key_are_pooled_by_config_hash_and_the_report_says_so():
    selection = select_runs([info("old-a", config="c", seed="1"), info("old-b", config="c", seed="2", start=1)], "x")
    assert [r.run_id for r in selection.runs] == ["old-a", "old-b"]
    (note,) = [n for n in selection.notes if TAG_POOL_KEY in n]
    assert note == ("the reported runs have no dualvgr.pool_key tag (they were logged before the runner recorded it): "
                    "they are pooled by dualvgr.config_hash, the spec without the seed, which covers neither the code "
                    "version nor the input files")


def test_newer_runs_with_a_pool_key_are_not_pooled_with_older_runs_without_one():
    selection = select_runs([info("old", config="c", seed="1"), info("new", config="c", pool="p", seed="2", start=5)],
                            "x")
    assert [r.run_id for r in selection.runs] == ["new"] and selection.pooled_by == TAG_POOL_KEY
    assert [(g.pooled_by, g.key) for g in selection.older_groups] == [(TAG_CONFIG_HASH, "c")]


def test_pooled_seeds_from_two_git_commits_are_noted():
    first, second = "aaaaaaaaaaaa1111", "bbbbbbbbbbbb2222"
    runs = [info("a", pool="p", seed="666", commit=first), info("b", pool="p", seed="667", commit=first),
            info("c", pool="p", seed="668", commit=second, start=1)]
    (note,) = [n for n in select_runs(runs, "x").notes if "git commits" in n]
    assert note.startswith("the pooled seeds were trained by 2 git commits: `aaaaaaaaaaaa` (seeds 666, 667); "
                           "`bbbbbbbbbbbb` (seed 668); their pool key matched"), note


def test_two_commits_pooled_by_config_hash_warn_that_the_code_may_differ():
    runs = [info("a", seed="1", commit="a" * 40), info("b", seed="2", commit="b" * 40, start=1)]
    (note,) = [n for n in select_runs(runs, "x").notes if "git commits" in n]
    assert note.endswith("their dualvgr.config_hash does not cover the code, so these seeds may come from different "
                         "code"), note


def test_seed_from_a_dirty_checkout_or_without_a_commit_is_noted():
    runs = [info("a", pool="p", seed="1", commit="a" * 40, dirty="true"), info("b", pool="p", seed="2", start=1)]
    notes = select_runs(runs, "x").notes
    assert ("seed 1: trained from a checkout with uncommitted changes (dualvgr.git_dirty), so the commit does not "
            "identify the code") in notes, notes
    assert "seed 2: no dualvgr.git_commit tag, the code that trained them is unknown" in notes, notes
    assert not [n for n in notes if "git commits" in n], "one known commit is not a span of commits"


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
    assert collection.pooled_by == TAG_POOL_KEY and collection.older_groups == ()


def test_collect_pools_seeds_whose_workers_differ(tracker, request):
    """Through the store: seeds with other train.workers (another config hash) share the runner's pool key."""
    name = unique_name(request)
    spec = paper_like_spec(name)
    upstream = log_upstream(tracker, spec)
    pool = {"dualvgr.pool_key": "pool-shared"}
    for seed, workers in ((1, 4), (2, 8), (3, 0)):
        log_train(tracker, paper_like_spec(name, **{"train.workers": workers}), seed, 0.39, upstream=upstream,
                  extra_tags=pool)
    collection = collect(tracker, name)
    assert [r.info.seed for r in collection.runs] == ["1", "2", "3"], "every seed is reported"
    assert len({r.info.tags["dualvgr.config_hash"] for r in collection.runs}) == 3, "the config hashes differ"
    assert (collection.pool_key, collection.older_groups) == ("pool-shared", ())
