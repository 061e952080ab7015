"""The ``appearance`` and ``motion`` stages: the data stage's videos -> original-layout HDF5 features.

Input: the data stage's ``videos.json``; ``features.*`` of the spec; the backbone weights file when a path.
Output: ``<dataset>_<kind>_feat.h5`` (dualvgr-original.md §1.4, §2.6) and ``failed_videos.json``.
``features.<kind>.backbone`` names the network's registry entry (:mod:`dualvgr.features.registry`), whose
fingerprint parameters enter the stage's. Logs the weights' source and sha256 (random weights as a
deviation), extraction speed, failures (truncated or damaged videos too, with ``features.allow_failed_videos``)
and the feature width. With ``features.num_shards`` > 1, shards run in parallel processes (one GPU each where
there are several) and are merged into a file identical to a single-process run; under torchrun every rank
extracts one shard, on one or several machines, and rank 0 merges them (:mod:`dualvgr.features.distributed`).
"""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from dualvgr.core.device import resolve_device
from dualvgr.core.fingerprint import file_identity
from dualvgr.core.ranks import Ranks
from dualvgr.core.schema import ExperimentSpec
from dualvgr.core.stage import Stage, StageContext, StageResult, stat_cache
from dualvgr.core.tracking import TAG_DEVIATION_PREFIX
from dualvgr.data.stage import load_manifest
from dualvgr.features.extract import ExtractionResult, extract_features
from dualvgr.features.distributed import check_shards_per_rank, extract_across_ranks, follow_extraction
from dualvgr.features.hdf5 import merge_shards, shard_path
from dualvgr.features.registry import backbone_entry, named_sources
from dualvgr.features.settings import AppearanceSettings, MotionSettings
from dualvgr.features.weights import BackboneWeights

RANDOM_WEIGHTS_SEED = 0  # random backbones are still deterministic, so their features can be cached


def feature_settings(spec: ExperimentSpec, kind: str) -> AppearanceSettings | MotionSettings:
    features = spec.features
    if kind == "appearance":
        section = features.appearance
        return AppearanceSettings(
            num_clips=features.num_clips, frames_per_clip=section.frames_per_clip,
            image_size=section.image_size, normalisation=section.normalization, backbone=section.backbone,
        )
    section = features.motion
    return MotionSettings(
        num_clips=features.num_clips, frames_per_clip=section.frames_per_clip, image_size=section.image_size,
        sample_size=section.sample_size, backbone=section.backbone,
    )


def _section(spec: ExperimentSpec, kind: str):
    return spec.features.appearance if kind == "appearance" else spec.features.motion


def feature_params(spec: ExperimentSpec, kind: str) -> dict:
    section = _section(spec, kind)
    settings = feature_settings(spec, kind)
    return {
        "settings": settings.attrs(),
        "backbone": backbone_entry(settings.backbone, kind).fingerprint(settings),
        "weights": section.weights,
        "allow_random_weights": spec.features.allow_random_weights,
        "allow_failed_videos": spec.features.allow_failed_videos,
    }


def feature_external_inputs(spec: ExperimentSpec, kind: str) -> dict | None:
    weights = _section(spec, kind).weights
    if weights in named_sources():
        return None
    path = Path(weights).expanduser()
    return file_identity(path, stat_cache(spec)) if path.is_file() else {"missing": str(path)}


def run_features(ctx: StageContext, kind: str) -> StageResult:
    spec = ctx.spec
    section = _section(spec, kind)
    settings = feature_settings(spec, kind)
    weights = backbone_entry(settings.backbone, kind).resolve_weights(
        section.weights, allow_random=spec.features.allow_random_weights, seed=RANDOM_WEIGHTS_SEED,
        cache=stat_cache(spec),
    )
    _log_weights(ctx, kind, weights)
    manifest = load_manifest(ctx.input("data", "manifest"))
    videos = sorted(manifest["videos"].items())
    out_path = ctx.out_dir / f"{spec.dataset.kind}_{kind}_feat.h5"
    request = dict(
        settings=settings, weights=weights, batch_size=section.batch_size, num_workers=spec.features.workers,
        allow_failed=spec.features.allow_failed_videos, attrs={"spec_hash": ctx.fingerprint},
    )
    shards = spec.features.num_shards
    ranks = Ranks.from_environment()
    if ranks.active:  # under torchrun: one shard per rank, merged here (features/distributed.py)
        check_shards_per_rank(shards, ranks)
        results = extract_across_ranks(ranks, stage=kind, videos=videos, out_path=out_path,
                                       device=spec.features.device, request=request, progress=ctx.progress)
    elif shards > 1:
        results = _extract_shards(videos, out_path, spec.features.device, shards, request, ctx.progress)
        merge_shards([r.out_path for r in results], out_path)
        for result in results:
            result.out_path.unlink()
    else:
        results = [extract_features(videos, out_path=out_path, device=spec.features.device, progress=ctx.progress,
                                    **request)]

    failed = [failure for result in results for failure in result.failed]
    failed_path = ctx.out_dir / "failed_videos.json"
    failed_path.write_text(json.dumps([vars(f) for f in failed], indent=1), encoding="utf-8")
    if failed:
        ctx.log.log_artifact(failed_path)
        ctx.log.set_tags({TAG_DEVIATION_PREFIX + f"failed_videos_{kind}": len(failed)})
    seconds = max(r.seconds for r in results)
    frames = sum(r.frames_per_second * r.seconds for r in results)
    extracted = sum(r.num_extracted for r in results)
    metrics = {
        "videos_extracted": extracted,
        "videos_failed": len(failed),
        "feature_width": results[0].width,
        "frames_per_second": frames / seconds if seconds else 0.0,
        "videos_per_second": (extracted + len(failed)) / seconds if seconds else 0.0,
    }
    return StageResult(
        outputs={"features": out_path, "failed": failed_path},
        metrics=metrics,
        summary=f"{kind}: {len(videos)} videos -> {out_path.name} ({extracted} extracted now, {len(failed)} failed, "
        f"{metrics['frames_per_second']:.1f} frames/s, {weights.source} weights"
        + (f", {len(results)} shards merged)" if len(results) > 1 else ")"),
    )


def _log_weights(ctx: StageContext, kind: str, weights: BackboneWeights) -> None:
    ctx.log.set_tags({
        "dualvgr.weights.source": weights.source,
        "dualvgr.weights.sha256": weights.sha256 or "",
        "dualvgr.weights.path": str(weights.path or ""),
        "dualvgr.weights.backbone": weights.backbone,
    })
    if weights.is_random:
        ctx.log.set_tags({TAG_DEVIATION_PREFIX + "random_weights": "true",
                          TAG_DEVIATION_PREFIX + f"random_weights_{kind}": "true"})
        print(f"WARNING: {kind} features use RANDOM {weights.backbone} weights: they exercise the pipeline but are "
              f"not the paper's features (recorded as a deviation)", flush=True)


def _extract_shards(videos, out_path: Path, device: str, shards: int, request: dict, progress: bool) -> list[ExtractionResult]:
    """One process per shard; with several GPUs, shard i runs on cuda:i (mod the GPU count)."""
    base = resolve_device(device)
    gpus = torch.cuda.device_count() if base.type == "cuda" else 0
    jobs = []
    for index in range(shards):
        shard_device = f"cuda:{index % gpus}" if gpus else "cpu"
        jobs.append(dict(request, videos=videos, out_path=shard_path(out_path, index, shards), device=shard_device,
                         shard_index=index, num_shards=shards, progress=progress and index == 0))
    # Spawned (CUDA cannot run in forked children), non-daemonic (each shard has decoding workers of its own).
    with ProcessPoolExecutor(max_workers=shards, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_extract_one, jobs))


def _extract_one(job: dict) -> ExtractionResult:
    torch.set_num_threads(max(1, torch.get_num_threads() // job["num_shards"]))
    return extract_features(**job)


def _stage(kind: str) -> Stage:
    return Stage(
        name=kind,
        # 3: random backbones get calibrated BatchNorm statistics and damped 3D branches; 4: a video decoding fewer
        # frames than its container declares is a failed video, no longer sampled from what decodes.
        version="4",
        params=lambda spec: feature_params(spec, kind),
        run=lambda ctx: run_features(ctx, kind),
        upstream=lambda spec: ("data",),
        external_inputs=lambda spec: feature_external_inputs(spec, kind),
        follow=follow_extraction,
    )


APPEARANCE_STAGE = _stage("appearance")
MOTION_STAGE = _stage("motion")
