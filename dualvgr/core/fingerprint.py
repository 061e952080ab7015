"""Content fingerprints of files and folders, for the stage cache and provenance.

Small files are hashed (sha256). Files above ``HASH_LIMIT`` (GloVe's 5 GB text, HDF5 features) are identified by
path, size and modification time when computing cache keys, so that a cache check never re-reads gigabytes;
their sha256 is computed once, when a stage writes or first reads them, and logged.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tqdm import tqdm

HASH_LIMIT = 64 * 2**20
_CHUNK = 4 * 2**20


def sha256_file(path: str | Path, progress: bool = False) -> str:
    path = Path(path)
    digest = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as handle, tqdm(
        total=size, unit="B", unit_scale=True, desc=f"sha256 {path.name}", disable=not progress or size < HASH_LIMIT
    ) as bar:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def file_identity(path: str | Path) -> dict:
    """What identifies a file's content cheaply: its sha256 when small, else path + size + mtime."""
    path = Path(path).resolve()
    stat = path.stat()
    if stat.st_size <= HASH_LIMIT:
        return {"sha256": sha256_file(path), "size": stat.st_size}
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def folder_manifest(root: str | Path, pattern: str = "**/*") -> list[tuple[str, int]]:
    """(relative path, size) of every file below ``root``, sorted: a cheap content summary of a folder."""
    root = Path(root)
    return sorted(
        (path.relative_to(root).as_posix(), path.stat().st_size) for path in root.glob(pattern) if path.is_file()
    )


def manifest_digest(manifest: list[tuple[str, int]]) -> str:
    digest = hashlib.sha256()
    for name, size in manifest:
        digest.update(f"{name}\0{size}\n".encode())
    return digest.hexdigest()
