"""A data set as plain data: one :class:`DatasetEntry` per ``dataset.kind``, registered in ``DATASETS``.

An entry owns everything specific to its data set, so that adding one is one entry (and, for a new file format,
its parser), never a branch on the kind string elsewhere:

- ``title`` and ``holds`` (what its root folder holds, for messages);
- ``read``: the annotation files -> :class:`~dualvgr.data.annotations.Annotations` (QA items per split, the files
  they come from, the files that define them, for the dataset fingerprint);
- ``videos``: where each video of those items is (its layout), and the files that locate them (a mapping);
- ``categories``: its question categories (:mod:`dualvgr.data.categories`);
- ``paper_table``: the paper table it is compared with by default (a ``paper.table`` value);
- ``identify``: how the data stage identifies real data by content for the cache (default: every file's
  digest under the root, and the annotation files' own identities);
- ``params``: the ``dataset.*`` values only this data set reads, for the data stage's fingerprint;
- ``generate``: for a synthetic data set, what writes it under its root before the check (real data: None).

The data stage, the dataset check, the questions stage and the training inputs look the entry up with
:func:`dataset_entry`; an unknown kind is an error listing the registered ones. A plug-in registers its own::

    from dualvgr.core.registries import DATASETS
    DATASETS.register("my-qa", DatasetEntry(title="My-QA", holds="questions.csv and clips/", read=..., ...))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dualvgr.core.fingerprint import StatCache, file_identity, folder_manifest, manifest_digest
from dualvgr.core.registries import DATASETS
from dualvgr.core.schema import DatasetSpec, SyntheticSpec
from dualvgr.data.annotations import Annotations
from dualvgr.data.categories import QuestionCategories


@dataclass(frozen=True)
class DatasetSource:
    """Where a data set is and how to read it: the ``dataset.*`` location keys, for its entry to use."""

    kind: str
    root: Path
    layout: str = "auto"  # MSVD-QA: which folder holds the clips
    mapping_file: str = "youtube_mapping.txt"  # MSVD-QA: clip name of each video id
    svqa_splits: Path | None = None  # SVQA: the folder of the three split lists; None = the shipped ones
    synthetic: SyntheticSpec = field(default_factory=SyntheticSpec)  # the synthetic demo's size

    @classmethod
    def from_spec(cls, dataset: DatasetSpec, *, root: Path | str | None = None) -> DatasetSource:
        """The source ``dataset`` describes (``root`` overrides ``dataset.root``: a manifest's resolved root)."""
        return cls(
            kind=dataset.kind,
            root=Path(dataset.root if root is None else root),
            layout=dataset.layout,
            mapping_file=dataset.mapping_file,
            svqa_splits=None if dataset.svqa_splits is None else Path(dataset.svqa_splits).expanduser(),
            synthetic=dataset.synthetic,
        )


@dataclass(frozen=True)
class VideoSet:
    """Where each video is, by the data set's video id, and the files that say so (a mapping file)."""

    paths: dict[int, Path]
    files: dict[str, Path] = field(default_factory=dict)


def identify_root(source: DatasetSource, cache: StatCache, files: dict[str, Path]) -> dict:
    """Real data by content: the identity of each of ``files`` and a digest over every file under the root."""
    return {
        "qa": {name: file_identity(path, cache) if path.is_file() else {"missing": str(path)}
               for name, path in files.items()},
        "files": manifest_digest(folder_manifest(source.root, cache)),
    }


def _annotation_identity(entry: DatasetEntry, source: DatasetSource, cache: StatCache) -> dict:
    return identify_root(source, cache, entry.read(source).files)


@dataclass(frozen=True)
class DatasetEntry:
    """Everything specific to one data set (see the module docstring)."""

    title: str
    holds: str  # what the root folder holds: "{train,val,test}_qa.json and the videos"
    read: Callable[[DatasetSource], Annotations]
    videos: Callable[[DatasetSource, Annotations], VideoSet]
    categories: QuestionCategories
    paper_table: str = "none"
    identify: Callable[[DatasetEntry, DatasetSource, StatCache], Any] = _annotation_identity
    params: Callable[[DatasetSource], dict] = lambda source: {}
    generate: Callable[[DatasetSource, bool], Any] | None = None  # (source, progress): writes the data set

    @property
    def generated(self) -> bool:
        """A synthetic data set: a function of its parameters, written by the harness itself."""
        return self.generate is not None


def dataset_entry(kind: str) -> DatasetEntry:
    """The entry registered for ``dataset.kind`` = ``kind``; an unknown kind lists the registered ones."""
    return DATASETS.get(kind)
