"""Stage runner: cache hit / miss / force, upstream first, FAILED runs, cache invalidation by outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dualvgr.core.errors import StageError
from dualvgr.core.runner import Runner, pipeline_run
from dualvgr.core.spec import spec_from_dict
from dualvgr.core.stage import Stage, StageResult
from dualvgr.core.tracking import TAG_CACHE_HIT, TAG_FINGERPRINT, TAG_STAGE, TAG_UPSTREAM_PREFIX


def make_stages(calls: list[str], fail: bool = False) -> dict[str, Stage]:
    def run_source(ctx):
        calls.append("source")
        path = ctx.out_dir / "numbers.txt"
        path.write_text(str(ctx.spec.train.epochs))
        return StageResult({"numbers": path}, metrics={"count": 1.0})

    def run_sink(ctx):
        calls.append("sink")
        if fail:
            raise RuntimeError("sink exploded")
        value = int(ctx.input("source", "numbers").read_text()) * 2
        path = ctx.out_dir / "doubled.txt"
        path.write_text(str(value))
        return StageResult({"doubled": path})

    source = Stage("source", "1", params=lambda s: {"epochs": s.train.epochs, "tag": s.description},
                   run=run_source)
    sink = Stage("sink", "1", params=lambda s: {"batch": s.train.batch_size},
                 run=run_sink, upstream=lambda s: ("source",))
    return {"source": source, "sink": sink}


def make_spec(tmp_path: Path, **train):
    return spec_from_dict({"name": "runner-test", "description": str(tmp_path),
                           "tracking": {"outputs": str(tmp_path / "outputs")}, "train": train or {"epochs": 3}})


def test_upstream_runs_first_then_cache_hit(tmp_path, tracker):
    calls: list[str] = []
    runner = Runner(make_stages(calls), tracker, progress=False, echo=False)
    spec = make_spec(tmp_path)
    (first,) = runner.run("sink", spec)
    assert calls == ["source", "sink"], "a missing upstream output must be produced first"
    assert first.outputs["doubled"].read_text() == "6" and not first.cache_hit
    run = tracker.client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags[TAG_STAGE] == "sink" and run.data.tags[TAG_CACHE_HIT] == "false"
    assert run.data.tags[TAG_FINGERPRINT] == first.fingerprint
    assert run.data.params["train.epochs"] == "3", "the resolved spec is logged as flattened params"
    upstream_run = run.data.tags[TAG_UPSTREAM_PREFIX + "source"]
    assert tracker.client.get_run(upstream_run).data.tags["mlflow.parentRunId"] == first.run_id

    (second,) = runner.run("sink", spec)
    assert calls == ["source", "sink"], "an identical second run must not execute anything"
    assert second.cache_hit and second.run_id == first.run_id


def test_force_reruns_only_the_requested_stage(tmp_path, tracker):
    calls: list[str] = []
    runner = Runner(make_stages(calls), tracker, progress=False, echo=False)
    spec = make_spec(tmp_path)
    runner.run("sink", spec)
    runner.run("sink", spec, force=True)
    assert calls == ["source", "sink", "sink"]


def test_changed_parameter_misses_only_downstream(tmp_path, tracker):
    calls: list[str] = []
    runner = Runner(make_stages(calls), tracker, progress=False, echo=False)
    runner.run("sink", make_spec(tmp_path, epochs=3, batch_size=4))
    runner.run("sink", make_spec(tmp_path, epochs=3, batch_size=8))
    assert calls == ["source", "sink", "sink"], "sink's params changed, source's did not"
    runner.run("sink", make_spec(tmp_path, epochs=5, batch_size=8))
    assert calls[-2:] == ["source", "sink"], "an upstream change changes the downstream fingerprint"


def test_deleted_or_modified_output_is_a_miss(tmp_path, tracker):
    calls: list[str] = []
    runner = Runner(make_stages(calls), tracker, progress=False, echo=False)
    spec = make_spec(tmp_path)
    (record,) = runner.run("source", spec)
    record.outputs["numbers"].write_text("12345")  # other size
    runner.run("source", spec)
    assert calls == ["source", "source"]
    record.outputs["numbers"].unlink()
    runner.run("source", spec)
    assert calls == ["source", "source", "source"]


def test_same_size_damaged_output_is_not_a_cache_hit(tmp_path, tracker, capsys):
    """A same-size change (one byte of a checkpoint or feature file) must rerun the stage, and say why."""
    calls: list[str] = []
    runner = Runner(make_stages(calls), tracker, progress=False, echo=True)
    spec = make_spec(tmp_path, epochs=7)
    (record,) = runner.run("source", spec)
    target = record.outputs["numbers"]
    assert target.read_text() == "7"
    target.write_text("8")  # same size, other content
    (again,) = runner.run("source", spec)
    assert calls == ["source", "source"], "a same-size change must not be a cache hit"
    assert not again.cache_hit and again.outputs["numbers"].read_text() == "7", "the rerun restores the output"
    err = capsys.readouterr().err
    assert f"[source] output numbers.txt changed content (same size, different sha256) since run {record.run_id[:8]}: " \
           "rerunning from scratch" in err, err


def test_damaged_upstream_output_reruns_upstream_before_downstream_reads_it(tmp_path, tracker):
    calls: list[str] = []
    runner = Runner(make_stages(calls), tracker, progress=False, echo=False)
    spec = make_spec(tmp_path, epochs=4)
    runner.run("sink", spec)
    source_file = next((tmp_path / "outputs" / "source").glob("*/numbers.txt"))
    source_file.write_text("9")  # damaged, same size
    (second,) = runner.run("sink", make_spec(tmp_path, epochs=4, batch_size=3))  # sink misses, source is checked
    assert calls == ["source", "sink", "source", "sink"], "the damaged upstream output is rebuilt first"
    assert second.outputs["doubled"].read_text() == "8", "downstream must read the rebuilt, not the damaged, file"


def test_failed_stage_leaves_failed_run_with_error(tmp_path, tracker):
    calls: list[str] = []
    runner = Runner(make_stages(calls, fail=True), tracker, progress=False, echo=False)
    spec = make_spec(tmp_path)
    with pytest.raises(RuntimeError, match="sink exploded"):
        runner.run("sink", spec)
    failed = tracker.search(f"tags.`{TAG_STAGE}` = 'sink' and attributes.status = 'FAILED'")
    mine = [r for r in failed if r.data.params.get("description") == str(tmp_path)]
    assert len(mine) == 1, "exactly one FAILED sink run expected"
    assert "sink exploded" in mine[0].data.tags["dualvgr.error"]
    artifacts = [a.path for a in tracker.client.list_artifacts(mine[0].info.run_id)]
    assert "error.txt" in artifacts
    # The failed run is never a cache hit: a fixed stage runs again.
    runner_ok = Runner(make_stages(calls), tracker, progress=False, echo=False)
    (record,) = runner_ok.run("sink", spec)
    assert not record.cache_hit


def test_launched_run_records_cache_hit(tmp_path, tracker):
    """Under `mlflow run`, the run MLflow created is tagged as a cache hit pointing at the source run."""
    calls: list[str] = []
    runner = Runner(make_stages(calls), tracker, progress=False, echo=False)
    spec = make_spec(tmp_path)
    (first,) = runner.run("source", spec)
    launched = tracker.start_run("launched", "mlflow-run", {})
    runner.run("source", spec, launched_run_id=launched.run_id)
    tags = tracker.client.get_run(launched.run_id).data.tags
    assert tags[TAG_CACHE_HIT] == "true" and tags["dualvgr.cached_run_id"] == first.run_id


def test_seed_variants_share_upstream(tmp_path, tracker):
    calls: list[str] = []
    stages = make_stages(calls)
    from dataclasses import replace

    from dualvgr.core.spec import replace_in

    stages["sink"] = replace(
        stages["sink"],
        params=lambda s: {"seed": s.train.seed},
        variants=lambda s: [replace_in(s, **{"train.seed": seed, "train.seeds": []}) for seed in s.run_seeds],
    )
    runner = Runner(stages, tracker, progress=False, echo=False)
    spec = make_spec(tmp_path, seeds=[1, 2, 3])
    with pipeline_run(runner, spec) as parent:
        records = runner.run("sink", spec, parent_run_id=parent.run_id)
    assert calls == ["source", "sink", "sink", "sink"], "three seeds, one shared upstream run"
    assert len({r.fingerprint for r in records}) == 3
    assert tracker.client.get_run(parent.run_id).info.status == "FINISHED"


def test_unknown_stage(tmp_path, tracker):
    runner = Runner(make_stages([]), tracker, progress=False, echo=False)
    with pytest.raises(StageError, match="unknown stage 'trian'"):
        runner.run("trian", make_spec(tmp_path))


def test_outputs_recorded_with_size(tmp_path, tracker):
    runner = Runner(make_stages([]), tracker, progress=False, echo=False)
    (record,) = runner.run("source", make_spec(tmp_path))
    outputs = json.loads(tracker.client.get_run(record.run_id).data.tags["dualvgr.outputs"])
    assert outputs["numbers"]["size"] == 1 and outputs["numbers"]["kind"] == "file"


def test_run_name_comes_from_the_stage_label(tmp_path, tracker):
    """The runner knows no stage names: a stage declares what its run names need (train: the seed)."""
    from dataclasses import replace

    from dualvgr.core.stage import seed_label

    stages = make_stages([])
    stages["sink"] = replace(stages["sink"], run_label=seed_label)
    runner = Runner(stages, tracker, progress=False, echo=False)
    (record,) = runner.run("sink", make_spec(tmp_path, seed=42))
    run = tracker.client.get_run(record.run_id)
    assert run.info.run_name == "sink-seed42", run.info.run_name
    upstream = tracker.client.get_run(run.data.tags[TAG_UPSTREAM_PREFIX + "source"])
    assert upstream.info.run_name == "source", "a stage without a label is named after itself"
