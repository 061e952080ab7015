"""Extract appearance or motion features of a list of videos into one HDF5 file (or one shard of it).

Follows ``dualvgr-original.md`` §2 (procedure) and fixes its fragilities without changing its numbers:
inference mode instead of autograd (B26), TF32 off unless asked (B40), clear errors or counted zero rows for
bad videos, truncated and damaged ones included (B21, B22), 2048-wide motion features or an error before
anything runs (B20), ``ids`` int64 (B5). Everything about the network (builder, input transform, width) comes
from the backbone registry entry that ``settings.backbone`` names (:mod:`~dualvgr.features.registry`).

Work is split where it is cheapest: worker processes (a torch ``DataLoader`` over videos) decode only the
frames the clips need and resize each distinct frame once; the main process normalises on the device and runs
the network on the distinct frames (appearance: ResNet sees each frame once, then features are gathered back
into clips) or distinct clips (motion). The network is an inference copy with BatchNorm folded into the
convolutions (:func:`~dualvgr.features.backbones.fold_batchnorm`, float32-rounding-level differences).

Rows are the videos sorted by id. Forwards never depend on how the work is cut: videos are packed into fixed
groups of consecutive rows (as many whole videos as ``batch_size`` inputs hold; one video without a
``batch_size``), shard ``i`` of ``K`` takes the i-th contiguous run of whole groups, and a resumed run redoes
any group not completely written. Float results depend on batch composition at rounding level, so this is
what makes shard files merge (:func:`~dualvgr.features.hdf5.merge_shards`) into exactly the single-process
file, and a resumed file equal an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from dualvgr.core.device import resolve_device, set_tf32
from dualvgr.core.errors import DataError, SpecError
from dualvgr.features.backbones import fold_batchnorm
from dualvgr.features.hdf5 import (
    FAILED_VIDEOS_ATTR,
    FORMAT_VERSION,
    PartialFeatureFile,
    feature_dataset,
    finished_shard,
    ids_digest,
    resume_key,
)
from dualvgr.features.pillow_bicubic import resize_bicubic
from dualvgr.features.registry import Backbone, backbone_entry
from dualvgr.features.settings import FeatureSettings
from dualvgr.features.video import VideoError, bgr_to_rgb, read_clip_frames
from dualvgr.features.weights import BackboneWeights


# Network inputs per forward when videos are kept apart (batch_size None). On 2 CPU cores ResNet-101 ran 7.5
# frames/s in chunks of 16 and 5.9 in chunks of 128 (cache-sized batches win); a GPU wants large batches.
DEFAULT_CHUNK = {("cpu", "appearance"): 16, ("cpu", "motion"): 4, ("cuda", "appearance"): 256, ("cuda", "motion"): 32}


@dataclass(frozen=True)
class FailedVideo:
    """A video whose row was written as zeros (only with ``allow_failed``)."""

    video_id: int
    path: str
    reason: str


@dataclass(frozen=True)
class ExtractionResult:
    out_path: Path
    kind: str
    num_videos: int  # rows in this output (this shard's videos)
    num_extracted: int  # rows this call computed; the others were resumed from a partial file or failed
    failed: list[FailedVideo] = field(default_factory=list)
    seconds: float = 0.0  # decoding, forwards and writing; not building the network
    videos_per_second: float = 0.0  # this call's videos (extracted or failed) per second
    frames_per_second: float = 0.0  # clip frames (num_clips x frames_per_clip per video) per second
    width: int = 0  # the backbone's feature width
    recounted_videos: int = 0  # videos whose container frame count was wrong (decoded twice)


@dataclass(frozen=True)
class _Job:
    row: int  # in this shard's file
    video_id: int
    path: str
    group: int  # videos of one group share forwards; groups never straddle shards


class _VideoInputs(Dataset):
    """Per video, in a worker: the network's input units as uint8 and how to gather clips from their outputs."""

    def __init__(self, jobs: Sequence[_Job], settings: FeatureSettings) -> None:
        self.jobs, self.settings = list(jobs), settings

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, position: int) -> dict[str, object]:
        job, settings = self.jobs[position], self.settings
        try:
            clip_frames = read_clip_frames(job.path, settings.num_clips, settings.frames_per_clip, channels="bgr")
        except (VideoError, cv2.error) as error:
            if not isinstance(error, VideoError):
                error = VideoError(job.path, f"OpenCV failed while decoding it ({error})")
            return {"position": position, "error": str(error), "message": error.failed_video(job.video_id)}
        frames = resize_bicubic(clip_frames.frames, settings.image_size)  # (U, h, w, 3) BGR, each distinct frame once
        frames = bgr_to_rgb(frames)  # after resizing (channels resize independently: same values), smaller frames
        if settings.kind == "motion":
            clip_rows, gather = np.unique(clip_frames.index, axis=0, return_inverse=True)  # distinct clips
            units, gather = frames[clip_rows], gather.reshape(-1)  # (M, F, h, w, 3); (N,) -> clip of each
        else:
            units, gather = frames, clip_frames.index  # (U, h, w, 3); (N, F) -> frame of each clip frame
        return {
            "position": position,
            "error": "",
            "units": torch.from_numpy(np.ascontiguousarray(units)),
            "gather": torch.from_numpy(np.ascontiguousarray(gather)),
            "recounted": clip_frames.decode_passes > 1,
        }


def _loader(jobs: Sequence[_Job], settings: FeatureSettings, *, num_workers: int, device: torch.device) -> DataLoader:
    return DataLoader(
        _VideoInputs(jobs, settings),
        batch_size=None,  # items are whole videos of different sizes; we group them ourselves
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )


def iter_network_inputs(
    videos: Sequence[tuple[int, str | os.PathLike]],
    settings: FeatureSettings,
    *,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
) -> Iterator[tuple[int, torch.Tensor]]:
    """The extraction's preprocessing alone (decode, sample, resize, normalise), for benchmarks and inspection.

    Yields, per video in id order, its id and the network input of its distinct frames (appearance,
    (U, 3, h, w)) or distinct clips (motion, (M, 3, F, h, w)) on ``device``.
    """
    device = resolve_device(device) if isinstance(device, str) else device
    jobs, _ = _jobs_for_shard(videos, 0, 1, 1)
    to_input = backbone_entry(settings.backbone, settings.kind).input_transform(settings, device)
    for item in _loader(jobs, settings, num_workers=num_workers, device=device):
        if item["error"]:
            raise DataError(str(item["message"]))
        yield jobs[int(item["position"])].video_id, to_input(item["units"].to(device, non_blocking=True))


class _Network:
    """Backbone + input conversion on one device; uint8 units in, float32 features (units, width) out."""

    def __init__(
        self, backbone: Backbone, settings: FeatureSettings, weights: BackboneWeights, device: torch.device
    ) -> None:
        self.device = device
        self.to_input = backbone.input_transform(settings, device)
        model: nn.Module = backbone.build(weights, settings)
        # Inputs arrive channels-last (frames are HWC). On a CPU, oneDNN runs both networks faster in that
        # layout (measured 1.1-1.5x on 2 cores); with cuDNN in float32 the default layout was as fast or faster (H200:
        # ResNet-101 2361 vs 2056 frames/s), so there inputs are made contiguous instead.
        self.memory_format = backbone.cpu_memory_format if device.type == "cpu" else torch.contiguous_format
        self.model = fold_batchnorm(model).to(device=device, memory_format=self.memory_format)

    def __call__(self, units: torch.Tensor, chunk: int) -> torch.Tensor:
        units = units.to(self.device, non_blocking=True)
        with torch.inference_mode():  # B26: the original kept autograd on
            outputs = [
                self.model(self.to_input(part).contiguous(memory_format=self.memory_format)).float().cpu()
                for part in units.split(chunk)
            ]
        return torch.cat(outputs)


def _group_size(settings: FeatureSettings, batch_size: int | None) -> int:
    """Videos per forward group: as many whole videos as ``batch_size`` network inputs hold, at least one."""
    per_video = settings.num_clips * (settings.frames_per_clip if settings.kind == "appearance" else 1)
    return max(1, batch_size // per_video) if batch_size else 1


def _jobs_for_shard(
    videos: Sequence[tuple[int, str | os.PathLike]], shard_index: int, num_shards: int, group_size: int
) -> tuple[list[_Job], np.ndarray]:
    """This shard's jobs (rows numbered within the shard, whole groups only) and every video id, sorted."""
    if not 0 <= shard_index < num_shards:
        raise SpecError(f"shard_index {shard_index} is outside 0..{num_shards - 1} (num_shards {num_shards})")
    ordered = sorted((int(video_id), str(path)) for video_id, path in videos)
    all_ids = np.asarray([video_id for video_id, _ in ordered], dtype=np.int64)
    repeated = all_ids[1:][all_ids[1:] == all_ids[:-1]]
    if len(repeated):
        examples = sorted(set(repeated.tolist()))[:5]
        raise DataError(f"video ids repeat in the video list (e.g. {examples}); rows would be ambiguous")
    groups = -(-len(ordered) // group_size)
    start = groups * shard_index // num_shards * group_size
    stop = min(groups * (shard_index + 1) // num_shards * group_size, len(ordered))
    jobs = [
        _Job(row, video_id, path, (start + row) // group_size)
        for row, (video_id, path) in enumerate(ordered[start:stop])
    ]
    return jobs, all_ids


def _output_attrs(
    settings: FeatureSettings,
    weights: BackboneWeights,
    all_ids: np.ndarray,
    caller: dict[str, object],
    shard: tuple[int, int],
) -> dict[str, object]:
    own: dict[str, object] = {
        "format_version": FORMAT_VERSION,
        "clip_sampling": "original",  # linspace centres + the original's edge padding (sampling.py)
        **settings.attrs(),
        **weights.attrs(),
        "videos_sha256": ids_digest(all_ids),  # the whole list; shards of one extraction share it
    }
    if shard[1] > 1:
        own.update(shard_index=shard[0], num_shards=shard[1])
    clashes = sorted(set(own) & set(caller) | ({"failed_ids"} & set(caller)))
    if clashes:
        raise SpecError(f"attrs {clashes} are written by the extractor itself; give them other names")
    return {**own, **caller}


def extract_features(
    videos: Sequence[tuple[int, str | os.PathLike]],
    settings: FeatureSettings,
    weights: BackboneWeights,
    out_path: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
    num_workers: int = 0,
    allow_failed: bool = False,
    attrs: dict[str, object] | None = None,
    shard_index: int = 0,
    num_shards: int = 1,
    tf32: bool = False,
    progress: bool = True,
    after_group: Callable[[], None] | None = None,
) -> ExtractionResult:
    """Extract ``settings.kind`` features of ``videos`` ((video id, path) pairs) into ``out_path``.

    ``batch_size`` counts network inputs per forward: frames (appearance) or clips (motion); it packs as many
    whole videos as it holds into one forward (worth it on a GPU, or for small frames on a CPU). ``None``
    keeps videos apart, in chunks of :data:`DEFAULT_CHUNK` for the device. Either way a video's features do
    not depend on sharding or resuming (see the module docstring). ``num_workers`` processes decode in
    parallel (0: this process; on a CPU-only machine they take cores from the network, so 0 is best there).
    A failed video (missing, unopenable, or decoding fewer frames than its container declares: see
    :mod:`~dualvgr.features.video`) raises :class:`DataError` naming it, its frame counts and the fix; with
    ``allow_failed`` (the stages' ``features.allow_failed_videos``) it becomes a zero row listed in the result
    and in the file's ``failed_ids``. ``attrs`` (e.g. the spec hash) are stored on the file. ``tf32`` stays
    off for faithful features (B40). An interrupted call leaves ``<out>.partial.h5``; calling again with the
    same arguments resumes it. ``out_path`` is replaced, once complete, if it exists. ``after_group`` is called
    each time a group of videos is written; an error it raises stops the call with those rows kept for a resume
    (a rank of a torchrun launch stops so when another rank failed).
    """
    backbone = backbone_entry(settings.backbone, settings.kind)
    if weights.backbone != backbone.name:
        raise SpecError(f"{settings.kind} features need {backbone.name} weights, got {weights.backbone} weights")
    backbone.check_settings(settings)  # e.g. B20, before any decoding or network
    if batch_size is not None and batch_size < 1:
        raise SpecError(f"batch_size must be >= 1 or None (each video on its own), got {batch_size}")
    jobs, all_ids = _jobs_for_shard(videos, shard_index, num_shards, _group_size(settings, batch_size))
    file_attrs = _output_attrs(settings, weights, all_ids, dict(attrs or {}), (shard_index, num_shards))
    key = resume_key({"attrs": file_attrs, "videos": [(job.video_id, job.path) for job in jobs]})
    if num_shards > 1 and (finished := finished_shard(Path(out_path), key)) is not None:
        return _reused_shard(Path(out_path), finished, settings, len(jobs), backbone.feature_dim)
    output = PartialFeatureFile.open(
        Path(out_path),
        dataset=feature_dataset(settings.kind),
        row_shape=settings.feature_shape(backbone.feature_dim),
        ids=np.asarray([job.video_id for job in jobs], dtype=np.int64),
        attrs=file_attrs,
        resume_key=key,
    )
    try:
        done = output.done
        unfinished = {job.group for job in jobs if not done[job.row]}
        pending = [job for job in jobs if job.group in unfinished]  # whole groups, so forwards are as in one run
        device = resolve_device(device) if isinstance(device, str) else device
        chunk = batch_size or DEFAULT_CHUNK["cuda" if device.type == "cuda" else "cpu", settings.kind]
        run = _Run(backbone, settings, output, allow_failed=allow_failed, chunk=chunk, after_group=after_group)
        seconds = 0.0
        if pending:
            with _Numerics(tf32=tf32):
                network = _Network(backbone, settings, weights, device)
                started = time.perf_counter()  # the loop only: building and loading the network is set-up
                already_done = len(jobs) - len(pending)
                run.go(pending, network, num_workers=num_workers, progress=progress, already_done=already_done)
                seconds = time.perf_counter() - started
        failures = sorted(run.failed.values(), key=lambda failure: failure.video_id)
        final: dict[str, object] = {"failed_ids": np.asarray([f.video_id for f in failures], dtype=np.int64)}
        if num_shards > 1:
            final[FAILED_VIDEOS_ATTR] = json.dumps([vars(failure) for failure in failures])
        output.finish(final, list(run.failed), keep_resume_key=num_shards > 1)
    finally:
        output.close()
    handled = len(pending)
    return ExtractionResult(
        out_path=Path(out_path),
        kind=settings.kind,
        num_videos=len(jobs),
        num_extracted=handled - len(run.failed),
        failed=failures,
        seconds=seconds,
        videos_per_second=handled / seconds if seconds else 0.0,
        frames_per_second=handled * settings.num_clips * settings.frames_per_clip / seconds if seconds else 0.0,
        width=backbone.feature_dim,
        recounted_videos=run.recounted,
    )


def _reused_shard(
    path: Path, attrs: dict[str, object], settings: FeatureSettings, num_videos: int, width: int
) -> ExtractionResult:
    """A shard an earlier call finished with the same parameters (another shard failed then): nothing to do."""
    failed = [FailedVideo(**failure) for failure in json.loads(str(attrs.get(FAILED_VIDEOS_ATTR, "[]")))]
    return ExtractionResult(path, settings.kind, num_videos, num_extracted=0, failed=failed, width=width)


class _Numerics:
    """TF32 as asked (off for faithful features, B40), restored afterwards.

    cuDNN autotuning stays as the caller has it: batches vary in size (distinct frames per video), and each new
    shape would cost seconds of tuning for ~100 convolutions.
    """

    def __init__(self, *, tf32: bool) -> None:
        self.tf32 = tf32

    def __enter__(self) -> None:
        self.saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        set_tf32(self.tf32)

    def __exit__(self, *exc: object) -> None:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self.saved


class _Run:
    """The loop of one call: decode in workers, one forward pass per group of videos, write rows as groups finish."""

    def __init__(
        self, backbone: Backbone, settings: FeatureSettings, output: PartialFeatureFile, *, allow_failed: bool,
        chunk: int, after_group: Callable[[], None] | None = None,
    ) -> None:
        self.backbone, self.settings, self.output, self.allow_failed = backbone, settings, output, allow_failed
        self.chunk = chunk  # network inputs per forward
        self.after_group = after_group or (lambda: None)
        self.failed: dict[int, FailedVideo] = {}  # by row
        self.recounted = 0
        self.width_checked = False

    def go(self, jobs: list[_Job], network: _Network, *, num_workers: int, progress: bool, already_done: int) -> None:
        loader = _loader(jobs, self.settings, num_workers=num_workers, device=network.device)
        bar = tqdm(
            total=already_done + len(jobs), initial=already_done, unit="video", desc=f"{self.settings.kind} features",
            disable=not progress, dynamic_ncols=True,
        )
        waiting: list[tuple[_Job, dict[str, object]]] = []  # decoded videos of the current group
        with bar:
            for item in loader:
                job = jobs[int(item["position"])]
                if waiting and job.group != waiting[0][0].group:
                    self._forward(waiting, network)
                    bar.update(len(waiting))
                    waiting = []
                    self.after_group()
                if item["error"]:
                    self._fail(job, str(item["error"]), str(item["message"]))
                    bar.update(1)
                    continue
                self.recounted += bool(item["recounted"])
                waiting.append((job, item))
            if waiting:
                self._forward(waiting, network)
                bar.update(len(waiting))
                self.after_group()

    def _fail(self, job: _Job, reason: str, message: str) -> None:
        if not self.allow_failed:
            raise DataError(message)
        self.failed[job.row] = FailedVideo(job.video_id, job.path, reason)

    def _forward(self, waiting: list[tuple[_Job, dict[str, object]]], network: _Network) -> None:
        units = waiting[0][1]["units"] if len(waiting) == 1 else torch.cat([item["units"] for _, item in waiting])
        features = network(units, self.chunk)  # (units, width)
        if not self.width_checked:
            self.backbone.check_width(features.shape[1], self.settings, where=str(self.output.out_path))
            self.width_checked = True
        rows, per_video, offset = [], [], 0
        for job, item in waiting:
            count = len(item["units"])
            per_video.append(features[offset : offset + count][item["gather"]].numpy())  # (N, F, D) or (N, D)
            rows.append(job.row)
            offset += count
        self.output.write(rows, per_video)
