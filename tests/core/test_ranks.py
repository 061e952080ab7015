"""The ranks of a torchrun launch: the follower loop dispatches on the stage that sent a job; the status board."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field

import pytest
import torch.distributed as torch_dist

from dualvgr.core.errors import StageError
from dualvgr.core.ranks import DONE, FAILED, READY, STOPPED, RankFailed, Ranks, RemoteTraceback, StatusBoard, follow
from dualvgr.core.stage import Stage, StageResult


@dataclass(frozen=True)
class Scripted(Ranks):
    """A follower that receives ``messages`` from rank 0, one per broadcast."""

    messages: list = field(default_factory=list, compare=False)

    def broadcast(self, value: object = None) -> object:
        return self.messages.pop(0)


def _stage(name: str, follow=None) -> Stage:
    return Stage(name, "1", params=lambda spec: {}, run=lambda ctx: StageResult({}), follow=follow)


def test_followers_run_each_job_with_the_follow_of_the_stage_that_sent_it():
    done = []
    stages = {"a": _stage("a", lambda job, ranks: done.append(("a", job, ranks.rank))),
              "b": _stage("b", lambda job, ranks: done.append(("b", job, ranks.rank)))}
    follow(Scripted(1, 2, [("a", 1), ("b", 2), ("a", 3), None, ("a", "never")]), stages)
    assert done == [("a", 1, 1), ("b", 2, 1), ("a", 3, 1)], "in order, until the end rank 0 sends"


def test_a_job_of_a_stage_without_follow_is_an_error_naming_it():
    with pytest.raises(StageError) as raised:
        follow(Scripted(1, 2, [("data", {})]), {"data": _stage("data")})
    assert str(raised.value) == ("rank 0 sent a job of stage 'data', which declares no follow function for ranks > 0 "
                                 "(rank 1 runs a different version of the code?)")


def test_release_says_when_the_followers_are_gone_without_hiding_the_error(capsys):
    class Gone(Ranks):
        def broadcast(self, value=None):
            raise RuntimeError("Connection closed by peer")

    Gone(0, 2).release()
    assert capsys.readouterr().err == "note: could not tell the other ranks to end (Connection closed by peer)\n"
    Ranks.single().release()  # a single process has no one to tell


def _boards(world_size: int) -> list[StatusBoard]:
    store = torch_dist.HashStore()
    return [StatusBoard(lambda: torch_dist.PrefixStore("job/", store), rank, world_size) for rank in range(world_size)]


def test_the_board_returns_every_status_once_all_are_posted():
    boards = _boards(3)
    for board in boards:
        board.post("end", DONE, value={"rank": board.rank})
    ends = boards[0].wait("end", timeout=5)
    assert [ends[rank]["value"] for rank in range(3)] == [{"rank": 0}, {"rank": 1}, {"rank": 2}]
    assert boards[1].read("ready", 0) is None
    boards[2].raise_if_failed()  # done is no reason to stop


def test_a_failure_is_reported_before_the_ranks_it_stopped_with_its_traceback():
    boards = _boards(3)
    boards[0].post("end", DONE)
    boards[2].post("end", STOPPED, "stopped by rank 1")
    boards[1].post("end", FAILED, "DataError: bad video", value="Traceback ...\nDataError: bad video\n")
    with pytest.raises(RankFailed) as raised:
        boards[0].wait("end", timeout=5)
    assert str(raised.value) == f"rank 1 of 3 (host {platform.node()}) failed: DataError: bad video"
    assert raised.value.rank == 1 and isinstance(raised.value.__cause__, RemoteTraceback)
    assert str(raised.value.__cause__) == "on rank 1:\nTraceback ...\nDataError: bad video\n"
    with pytest.raises(RankFailed, match="rank 1 of 3 .* failed"):
        boards[2].raise_if_failed()


def test_waits_are_bounded():
    boards = _boards(2)
    boards[0].post("ready", READY)
    with pytest.raises(RankFailed) as raised:
        boards[0].wait("ready", timeout=0.5, what="taking the job")
    assert str(raised.value) == ("rank 1 of 2 did not report back within 0.5 s (taking the job); is it still running? "
                                 "Its own output says why")
    boards[0].settle("ready", timeout=0.2)  # never raises


def test_a_beating_rank_is_waited_for_and_a_silent_one_is_not():
    boards = _boards(2)
    boards[0].post("end", DONE)
    with boards[1].heartbeat(every=0.1):
        with pytest.raises(RankFailed, match="did not report back within 1.6 s"):
            boards[0].wait("end", timeout=1.6, stale_after=0.8, what="its shard")  # alive: only the timeout ends it
    with pytest.raises(RankFailed) as raised:
        boards[0].wait("end", stale_after=0.8, what="its shard")
    assert str(raised.value) == ("rank 1 of 2 stopped answering during its shard: no sign of life for 0.8 s (killed, "
                                 "out of memory, or its machine unreachable); its output says more")
