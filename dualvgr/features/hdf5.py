"""Feature files: the original's HDF5 layout, written so that nothing half-done is ever taken for done.

Layout (``dualvgr-original.md`` §2.6, compatible with the original's consumers):

| dataset | shape | dtype |
|---|---|---|
| ``resnet_features`` (appearance) | (V, N, F, 2048) | float32 |
| ``resnext_features`` (motion) | (V, N, 2048) | float32 |
| ``ids`` | (V,) | int64 (``np.int`` in the original, B5) |

Rows map to videos only through ``ids``; we write them sorted by video id (the original's order was an
unseeded shuffle, §2.7, so no consumer can rely on any order). Attributes record the sampling, the backbone,
the weights (source, sha256) and what the caller adds (e.g. the spec hash); ``failed_ids`` lists the videos
whose rows are zeros because they could not be decoded.

Writing goes to ``<name>.partial.h5`` beside the output, with a ``_done`` mask (rows extracted) flushed after
every batch and a ``_resume_key`` attribute naming the parameters; the file is renamed to the output only when
every row is written, so the output path never holds a partial file. A rerun with the same parameters
continues from the mask (videos that failed are tried again); with other parameters (or an unreadable partial
file) it starts over. A finished shard file keeps its resume key, so that the next launch after another shard of
the same extraction failed takes it as it is (:func:`finished_shard`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from dualvgr.core.errors import DataError

log = logging.getLogger(__name__)

FEATURE_DATASETS = {"appearance": "resnet_features", "motion": "resnext_features"}
IDS_DATASET = "ids"
FORMAT_VERSION = 1
_DONE, _RESUME_KEY = "_done", "_resume_key"
FAILED_VIDEOS_ATTR = "_failed_videos"  # a shard's failed videos with their reasons (JSON), for a later reuse
# Only in shard files; merging removes them. A finished shard keeps its resume key, so that a relaunch after
# another shard failed reuses it instead of extracting it again.
SHARD_ATTRS = ("shard_index", "num_shards", _RESUME_KEY, FAILED_VIDEOS_ATTR)


def feature_dataset(kind: str) -> str:
    """Dataset name of a feature kind: ``resnet_features`` (appearance) or ``resnext_features`` (motion)."""
    if kind not in FEATURE_DATASETS:
        raise ValueError(f"unknown feature kind '{kind}': expected one of {', '.join(FEATURE_DATASETS)}")
    return FEATURE_DATASETS[kind]


def partial_path(out_path: Path) -> Path:
    return Path(out_path).with_suffix(".partial.h5")


def shard_path(out_path: Path, index: int, count: int) -> Path:
    """Shard ``index`` of ``count`` of an output, beside it: ``<name>.shard<index>of<count>.h5``."""
    out_path = Path(out_path)
    return out_path.with_name(f"{out_path.stem}.shard{index}of{count}.h5")


def finished_shard(path: Path, resume_key: str) -> dict[str, object] | None:
    """The attributes of ``path`` when it is a finished shard written with ``resume_key``, else None."""
    try:
        with h5py.File(path, "r") as handle:
            attrs = dict(handle.attrs)
    except OSError:  # missing, or not an HDF5 file
        return None
    return attrs if "shard_index" in attrs and attrs.get(_RESUME_KEY) == resume_key else None


def ids_digest(ids: np.ndarray) -> str:
    """Identifies a (sorted) list of video ids: shards of one extraction share it, merging checks it."""
    return hashlib.sha256(np.ascontiguousarray(ids, dtype="<i8").tobytes()).hexdigest()


def _attr_value(value: object) -> object:
    """Attributes as h5py stores them: strings, numbers, int/float arrays."""
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    return value


def _same(a: object, b: object) -> bool:
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


class PartialFeatureFile:
    """The ``.partial.h5`` of one output: rows written as batches finish, a done mask, atomic completion."""

    def __init__(self, handle: h5py.File, path: Path, out_path: Path, dataset: str) -> None:
        self._file, self.path, self.out_path, self.dataset = handle, path, out_path, dataset

    @classmethod
    def open(
        cls,
        out_path: Path,
        *,
        dataset: str,
        row_shape: Sequence[int],
        ids: np.ndarray,
        attrs: dict[str, object],
        resume_key: str,
    ) -> PartialFeatureFile:
        """Resume ``<out>.partial.h5`` when its resume key matches, otherwise create it afresh."""
        out_path = Path(out_path)
        path = partial_path(out_path)
        if path.exists():
            resumed = cls._try_resume(path, out_path, dataset, resume_key)
            if resumed is not None:
                return resumed
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = h5py.File(path, "w")
        handle.create_dataset(dataset, shape=(len(ids), *row_shape), dtype=np.float32, fillvalue=0.0)
        handle.create_dataset(IDS_DATASET, data=np.asarray(ids, dtype=np.int64))
        handle.create_dataset(_DONE, shape=(len(ids),), dtype=bool, fillvalue=False)
        for key, value in attrs.items():
            handle.attrs[key] = _attr_value(value)
        handle.attrs[_RESUME_KEY] = resume_key
        handle.flush()
        return cls(handle, path, out_path, dataset)

    @classmethod
    def _try_resume(cls, path: Path, out_path: Path, dataset: str, resume_key: str) -> PartialFeatureFile | None:
        try:
            handle = h5py.File(path, "r+")
        except OSError as error:
            if "lock" in str(error).lower():
                raise DataError(
                    f"{path} is locked: another extraction is writing {out_path} right now; wait for it or stop it"
                ) from error
            # killed mid-write: HDF5 metadata may be torn
            log.warning("%s is unreadable (%s); starting the extraction over", path, error)
            return None
        if handle.attrs.get(_RESUME_KEY) != resume_key or dataset not in handle or _DONE not in handle:
            log.warning("%s was made with other parameters; starting the extraction over", path)
            handle.close()
            return None
        return cls(handle, path, out_path, dataset)

    @property
    def done(self) -> np.ndarray:
        return self._file[_DONE][:]

    def write(self, rows: Sequence[int], features: Sequence[np.ndarray]) -> None:
        """Store finished rows (one feature array per row) and mark them done, flushed to disk."""
        for row, feature in zip(rows, features, strict=True):
            self._file[self.dataset][row] = feature
        done = self._file[_DONE]
        for row in rows:
            done[row] = True
        self._file.flush()

    def finish(
        self, attrs: dict[str, object], failed_rows: Sequence[int] = (), *, keep_resume_key: bool = False
    ) -> Path:
        """Zero the failed rows, drop the bookkeeping, add final attributes, rename to the output path.

        Every row must be done or failed. The rename is atomic on one file system: the output path never holds a
        partial file. A shard keeps its resume key (``keep_resume_key``; see SHARD_ATTRS).
        """
        complete = self.done
        complete[list(failed_rows)] = True
        if not complete.all():
            missing = np.flatnonzero(~complete)
            raise RuntimeError(f"{self.path}: {len(missing)} rows not written (e.g. {missing[:5].tolist()})")
        features = self._file[self.dataset]
        for row in failed_rows:
            features[row] = np.zeros(features.shape[1:], np.float32)
        del self._file[_DONE]
        if not keep_resume_key:
            del self._file.attrs[_RESUME_KEY]
        for key, value in attrs.items():
            self._file.attrs[key] = _attr_value(value)
        self._file.close()
        os.replace(self.path, self.out_path)
        return self.out_path

    def close(self) -> None:
        """Leave the partial file for a later resume (on an error or interruption)."""
        if self._file.id.valid:
            self._file.close()


def merge_shards(
    shard_paths: Sequence[str | os.PathLike], out_path: str | os.PathLike, *, rows_per_copy: int = 64
) -> Path:
    """Merge the K shard files of one extraction into the file a single process would have written.

    Checks that the shards are exactly shards 0..K-1 of the same extraction (same attributes, same video list
    digest), concatenates their rows (each shard holds a contiguous run of the sorted ids) and writes
    ``out_path`` through a temporary file. Shard attributes are dropped and ``failed_ids`` united.
    """
    out_path = Path(out_path)
    shards = sorted((_shard_header(Path(p)) for p in shard_paths), key=lambda header: header["shard_index"])
    first = shards[0]
    num_shards = first["num_shards"]
    if [header["shard_index"] for header in shards] != list(range(num_shards)):
        raise DataError(
            f"cannot merge: got shards {[h['shard_index'] for h in shards]} of {num_shards}, need each of "
            f"0..{num_shards - 1} exactly once ({', '.join(str(h['path']) for h in shards)})"
        )
    for header in shards[1:]:
        differing = sorted(
            key
            for key in set(first["attrs"]) | set(header["attrs"])
            if key not in ("failed_ids", *SHARD_ATTRS) and not _same(first["attrs"].get(key), header["attrs"].get(key))
        )
        if differing or header["dataset"] != first["dataset"] or header["row_shape"] != first["row_shape"]:
            raise DataError(
                f"cannot merge {header['path']} with {first['path']}: they come from different extractions "
                f"(attributes differ: {', '.join(differing) or 'dataset/shape'})"
            )
    ids = np.concatenate([header["ids"] for header in shards])
    if ids_digest(ids) != first["attrs"].get("videos_sha256"):
        raise DataError(f"cannot merge: the shards' ids do not make up the video list they were cut from ({out_path})")
    attrs = {key: value for key, value in first["attrs"].items() if key not in SHARD_ATTRS}
    failed = [np.asarray(header["attrs"].get("failed_ids", []), dtype=np.int64) for header in shards]
    attrs["failed_ids"] = np.sort(np.concatenate(failed))
    dataset = first["dataset"]
    temporary = partial_path(out_path)
    with h5py.File(temporary, "w") as out:
        target = out.create_dataset(dataset, shape=(len(ids), *first["row_shape"]), dtype=np.float32)
        out.create_dataset(IDS_DATASET, data=ids.astype(np.int64))
        for key, value in attrs.items():
            out.attrs[key] = value
        offset = 0
        for header in shards:
            with h5py.File(header["path"], "r") as shard:
                source = shard[dataset]
                for start in range(0, len(source), rows_per_copy):
                    block = source[start : start + rows_per_copy]
                    target[offset + start : offset + start + len(block)] = block
            offset += len(header["ids"])
    os.replace(temporary, out_path)
    return out_path


def _shard_header(path: Path) -> dict[str, object]:
    if not path.is_file():
        raise DataError(f"shard file not found: {path}")
    with h5py.File(path, "r") as handle:
        attrs = dict(handle.attrs)
        if "shard_index" not in attrs:
            raise DataError(f"{path} is not a shard file (no shard_index attribute); merge only shard outputs")
        kind = str(attrs.get("kind"))
        dataset = FEATURE_DATASETS.get(kind, "")
        if dataset not in handle:
            raise DataError(f"{path}: no '{dataset or kind}' dataset")
        return {
            "path": path,
            "attrs": attrs,
            "dataset": dataset,
            "row_shape": tuple(handle[dataset].shape[1:]),
            "ids": handle[IDS_DATASET][:],
            "shard_index": int(attrs["shard_index"]),
            "num_shards": int(attrs["num_shards"]),
        }


def resume_key(parameters: dict[str, object]) -> str:
    """A stable string of everything that must be unchanged for a partial file to be resumed."""
    return json.dumps(parameters, sort_keys=True, default=str)
