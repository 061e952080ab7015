"""The ``data`` stage: build a synthetic dataset, or check a real one; fingerprint it.

The data set's entry (``DATASETS[dataset.kind]``, :mod:`dualvgr.data.entry`) parses it, locates its videos and,
for a synthetic one, writes it first; an unknown ``dataset.kind`` fails the stage before any run, listing the
registered ones.

Input: ``dataset.*`` of the spec (and, for real data, the files under ``dataset.root``);
``features.allow_failed_videos`` (whether a truncated or damaged video fails this stage, see
:mod:`dualvgr.data.check`); ``features.workers`` decoding processes for the check.
Output: ``videos.json`` (video id -> path, the dataset fingerprint, problems, damaged videos),
``missing_videos.txt``, ``damaged_videos.txt``; the QA files and video folder are recorded as outputs so the
cache notices when they change. Logs split counts as metrics and the dataset (manifest + content fingerprint)
with ``mlflow.log_input``.

Real data is an external input identified by content (every file's sha256, through the stat cache), so a
same-size change to one video changes this stage's fingerprint and every downstream one. The synthetic demo is
a function of its parameters (``dataset.synthetic``): its fingerprint is that config, and a generated video changed on disk is
an output that changed, so the stage reruns from scratch and writes it again (identical bytes): the features
computed from it stay right.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import mlflow.data
import pandas as pd

from dualvgr.core.errors import DataError
from dualvgr.core.schema import ExperimentSpec
from dualvgr.core.stage import Stage, StageContext, StageResult, stat_cache
from dualvgr.core.tracking import TAG_DEVIATION_PREFIX
from dualvgr.data.annotations import SPLITS
from dualvgr.data.check import damaged_message, inspect_source, problems_message
from dualvgr.data.entry import DatasetSource, dataset_entry

MANIFEST = "videos.json"


def data_params(spec: ExperimentSpec) -> dict:
    dataset = spec.dataset
    source = DatasetSource.from_spec(dataset)
    params = {
        "kind": dataset.kind,
        "root": dataset.root,
        "layout": dataset.layout,
        "mapping_file": dataset.mapping_file,
        "allow_missing_videos": dataset.allow_missing_videos,
        "allow_failed_videos": spec.features.allow_failed_videos,
    }
    return params | dataset_entry(dataset.kind).params(source)  # an unknown kind fails here, before any run


def data_external_inputs(spec: ExperimentSpec) -> dict | None:
    """Real data is an input the harness does not make: identify it by content (every file's size and sha256)."""
    entry = dataset_entry(spec.dataset.kind)
    if entry.generated:
        return None
    source = DatasetSource.from_spec(spec.dataset)
    if not source.root.is_dir():
        return {"root": str(source.root), "missing": True}
    return entry.identify(entry, source, stat_cache(spec))


def run_data(ctx: StageContext) -> StageResult:
    dataset = ctx.spec.dataset
    source = DatasetSource.from_spec(dataset)
    root = source.root
    entry = dataset_entry(source.kind)
    if entry.generate is not None:
        entry.generate(source, ctx.progress)
    inventory = inspect_source(source, progress=ctx.progress, cache=stat_cache(ctx.spec),
                               workers=ctx.spec.features.workers)

    manifest_path = ctx.out_dir / MANIFEST
    problems_path = ctx.out_dir / "missing_videos.txt"
    problems_path.write_text(
        "".join(f"{vid}\t{text}\n" for vid, text in sorted(inventory.problems.items())), encoding="utf-8"
    )
    damaged_path = ctx.out_dir / "damaged_videos.txt"
    damaged_path.write_text(
        "".join(f"{vid}\t{inventory.video_paths[vid]}\t{why}\n" for vid, why in sorted(inventory.damaged.items())),
        encoding="utf-8",
    )
    manifest = {
        "kind": dataset.kind,
        "root": str(root.resolve()),
        "fingerprint": inventory.fingerprint,
        "annotation_files": {split: str(path.resolve()) for split, path in inventory.annotation_files.items()},
        "videos": {str(vid): str(path.resolve()) for vid, path in inventory.usable_videos.items()},
        "problems": {str(vid): text for vid, text in inventory.problems.items()},
        "damaged": {str(vid): why for vid, why in inventory.damaged.items()},  # still in "videos"
    }
    manifest_path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")

    metrics = {f"questions_{split}": inventory.questions[split] for split in SPLITS}
    metrics |= {f"videos_{split}": inventory.videos_per_split[split] for split in SPLITS}
    metrics |= {"videos_total": len(inventory.video_paths), "videos_missing": len(inventory.problems),
                "videos_damaged": len(inventory.damaged)}
    ctx.log.log_metrics(metrics)
    ctx.log.set_tags({"dualvgr.dataset_fingerprint": inventory.fingerprint})
    ctx.log.log_input(_dataset_entity(inventory), context="data")
    if inventory.problems:
        ctx.log.log_artifact(problems_path)
        if not dataset.allow_missing_videos:
            raise DataError(problems_message(inventory, f"{problems_path} (also the run's missing_videos.txt)"))
        ctx.log.set_tags({TAG_DEVIATION_PREFIX + "missing_videos": len(inventory.problems)})
    if inventory.damaged:
        ctx.log.log_artifact(damaged_path)
        if not ctx.spec.features.allow_failed_videos:
            raise DataError(damaged_message(inventory, f"{damaged_path} (also the run's damaged_videos.txt)"))
        # Allowed: the feature stages record each as a failed video (zero row, deviation tag), not this one.

    outputs = {"manifest": manifest_path, "problems": problems_path, "damaged": damaged_path}
    outputs |= {f"{split}_qa": path for split, path in inventory.annotation_files.items()}
    video_dirs = sorted({path.parent for path in inventory.usable_videos.values()})
    outputs |= {f"videos_{i}": folder for i, folder in enumerate(video_dirs)}
    counts = ", ".join(f"{split} {inventory.questions[split]} QA / {inventory.videos_per_split[split]} videos" for split in SPLITS)
    return StageResult(
        outputs=outputs,
        summary=f"{dataset.kind} at {root}: {counts}; {len(inventory.problems)} missing/unreadable; "
        f"{len(inventory.damaged)} truncated/damaged (failed videos for the feature stages); "
        f"fingerprint {inventory.fingerprint[:12]}",
    )


def _dataset_entity(inventory):
    frame = pd.DataFrame(
        {
            "video_id": list(inventory.video_paths),
            "path": [str(p) for p in inventory.video_paths.values()],
            "size": [inventory.identities[vid][0] for vid in inventory.video_paths],
            "sha256": [inventory.identities[vid][1] for vid in inventory.video_paths],
        }
    )
    # MLflow warns about integer columns and ambiguous local sources; neither matters for a file manifest.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return mlflow.data.from_pandas(
            frame, source=str(inventory.root.resolve()), name=f"{inventory.kind}-videos",
            digest=inventory.fingerprint[:32],
        )


def load_manifest(path: Path) -> dict:
    """The data stage's ``videos.json``; video ids as ints."""
    manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    manifest["videos"] = {int(vid): Path(p) for vid, p in manifest["videos"].items()}
    manifest["annotation_files"] = {split: Path(p) for split, p in manifest["annotation_files"].items()}
    return manifest


DATA_STAGE = Stage(
    name="data",
    version="2",  # 2: videos decoded to the end (truncated ones fail), fingerprint over the videos' content
    params=data_params,
    run=run_data,
    external_inputs=data_external_inputs,
)
