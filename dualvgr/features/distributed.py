"""Feature extraction across the ranks of a ``torchrun`` launch: several GPUs, or several machines.

Rank r of K extracts shard r of K (the cut of ``features.num_shards``: contiguous whole groups of the sorted
videos) on its own GPU (LOCAL_RANK) or the CPU, into the stage's output folder, with the same
:func:`~dualvgr.features.extract.extract_features` call as one process; when every shard is complete, rank 0
merges them (:func:`~dualvgr.features.hdf5.merge_shards`) into the file a single process writes, bit for bit,
and deletes them. Only rank 0 runs the stage: the cache, the one MLflow run, the output folder (a staging
folder when rebuilt from scratch). The others learn everything from the job it sends.

The protocol, on the job's status board (:mod:`dualvgr.core.ranks`):

1. rank 0 writes a marker file named after the job into the output folder and sends the :class:`ShardJob`
   (videos, output path, device type, extraction settings) to every rank's ``follow_extraction``;
2. each follower looks for the marker (for up to :data:`SHARED_GRACE_SECONDS`: a network filesystem may show
   another machine's new file late) and posts ``ready``, or why not: an output folder it does not share with
   rank 0 fails the run before any work, with the fix, instead of a merge of shards that are missing;
3. every rank extracts its shard; between two groups of videos it reads the board and stops when another rank
   failed (its rows are kept); followers beat while they work;
4. each posts ``end``: done with its result, failed with the error (and traceback), or stopped;
5. rank 0 waits for every end (a follower silent for ``STALE_SECONDS`` is taken for dead) and merges, or raises
   the first failure, one line naming the rank, its host and the error, which leaves the run FAILED. Whenever it
   fails it posts so and gives the followers :data:`STOP_SECONDS` to stop writing before its run ends; not when
   it is interrupted (Ctrl-C, or torchrun ending the launch because a rank died): every rank gets the signal
   then, and torchrun kills what has not ended 30 s after it.

A rank that dies leaves its shard's ``.partial.h5``, and a rank that had finished leaves its shard file: the
next launch with the same number of ranks resumes every shard where it stopped (as one process resumes).
"""

from __future__ import annotations

import glob
import platform
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

from dualvgr.core.device import resolve_device
from dualvgr.core.errors import DataError, HarnessError, SpecError
from dualvgr.core.ranks import DONE, FAILED, READY, STALE_SECONDS, STOPPED, RankFailed, Ranks, StatusBoard
from dualvgr.features.extract import ExtractionResult, extract_features
from dualvgr.features.hdf5 import merge_shards, shard_path

READY_SECONDS = 300.0  # for every follower to take the job and find the output folder
SHARED_GRACE_SECONDS = 30.0  # NFS caches directory entries (acdirmax 60 s at most, 30 s by default)
STOP_SECONDS = 60.0  # for the followers to stop at their next group once a rank failed


@dataclass(frozen=True)
class ShardJob:
    """What rank 0 sends every rank: enough to extract its shard without the spec, the cache or MLflow."""

    token: str  # names the job's keys on the board and its marker file
    videos: list[tuple[int, str]]
    out_path: Path  # the merged file; the shards and the marker are written beside it
    device: str  # a device type (cpu, cuda): each rank takes its own GPU
    request: dict  # the extract_features keywords every shard shares (settings, weights, batch size, ...)
    progress: bool = True

    @property
    def marker(self) -> Path:
        return self.out_path.with_name(f".{self.out_path.stem}.ranks-{self.token}")


def check_shards_per_rank(num_shards: int, ranks: Ranks) -> None:
    if num_shards > 1:
        raise SpecError(
            f"features.num_shards is {num_shards}, but this extraction runs under torchrun, whose {ranks.world_size} "
            f"ranks are its shards: leave features.num_shards at 1 (torchrun --nproc-per-node sets the processes per "
            f"machine), or run without torchrun to shard over {num_shards} processes of this machine")


def extract_across_ranks(
    ranks: Ranks, *, stage: str, videos, out_path: Path, device: str, request: dict, progress: bool = True
) -> list[ExtractionResult]:
    """Rank 0: every rank extracts its shard of ``videos``; the shards are merged into ``out_path``.

    Returns the ranks' results in rank order. ``stage`` names the stage whose ``follow`` the other ranks run.
    """
    job = ShardJob(uuid.uuid4().hex, [(int(i), str(path)) for i, path in videos], Path(out_path).absolute(),
                   resolve_device(device).type, request, progress)
    board = ranks.board(job.token)
    job.marker.write_text(job.token, encoding="utf-8")
    try:
        ranks.send(stage, job)
        results = _lead(job, ranks, board)
    finally:
        job.marker.unlink(missing_ok=True)
    merge_shards([shard_path(job.out_path, rank, ranks.world_size) for rank in range(ranks.world_size)], job.out_path)
    # These shards, those of an earlier launch with another number of ranks and the marker of a killed one can
    # serve no later run.
    stem = glob.escape(job.out_path.stem)
    for leftover in [*job.out_path.parent.glob(f"{stem}.shard*of*.h5"), *job.out_path.parent.glob(f".{stem}.ranks-*")]:
        leftover.unlink()
    return results


def follow_extraction(job: ShardJob, ranks: Ranks) -> None:
    """Ranks > 0: extract this rank's shard of ``job``, reporting on the job's board; never raises for a failure
    of the job (rank 0 reports it), only for an interruption."""
    board = ranks.board(job.token)
    try:
        check_shared_folder(job)
    except DataError as error:
        for phase in ("ready", "end"):
            board.post(phase, FAILED, str(error))
        return
    board.post("ready", READY)
    with board.heartbeat():
        try:
            result = _extract(job, ranks, board)
        except BaseException as error:
            board.post("end", *_status(error))
            if isinstance(error, KeyboardInterrupt):
                raise
            return
    board.post("end", DONE, value=result)


def check_shared_folder(job: ShardJob, grace: float | None = None) -> None:
    """Raise when this machine does not see rank 0's marker in the output folder (a folder it does not share)."""
    grace = SHARED_GRACE_SECONDS if grace is None else grace
    deadline = time.monotonic() + grace
    while True:
        try:
            if job.marker.read_text(encoding="utf-8") == job.token:
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise DataError(
                f"this machine ({platform.node()}) does not see the file {job.marker.name} that rank 0 wrote into "
                f"{job.out_path.parent} {grace:g} s ago: the output folder is not shared, and shards written here "
                f"could not be merged; extraction over several machines needs tracking.outputs on a filesystem "
                f"that every machine mounts at the same path (e.g. NFS), or run it on one machine")
        time.sleep(min(1.0, grace))


def _lead(job: ShardJob, ranks: Ranks, board: StatusBoard) -> list[ExtractionResult]:
    try:
        board.post("ready", READY)
        board.wait("ready", timeout=READY_SECONDS, what="taking the extraction job")
        own = _extract(job, ranks, board)
        board.post("end", DONE, value=own)
        ends = board.wait("end", stale_after=STALE_SECONDS, what="the extraction of its shard")
    except BaseException as error:
        try:
            board.post("end", *_status(error))  # the followers stop at their next group
            if not isinstance(error, KeyboardInterrupt):  # a signal stops them too (torchrun, the terminal): no wait
                board.settle("end", timeout=STOP_SECONDS)
        except RuntimeError:
            pass  # the store went with the launch: the error that ended this rank is the one to report
        raise
    return [ends[rank]["value"] for rank in range(ranks.world_size)]


def _extract(job: ShardJob, ranks: Ranks, board: StatusBoard) -> ExtractionResult:
    return extract_features(
        job.videos, out_path=shard_path(job.out_path, ranks.rank, ranks.world_size),
        device=ranks.device(resolve_device(job.device)), shard_index=ranks.rank, num_shards=ranks.world_size,
        progress=job.progress and ranks.is_main, after_group=board.raise_if_failed, **job.request,
    )


def _status(error: BaseException) -> tuple[str, str, str | None]:
    """(state, message, traceback) a rank posts when ``error`` ended its work."""
    if isinstance(error, RankFailed):
        return STOPPED, str(error), None
    if isinstance(error, KeyboardInterrupt):
        return STOPPED, f"{error or 'interrupted'}", None
    message = str(error) if isinstance(error, HarnessError) else f"{type(error).__name__}: {error}"
    return FAILED, message, "".join(traceback.format_exception(error))
