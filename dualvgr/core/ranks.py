"""The processes of one ``torchrun`` launch: who is rank 0, the jobs it sends the others, and where they meet.

Under torchrun every process runs the same command. Rank 0 runs it as a single process would (the stage cache,
MLflow, the outputs); every other rank runs :func:`follow`: it waits for the jobs rank 0's stages send
(:meth:`Ranks.send`: the stage's name and its job) and hands each to that stage's ``follow`` function
(:attr:`dualvgr.core.stage.Stage.follow`), until rank 0 sends the end (:meth:`Ranks.release`, however its
command ended). So a stage declares what ranks > 0 do: train trains their share of every batch, appearance and
motion extract their shard of the videos; a cache hit on rank 0 sends nothing and every rank just ends.

A stage and its followers report to each other on a :class:`StatusBoard`: keys in the store that torchrun's
rendezvous already runs (the c10d TCPStore at ``MASTER_ADDR:MASTER_PORT``), under a prefix unique to one job.
Posting and reading never block, so a rank learns of another's failure between two pieces of its own work
instead of at the end; a follower's heartbeat tells one that died (kill -9, out of memory, a machine lost) from
one that is slow; every wait has a limit. Nothing here decides what a stage computes (orchestration, left out
of stage code versions).
"""

from __future__ import annotations

import datetime
import os
import pickle
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as torch_dist

from dualvgr.core.errors import StageError

READY, DONE, FAILED, STOPPED = "ready", "done", "failed", "stopped"
# A follower beats every BEAT_SECONDS while it works; one silent for STALE_SECONDS is taken for dead. Generous:
# a busy machine can starve the beating thread for seconds, and torchrun itself ends a launch whose process died.
BEAT_SECONDS, STALE_SECONDS = 5.0, 120.0
POLL_SECONDS = 0.5
STORE_TIMEOUT = datetime.timedelta(seconds=60)  # one store operation (a lost store is an error, not a hang)


class RankFailed(StageError):
    """Another rank of the launch failed (or stopped answering); the message names it and why."""

    def __init__(self, message: str, *, rank: int):
        super().__init__(message)
        self.rank = rank


class RemoteTraceback(Exception):
    """The traceback of an error on another rank, chained to the :class:`RankFailed` that reports it (so the
    run's error.txt shows where it happened)."""


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1

    @classmethod
    def single(cls) -> Ranks:
        return cls()

    @classmethod
    def from_environment(cls) -> Ranks:
        """The process group torchrun describes in WORLD_SIZE / RANK (initialised once), or a single process."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls.single()
        if not torch_dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            # Followers wait for their next job while rank 0 runs stages alone (the data check, the questions).
            torch_dist.init_process_group(backend, timeout=datetime.timedelta(hours=12))
        return cls(torch_dist.get_rank(), torch_dist.get_world_size())

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def broadcast(self, value: object = None) -> object:
        """Rank 0's ``value`` on every rank (any picklable object; the other ranks' ``value`` is ignored)."""
        if not self.active:
            return value
        box = [value]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]

    def send(self, stage: str, job: object) -> None:
        """Rank 0: hand ``job`` to the ``follow`` function of ``stage`` on every other rank."""
        self.broadcast((stage, job))

    def release(self) -> None:
        """Rank 0, when its command ends (done or failed): the followers end too.

        A follower already gone (killed; torchrun then ends the launch) cannot be told: that is said, not raised,
        so that the error which ended the command stays the one reported.
        """
        if not self.active:
            return
        try:
            self.broadcast(None)
        except RuntimeError as error:
            print(f"note: could not tell the other ranks to end ({error})", file=sys.stderr, flush=True)

    def device(self, device: torch.device) -> torch.device:
        """This rank's own GPU (torchrun's LOCAL_RANK) when ``device`` is CUDA, else ``device``."""
        if self.active and device.type == "cuda":
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
        return device

    def board(self, job: str) -> StatusBoard:
        """The status board of one job (``job`` names it uniquely), in the launch's c10d store."""
        return StatusBoard(lambda: _launch_store(job), self.rank, self.world_size)


def follow(ranks: Ranks, stages: Mapping[str, Any]) -> None:
    """Ranks > 0: run every job rank 0 sends with the ``follow`` function of the stage that sent it, until the end."""
    while (message := ranks.broadcast()) is not None:
        name, job = message
        stage = stages.get(name)
        if stage is None or stage.follow is None:
            raise StageError(f"rank 0 sent a job of stage '{name}', which declares no follow function for ranks > 0 "
                             f"(rank {ranks.rank} runs a different version of the code?)")
        stage.follow(job, ranks)


def _launch_store(job: str) -> torch_dist.Store:
    store = torch_dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                                timeout=STORE_TIMEOUT)
    return torch_dist.PrefixStore(f"dualvgr/{job}/", store)


class StatusBoard:
    """Per job and rank: a status per phase (``ready``, ``end``) that any rank reads without blocking, and beats.

    A status is ``{"state", "message", "host", "value"}``: ``ready`` (this rank has the job and can do it),
    ``done`` (with a value, e.g. a result), ``failed`` (the message says why, ``value`` the traceback) or
    ``stopped`` (because another rank failed).
    """

    def __init__(self, connect: Callable[[], torch_dist.Store], rank: int, world_size: int):
        self.connect, self.rank, self.world_size = connect, rank, world_size
        self.store = connect()

    def post(self, phase: str, state: str, message: str = "", value: object = None) -> None:
        status = {"state": state, "message": message, "host": platform.node(), "value": value}
        self.store.set(f"{phase}/{self.rank}", pickle.dumps(status))

    def read(self, phase: str, rank: int) -> dict | None:
        key = f"{phase}/{rank}"
        return pickle.loads(self.store.get(key)) if self.store.check([key]) else None

    def raise_if_failed(self) -> None:
        """Raise :class:`RankFailed` when another rank ended its work failed or stopped: then this rank stops too."""
        for rank in range(self.world_size):
            status = self.read("end", rank) if rank != self.rank else None
            if status is not None and status["state"] in (FAILED, STOPPED):
                raise _failure(rank, self.world_size, status)

    @contextmanager
    def heartbeat(self, every: float = BEAT_SECONDS) -> Iterator[None]:
        """Beat every ``every`` seconds from a thread (with its own store connection) while the block runs."""
        stop = threading.Event()

        def beat() -> None:
            try:
                store = self.connect()
                while True:
                    store.add(f"beat/{self.rank}", 1)
                    if stop.wait(every):
                        return
            except RuntimeError:  # torch's store and network errors
                return  # the store is gone (the launch is ending): silence is the right signal

        thread = threading.Thread(target=beat, name=f"heartbeat-rank{self.rank}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=every + STORE_TIMEOUT.total_seconds())

    def wait(self, phase: str, *, timeout: float | None = None, stale_after: float | None = None,
             what: str = "its work") -> dict[int, dict]:
        """Every rank's ``phase`` status, once all have posted one; raise as soon as one failed.

        ``timeout``: seconds for all of them to post. ``stale_after``: a rank that has not posted and not beaten
        for that long is taken for dead. Either way the error names the rank, its host when known, and the wait.
        """
        started = time.monotonic()
        beats = {rank: (-1, started) for rank in range(self.world_size)}
        while True:
            posted = {rank: self.read(phase, rank) for rank in range(self.world_size)}
            for rank, status in posted.items():
                if status is not None and status["state"] == FAILED:  # the cause, before any rank it stopped
                    raise _failure(rank, self.world_size, status)
            missing = [rank for rank, status in posted.items() if status is None]
            if not missing:
                stopped = [rank for rank, status in posted.items() if status["state"] == STOPPED]
                if stopped:
                    raise _failure(stopped[0], self.world_size, posted[stopped[0]])
                return posted
            now = time.monotonic()
            if timeout is not None and now - started > timeout:
                raise RankFailed(f"rank {missing[0]} of {self.world_size} did not report back within {timeout:g} s "
                                 f"({what}); is it still running? Its own output says why", rank=missing[0])
            if stale_after is not None:
                for rank in missing:
                    count = self.store.add(f"beat/{rank}", 0)
                    if count != beats[rank][0]:
                        beats[rank] = (count, now)
                    elif now - beats[rank][1] > stale_after:
                        raise RankFailed(f"rank {rank} of {self.world_size} stopped answering during {what}: no sign "
                                         f"of life for {stale_after:g} s (killed, out of memory, or its machine "
                                         f"unreachable); its output says more", rank=rank)
            time.sleep(POLL_SECONDS)

    def settle(self, phase: str, *, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for every rank to post ``phase``, whatever they post (never raises)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.read(phase, rank) is not None for rank in range(self.world_size)):
                return
            time.sleep(POLL_SECONDS)


def describe(rank: int, world_size: int, status: dict) -> str:
    """One line for a rank's failed or stopped status: who, where, why."""
    verb = "failed" if status["state"] == FAILED else "stopped"
    return f"rank {rank} of {world_size} (host {status['host']}) {verb}: {status['message']}"


def _failure(rank: int, world_size: int, status: dict) -> RankFailed:
    error = RankFailed(describe(rank, world_size, status), rank=rank)
    if status["state"] == FAILED and isinstance(status["value"], str):
        error.__cause__ = RemoteTraceback(f"on rank {rank}:\n{status['value']}")
    return error
