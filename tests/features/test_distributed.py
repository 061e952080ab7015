"""Extraction across the ranks of a launch: the protocol of features/distributed.py, with ranks as threads.

Each rank is a thread of this process; they share an in-memory c10d store (what torchrun's TCPStore is to
processes) and a queue per follower stands in for the broadcast of jobs. The network is a toy backbone (the
protocol does not depend on it); the real CLI under torchrun, with ResNet-101, is in test_torchrun.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import platform
import queue
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import h5py
import pytest
import torch
import torch.distributed as torch_dist
from torch import nn

from dualvgr.core import ranks as ranks_module
from dualvgr.core.errors import DataError, SpecError
from dualvgr.core.runstate import Interrupted
from dualvgr.core.ranks import FAILED, STOPPED, RankFailed, Ranks, RemoteTraceback, StatusBoard, follow
from dualvgr.features import AppearanceSettings, extract_features, partial_path
from dualvgr.features import distributed
from dualvgr.features.hdf5 import PartialFeatureFile, shard_path
from dualvgr.features.registry import BACKBONES, resolve_weights
from dualvgr.features.stage import APPEARANCE_STAGE
from dualvgr.features.weights import random_weights
from tests.features.test_extract import _assert_same_file

HOST = platform.node()
SPEC_HASH = {"spec_hash": "s"}


@dataclass(frozen=True)
class ThreadRanks(Ranks):
    """A rank that is a thread: jobs travel through queues, the board is a shared in-memory store."""

    store: object = field(default=None, compare=False)
    inboxes: tuple = field(default=(), compare=False)
    # How a follower receives rank 0's job: the same object, or as another machine would see it.
    deliver: Callable = field(default=lambda job: job, compare=False)

    def broadcast(self, value: object = None) -> object:
        if self.is_main:
            for inbox in self.inboxes[1:]:
                inbox.put(value)
            return value
        message = self.inboxes[self.rank].get(timeout=120)
        return message if message is None else (message[0], self.deliver(message[1]))

    def board(self, job: str) -> StatusBoard:
        return StatusBoard(lambda: torch_dist.PrefixStore(f"dualvgr/{job}/", self.store), self.rank, self.world_size)


@pytest.fixture(scope="module")
def toy():
    """An 8-wide per-frame backbone, built once (extraction works on a copy, so threads can share it)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        network = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    entry = dataclasses.replace(BACKBONES["resnet101"], name="toy", feature_dim=8,
                                weight_sources={"random": random_weights}, build=lambda weights, settings: network,
                                fingerprint=lambda settings: {"toy": 1})
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(BACKBONES, "toy", entry)
        settings = AppearanceSettings(num_clips=2, frames_per_clip=2, image_size=16, backbone="toy")
        yield SimpleNamespace(settings=settings, weights=resolve_weights("random", "toy", allow_random=True, seed=0))


@pytest.fixture(scope="module")
def single_file(toy, videos, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "appearance.h5"
    extract_features(videos, toy.settings, toy.weights, out, attrs=SPEC_HASH, progress=False)
    return out


class Launch:
    """K thread ranks: followers run the CLI's follower loop; rank 0 runs extract_across_ranks, then releases."""

    def __init__(self, world_size: int, *, deliver=lambda job: job, followers: bool = True):
        inboxes = tuple(queue.Queue() for _ in range(world_size))
        store = torch_dist.HashStore()
        self.ranks = [ThreadRanks(rank, world_size, store, inboxes, deliver) for rank in range(world_size)]
        self.pool = ThreadPoolExecutor(world_size)
        started = self.ranks[1:] if followers else []
        self.followers = [self.pool.submit(follow, ranks, {"appearance": APPEARANCE_STAGE}) for ranks in started]

    def run(self, toy, videos, out_path: Path, *, returned: Callable[[], None] = lambda: None):
        """Rank 0's extraction; ``returned`` is called as it returns or raises, before the followers are awaited."""
        try:
            return distributed.extract_across_ranks(
                self.ranks[0], stage="appearance", videos=videos, out_path=out_path, device="cpu", progress=False,
                request=dict(settings=toy.settings, weights=toy.weights, attrs=SPEC_HASH))
        finally:
            returned()
            self.ranks[0].release()
            for follower in self.followers:
                follower.result(timeout=120)  # a follower never raises for a failed job: rank 0 reports it
            self.pool.shutdown()


def _on_write(monkeypatch, action: Callable[[int, int], None]) -> None:
    """Call ``action(rank, rows written so far by that rank)`` before each write of a shard's rows."""
    original, written = PartialFeatureFile.write, {}

    def write(self, rows, features):
        rank = int(self.out_path.name.split(".shard")[1].split("of")[0])
        action(rank, written.get(rank, 0))
        original(self, rows, features)
        written[rank] = written.get(rank, 0) + len(rows)

    monkeypatch.setattr(PartialFeatureFile, "write", write)


def _posted(monkeypatch, condition: Callable[[int, str], bool]) -> threading.Event:
    """An event set once a rank posts a status for which ``condition(rank, state)`` holds."""
    event, original = threading.Event(), StatusBoard.post

    def post(self, phase, state, message="", value=None):
        original(self, phase, state, message, value)
        if condition(self.rank, state):
            event.set()

    monkeypatch.setattr(StatusBoard, "post", post)
    return event


def _done_rows(out_path: Path, rank: int, world_size: int) -> int:
    with h5py.File(partial_path(shard_path(out_path, rank, world_size)), "r") as handle:
        return int(handle["_done"][:].sum())


def _leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name != "appearance.h5")


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_extract_their_shards_and_rank_0_merges_the_single_process_file(
    toy, videos, single_file, tmp_path, world_size
):
    out = tmp_path / "appearance.h5"
    results = Launch(world_size).run(toy, videos, out)
    _assert_same_file(out, single_file)
    assert [result.num_extracted for result in results] == [len(videos) * (r + 1) // world_size
                                                            - len(videos) * r // world_size for r in range(world_size)]
    assert _leftovers(tmp_path) == [], "shards, partial files and the marker are gone once merged"


def test_error_on_a_follower_stops_rank_0_between_groups_and_the_relaunch_resumes_both_shards(
    toy, videos, single_file, tmp_path, monkeypatch
):
    """Rank 1 fails after its first video; rank 0, still at its first, stops after it instead of finishing."""
    out = tmp_path / "appearance.h5"

    def act(rank, written):
        if rank == 1 and written == 1:
            raise DataError("injected failure after one video")
        if rank == 0 and written == 0:
            assert failure_posted.wait(60), "rank 1 never posted its failure"

    with monkeypatch.context() as patch:
        failure_posted = _posted(patch, lambda rank, state: state == FAILED)
        _on_write(patch, act)
        with pytest.raises(RankFailed) as raised:
            Launch(2).run(toy, videos, out)
    assert str(raised.value) == f"rank 1 of 2 (host {HOST}) failed: injected failure after one video"
    assert isinstance(raised.value.__cause__, RemoteTraceback), "the run's error.txt shows rank 1's traceback"
    assert "DataError: injected failure after one video" in str(raised.value.__cause__)
    assert (_done_rows(out, 0, 2), _done_rows(out, 1, 2)) == (1, 1), "each shard keeps what it wrote, no more"
    assert not out.exists()

    results = Launch(2).run(toy, videos, out)
    assert [result.num_extracted for result in results] == [1, 2], "each shard resumed where it stopped"
    _assert_same_file(out, single_file)
    assert _leftovers(tmp_path) == []


def test_a_relaunch_with_another_number_of_ranks_starts_over_and_leaves_nothing_behind(
    toy, videos, single_file, tmp_path, monkeypatch
):
    out = tmp_path / "appearance.h5"
    with monkeypatch.context() as patch:
        _on_write(patch, lambda rank, written: _fail_if(rank == 1, "injected failure"))
        with pytest.raises(RankFailed, match="injected failure"):
            Launch(2).run(toy, videos, out)
    assert "appearance.shard1of2.partial.h5" in _leftovers(tmp_path), "rank 1's shard stays for a resume"
    (tmp_path / ".appearance.ranks-0123").write_text("0123")  # the marker of a rank 0 that was killed
    results = Launch(3).run(toy, videos, out)
    assert sum(result.num_extracted for result in results) == len(videos), "shards of 2 are no shards of 3"
    _assert_same_file(out, single_file)
    assert _leftovers(tmp_path) == [], "the shards of the launch with 2 ranks and its marker are gone"


def _fail_if(condition: bool, message: str) -> None:
    if condition:
        raise DataError(message)


def test_a_finished_shard_is_taken_as_it_is_by_the_next_launch(toy, videos, single_file, tmp_path, monkeypatch):
    out = tmp_path / "appearance.h5"

    def act(rank, written):
        if rank == 1 and written == 2:
            deadline = time.monotonic() + 60
            while not shard_path(out, 0, 2).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            raise DataError("injected failure at the last video")

    with monkeypatch.context() as patch:
        _on_write(patch, act)
        with pytest.raises(RankFailed, match="injected failure at the last video"):
            Launch(2).run(toy, videos, out)
    assert shard_path(out, 0, 2).exists(), "rank 0 had finished its shard"
    results = Launch(2).run(toy, videos, out)
    assert [result.num_extracted for result in results] == [0, 1], "shard 0 is not extracted again"
    _assert_same_file(out, single_file)


def test_rank_0_failure_stops_the_followers(toy, videos, tmp_path, monkeypatch):
    out = tmp_path / "appearance.h5"

    def act(rank, written):
        if rank == 0:
            raise DataError("injected failure on rank 0")
        if written == 0:
            assert rank0_failed.wait(60), "rank 0 never posted its failure"

    monkeypatch.setattr(distributed, "STOP_SECONDS", 60.0)
    with monkeypatch.context() as patch:
        rank0_failed = _posted(patch, lambda rank, state: rank == 0 and state == FAILED)
        _on_write(patch, act)
        started = time.monotonic()
        with pytest.raises(DataError, match="^injected failure on rank 0$"):
            Launch(2).run(toy, videos, out)
    assert time.monotonic() - started < 60, "rank 0 ended once rank 1 had stopped, not at STOP_SECONDS"
    assert _done_rows(out, 1, 2) == 1, "rank 1 stopped after the group it was writing"


def test_interrupted_rank_0_ends_at_once(toy, videos, tmp_path, monkeypatch):
    """torchrun sends SIGTERM to every rank when one dies and SIGKILL 30 s later: rank 0 must not wait for the
    followers (here one never answers again) before its run ends KILLED."""
    rank1_wrote = threading.Event()
    stop = threading.Event()

    def act(rank, written):
        if rank == 1 and written == 1:
            rank1_wrote.set()
            stop.wait(60)  # gone, as far as rank 0 can tell
        if rank == 0:
            assert rank1_wrote.wait(60)
            raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(distributed, "STOP_SECONDS", 60.0)
    _on_write(monkeypatch, act)
    started, waited = time.monotonic(), []

    def returned():
        waited.append(time.monotonic() - started)
        stop.set()

    with pytest.raises(Interrupted):
        Launch(2).run(toy, videos, tmp_path / "appearance.h5", returned=returned)
    assert waited[0] < 30, f"rank 0 waited {waited[0]:.0f} s for a follower after it was interrupted"


def test_output_folder_not_shared_fails_before_any_extraction(toy, videos, tmp_path, monkeypatch):
    """A follower on a machine where the output path is another (empty) folder: an error, not a bad merge."""
    out = tmp_path / "shared" / "appearance.h5"
    out.parent.mkdir()
    elsewhere = tmp_path / "local"
    elsewhere.mkdir()
    monkeypatch.setattr(distributed, "SHARED_GRACE_SECONDS", 1.0)
    monkeypatch.setattr(distributed.uuid, "uuid4", lambda: SimpleNamespace(hex="job1"))
    moved = lambda job: dataclasses.replace(job, out_path=elsewhere / job.out_path.name)  # noqa: E731
    with pytest.raises(RankFailed) as raised:
        Launch(2, deliver=moved).run(toy, videos, out)
    assert str(raised.value) == (
        f"rank 1 of 2 (host {HOST}) failed: this machine ({HOST}) does not see the file .appearance.ranks-job1 that "
        f"rank 0 wrote into {elsewhere} 1 s ago: the output folder is not shared, and shards written here could "
        f"not be merged; extraction over several machines needs tracking.outputs on a filesystem that every machine "
        f"mounts at the same path (e.g. NFS), or run it on one machine")
    assert sorted(path.name for path in out.parent.iterdir()) == [], "rank 0 extracted nothing; the marker is gone"
    assert list(elsewhere.iterdir()) == []


def test_a_follower_that_never_takes_the_job_is_an_error_not_a_hang(toy, videos, tmp_path, monkeypatch):
    monkeypatch.setattr(distributed, "READY_SECONDS", 1.0)
    monkeypatch.setattr(distributed, "STOP_SECONDS", 0.5)
    with pytest.raises(RankFailed) as raised:
        Launch(2, followers=False).run(toy, videos, tmp_path / "appearance.h5")
    assert str(raised.value) == ("rank 1 of 2 did not report back within 1 s (taking the extraction job); is it "
                                 "still running? Its own output says why")


def test_a_follower_that_dies_midway_is_noticed_by_its_silence(toy, videos, tmp_path, monkeypatch):
    """A follower whose heartbeat stops (killed, its machine lost) and that never posts its end."""
    original_heartbeat = StatusBoard.heartbeat
    rank0_gave_up = _posted(monkeypatch, lambda rank, state: rank == 0 and state == STOPPED)

    def heartbeat(self, every=ranks_module.BEAT_SECONDS):
        return original_heartbeat(self, every) if self.rank == 0 else contextlib.nullcontext()

    def act(rank, written):
        if rank == 1:
            assert rank0_gave_up.wait(60), "rank 0 never noticed the silent rank"  # "dead" until then

    monkeypatch.setattr(distributed, "STALE_SECONDS", 1.5)
    monkeypatch.setattr(distributed, "STOP_SECONDS", 0.5)
    monkeypatch.setattr(StatusBoard, "heartbeat", heartbeat)
    _on_write(monkeypatch, act)
    with pytest.raises(RankFailed) as raised:
        Launch(2).run(toy, videos, tmp_path / "appearance.h5")
    assert str(raised.value) == (
        "rank 1 of 2 stopped answering during the extraction of its shard: no sign of life for 1.5 s (killed, out "
        "of memory, or its machine unreachable); its output says more")


def test_num_shards_under_torchrun_is_refused():
    with pytest.raises(SpecError) as raised:
        distributed.check_shards_per_rank(4, Ranks(0, 2))
    assert str(raised.value) == (
        "features.num_shards is 4, but this extraction runs under torchrun, whose 2 ranks are its shards: leave "
        "features.num_shards at 1 (torchrun --nproc-per-node sets the processes per machine), or run without "
        "torchrun to shard over 4 processes of this machine")
    distributed.check_shards_per_rank(1, Ranks(0, 2))


def test_who_extracts_which_shard_is_not_part_of_the_features_code_version():
    """Changing the protocol (a timeout, a message) must not re-extract every feature file: the merged file is the
    single-process one, whose contents extract.py and hdf5.py decide."""
    import dualvgr.features.stage as stage_module
    from dualvgr.core.code_version import import_closure

    closure = import_closure(stage_module.__name__, Path(stage_module.__file__))
    assert {"dualvgr.features.extract", "dualvgr.features.hdf5"} <= set(closure)
    assert not {"dualvgr.core.ranks", "dualvgr.features.distributed"} & set(closure), sorted(closure)
