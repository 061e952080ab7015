"""--force (and a rebuild of outputs that changed) loses nothing: the new output is built beside the old one and
swapped in when complete; an interrupted rebuild leaves the old output and its cache hit intact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from dualvgr.core import fingerprint as fingerprint_module
from dualvgr.core import staging
from dualvgr.core.errors import StageError
from dualvgr.core.runner import Runner
from dualvgr.core.runstate import ProcessIdentity
from dualvgr.core.stage import Stage, StageResult, output_change, stat_cache
from dualvgr.core.tracking import TAG_OUTPUTS
from tests.core.test_run_states import command, environment, gone_pid, start_sleeping, write_spec
from tests.core.test_runner import make_spec


def writer(content: dict, seen: list[Path]) -> dict[str, Stage]:
    """One stage writing ``content["text"]`` (raising when it is "boom"); ``seen`` collects its build folders."""

    def run(ctx):
        seen.append(ctx.out_dir)
        path = ctx.out_dir / "value.txt"
        path.write_text(content["text"])
        if content["text"] == "boom":
            raise RuntimeError("interrupted mid-way")
        return StageResult({"value": path, "folder": ctx.out_dir})

    return {"writer": Stage("writer", "1", params=lambda spec: {"epochs": spec.train.epochs}, run=run)}


def staging_leftovers(spec) -> list[str]:
    return sorted(p.name for p in (Path(spec.tracking.outputs) / "writer").iterdir() if ".staging-" in p.name
                  or ".replaced-" in p.name)


def test_failed_forced_rerun_keeps_the_old_output_and_its_cache_hit(tmp_path, tracker):
    content, seen = {"text": "old"}, []
    runner = Runner(writer(content, seen), tracker, progress=False, echo=False)
    spec = make_spec(tmp_path, epochs=11)
    (first,) = runner.run("writer", spec)
    content["text"] = "boom"
    with pytest.raises(RuntimeError, match="interrupted mid-way"):
        runner.run("writer", spec, force=True)
    assert seen[-1] != first.outputs["folder"] and ".staging-" in seen[-1].name, "a forced run builds beside"
    assert first.outputs["value"].read_text() == "old", "the old output is untouched"
    assert staging_leftovers(spec) == [], "the runner discards its own incomplete build"
    hit = runner.cached("writer", spec)
    assert hit is not None and hit.run_id == first.run_id, "the old run is still the cache hit"


def test_forced_rerun_swaps_in_and_records_final_paths(tmp_path, tracker, monkeypatch):
    monkeypatch.setattr(fingerprint_module, "RACY_SECONDS", 0.0)  # files hashed right after writing count as settled
    content, seen = {"text": "old"}, []
    runner = Runner(writer(content, seen), tracker, progress=False, echo=False)
    spec = make_spec(tmp_path, epochs=12)
    (first,) = runner.run("writer", spec)
    content["text"] = "new!"
    (second,) = runner.run("writer", spec, force=True)
    assert second.outputs["value"] == first.outputs["value"] and second.outputs["value"].read_text() == "new!"
    recorded = json.loads(tracker.client.get_run(second.run_id).data.tags[TAG_OUTPUTS])
    assert recorded["value"]["path"] == str(first.outputs["value"]), "MLflow carries the final path"
    assert recorded["folder"]["path"] == str(first.outputs["folder"])
    assert staging_leftovers(spec) == []
    cache = stat_cache(spec)
    assert output_change(recorded["value"], cache) is None and output_change(recorded["folder"], cache) is None
    assert cache.hashed == [], "the digests made in the staging folder moved with it: nothing is read again"


def test_rebuild_of_a_changed_output_is_built_beside_too(tmp_path, tracker):
    content, seen = {"text": "seven"}, []
    runner = Runner(writer(content, seen), tracker, progress=False, echo=False)
    spec = make_spec(tmp_path, epochs=13)
    (first,) = runner.run("writer", spec)
    first.outputs["value"].write_text("SEVEN")  # same size, other content
    (again,) = runner.run("writer", spec)
    assert not again.cache_hit and ".staging-" in seen[-1].name, seen
    assert again.outputs["value"].read_text() == "seven"


def test_stage_writing_its_build_folder_path_fails_with_the_file_named(tmp_path, tracker):
    def run(ctx):
        path = ctx.out_dir / "index.json"
        path.write_text(json.dumps({"features": str(ctx.out_dir / "features.h5")}))
        return StageResult({"index": path})

    stages = {"indexer": Stage("indexer", "1", params=lambda spec: {}, run=run)}
    runner = Runner(stages, tracker, progress=False, echo=False)
    spec = make_spec(tmp_path, epochs=14)
    runner.run("indexer", spec)  # built in place: its path is final, nothing to object to
    with pytest.raises(StageError) as raised:
        runner.run("indexer", spec, force=True)
    out_dir = next(p for p in (tmp_path / "outputs" / "indexer").iterdir())
    message = str(raised.value)
    assert message.startswith("stage indexer wrote the path of its build folder ") and ".staging-" in message
    assert message.endswith(f" into index.json; that folder is renamed to {out_dir} when the run completes, so the "
                            f"path would point nowhere: write paths relative to the stage's out_dir instead"), message


def test_leftovers_of_gone_processes_are_cleared_and_others_kept(tmp_path):
    out_dir = tmp_path / "stage" / "0123456789abcdef"
    here = ProcessIdentity.current()
    dead = ProcessIdentity(here.host, gone_pid(), here.namespace)
    replaced = staging.sibling(out_dir, "replaced", dead)
    replaced.mkdir(parents=True)
    (replaced / "best.pt").write_text("the old output")
    abandoned = staging.sibling(out_dir, "staging", dead)
    abandoned.mkdir()
    live = staging.sibling(out_dir, "staging", ProcessIdentity(here.host, 1, here.namespace))  # pid 1 is alive
    live.mkdir()
    elsewhere = staging.sibling(out_dir, "staging", ProcessIdentity("another-host", dead.pid, here.namespace))
    elsewhere.mkdir()
    said: list[str] = []
    staging.clear_leftovers(out_dir, said.append)
    build = staging.prepare(out_dir, from_scratch=False)
    assert build.work_dir == out_dir.resolve() and not build.staged, "a run that is not from scratch works in place"
    assert (out_dir / "best.pt").read_text() == "the old output", "a swap cut short is undone"
    assert not abandoned.exists(), "an interrupted rebuild is never resumed from"
    assert live.exists() and elsewhere.exists(), "a live process's or another host's build is not ours to delete"
    assert said == [
        f"[stage] put back {out_dir.name}: process {dead.pid} died while swapping a rebuild in",
        f"[stage] removed {abandoned.name}, an interrupted rebuild (never resumed from) left by process {dead.pid}, "
        f"which is gone"], said


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_killed_forced_rerun_leaves_the_old_output_a_cache_hit(tmp_path, signum):
    """A real `--force` process killed while its stage runs: the next plain run is a cache hit of the old run."""
    spec = write_spec(tmp_path, epochs=5)
    env = environment(tmp_path, STAGE_CONTENT="old output")
    first = subprocess.run(command("source", "-e", str(spec)), cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=180)
    assert first.returncode == 0, first.stderr[-3000:]
    (old_file,) = (tmp_path / "outputs" / "source").glob("*/numbers.txt")

    victim = start_sleeping(tmp_path, "source", "source", "-e", str(spec), "--force", STAGE_CONTENT="new output!")
    building = [p for p in old_file.parent.parent.iterdir() if ".staging-" in p.name]
    assert len(building) == 1 and (building[0] / "numbers.txt").read_text() == "new output!", building
    assert old_file.read_text() == "old output", "while the rebuild runs, the old output is untouched"
    victim.send_signal(signum)
    victim.communicate(timeout=120)

    again = subprocess.run(command("source", "-e", str(spec)), cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=180)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "[source] cache hit: run " in again.stderr, again.stderr[-3000:]
    assert old_file.read_text() == "old output"
    assert not building[0].exists(), "the interrupted build is gone (discarded, or cleared by the next run)"
    if signum == signal.SIGKILL:
        assert f"removed {building[0].name}, an interrupted rebuild (never resumed from) left by process " \
               f"{victim.pid}, which is gone" in again.stderr, again.stderr[-3000:]
    assert os.listdir(old_file.parent.parent) == [old_file.parent.name]


def test_swap_cut_short_is_undone_before_the_cache_lookup(tmp_path, tracker):
    """Killed between the two renames of a swap: the old output is put back, and is still the cache hit."""
    content, seen = {"text": "kept"}, []
    runner = Runner(writer(content, seen), tracker, progress=False, echo=False)
    spec = make_spec(tmp_path, epochs=15)
    (first,) = runner.run("writer", spec)
    here = ProcessIdentity.current()
    folder = first.outputs["folder"]
    folder.rename(staging.sibling(folder, "replaced", ProcessIdentity(here.host, gone_pid(), here.namespace)))
    (again,) = Runner(writer(content, seen), tracker, progress=False, echo=False).run("writer", spec)
    assert again.cache_hit and again.run_id == first.run_id and len(seen) == 1
    assert first.outputs["value"].read_text() == "kept"
