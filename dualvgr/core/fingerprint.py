"""Content fingerprints of files and folders, for the stage cache and provenance.

Every file is identified by its sha256. Hashing a 20 GB feature file takes tens of seconds, so digests are kept
in a small stat cache (the way git's index and DVC do): a file whose (size, mtime_ns, ctime_ns, inode, device)
are those recorded when it was hashed is not read again; any change of them means a rehash. ``ctime`` cannot be
set by ``touch -d``/``os.utime`` (setting mtime updates it), so putting an old mtime back on a modified file does
not fool the cache. A file modified within :data:`RACY_SECONDS` before it was hashed is "racy" (a later write in
the same timestamp tick would leave its stat unchanged): its digest is used but trusted only after a later rehash,
as git does for racily clean index entries.

The cache is an SQLite file (safe under several processes: DDP ranks, extraction shards). When it cannot be
opened or written (read-only folder, locked, damaged), hashing still works, just without remembering.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

PROGRESS_LIMIT = 64 * 2**20  # files above this size get a progress bar while hashed
RACY_SECONDS = 2.0
_LOCK_TIMEOUT = 10.0  # seconds to wait for another process holding the cache
STAT_CACHE_FILE = ".stat-cache.sqlite"
_CHUNK = 4 * 2**20
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER,"
    " inode INTEGER, device INTEGER, hashed_at_ns INTEGER, sha256 TEXT)"
)


def sha256_file(path: str | Path, progress: bool = False) -> str:
    """The sha256 of a file's bytes, read in chunks (a progress bar for large files when ``progress``)."""
    path = Path(path)
    digest = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as handle, tqdm(
        total=size, unit="B", unit_scale=True, desc=f"sha256 {path.name}", disable=not progress or size < PROGRESS_LIMIT
    ) as bar:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


@dataclass(frozen=True)
class _Stat:
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, path: Path) -> _Stat:
        st = path.stat()
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


class StatCache:
    """sha256 of files, remembered per (path, stat); ``path=None`` remembers nothing (always hashes)."""

    def __init__(self, path: str | Path | None):
        self.path = None if path is None else Path(path)
        self.hashed: list[Path] = []  # files this instance actually read (tests, benchmarks, messages)
        self._warned = False
        self._connection: sqlite3.Connection | None = None
        self._pid = 0

    def sha256(self, path: str | Path, progress: bool = False) -> str:
        path = Path(path).resolve()
        stat = _Stat.of(path)
        cached = self._lookup(path, stat)
        if cached is not None:
            return cached
        started = time.time_ns()
        digest = sha256_file(path, progress=progress)
        after = _Stat.of(path)
        if after == stat:  # not written to while we read it
            self._store(path, stat, started, digest)
        self.hashed.append(path)
        return digest

    def moved(self, old_root: str | Path, new_root: str | Path) -> None:
        """Carry the digests of files under ``old_root`` over to ``new_root`` after the folder was renamed: a
        rename keeps its files' inodes, sizes and times, so their digests stay valid and nothing is read again."""
        connection = self._connect()
        if connection is None:
            return
        old, new = str(Path(old_root).resolve()) + os.sep, str(Path(new_root).resolve()) + os.sep
        try:
            with connection:
                connection.execute(
                    "INSERT OR REPLACE INTO digests SELECT ? || substr(path, ?), size, mtime_ns, ctime_ns, inode, device,"
                    " hashed_at_ns, sha256 FROM digests WHERE substr(path, 1, ?) = ?", (new, len(old) + 1, len(old), old))
                connection.execute("DELETE FROM digests WHERE substr(path, 1, ?) = ?", (len(old), old))
        except sqlite3.Error as error:
            self._degrade(error)

    # ---------------------------------------------------------------------------------------------- store

    def _connect(self) -> sqlite3.Connection | None:
        """The open connection of this process (one per instance; a forked child opens its own)."""
        if self.path is None:
            return None
        if self._connection is not None and self._pid == os.getpid():
            return self._connection
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=_LOCK_TIMEOUT)
            # WAL with synchronous=NORMAL: a commit costs no fsync and a crash can lose the last entries, never
            # corrupt the file (a lost entry only means one more rehash).
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as error:
            self._degrade(error)
            return None
        self._connection, self._pid = connection, os.getpid()
        return connection

    def close(self) -> None:
        if self._connection is not None and self._pid == os.getpid():
            self._connection.close()
        self._connection = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def _lookup(self, path: Path, stat: _Stat) -> str | None:
        connection = self._connect()
        if connection is None:
            return None
        try:
            with connection:
                row = connection.execute(
                    "SELECT size, mtime_ns, ctime_ns, inode, device, hashed_at_ns, sha256 FROM digests WHERE path = ?",
                    (str(path),),
                ).fetchone()
        except sqlite3.Error as error:
            self._degrade(error)
            return None
        if row is None or _Stat(*row[:5]) != stat:
            return None
        racy_limit = row[5] - int(RACY_SECONDS * 1e9)
        if stat.mtime_ns >= racy_limit or stat.ctime_ns >= racy_limit:
            return None  # modified just before it was hashed: hash again (that digest will be trusted)
        return row[6]

    def _store(self, path: Path, stat: _Stat, hashed_at_ns: int, digest: str) -> None:
        connection = self._connect()
        if connection is None:
            return
        try:
            with connection:
                connection.execute(
                    "INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (str(path), stat.size, stat.mtime_ns, stat.ctime_ns, stat.inode, stat.device, hashed_at_ns, digest),
                )
        except sqlite3.Error as error:
            self._degrade(error)

    def _degrade(self, error: Exception) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"the file-digest cache {self.path} cannot be used ({type(error).__name__}: {error}); files are "
                f"hashed without it (correct, only slower). Delete the file or make its folder writable to fix it",
                RuntimeWarning,
                stacklevel=3,
            )


def stat_cache_in(folder: str | Path) -> StatCache:
    """The stat cache kept in ``folder`` (the stage outputs folder, ``tracking.outputs``)."""
    return StatCache(Path(folder) / STAT_CACHE_FILE)


def file_identity(path: str | Path, cache: StatCache) -> dict:
    """What identifies a file for a cache key: its size and sha256 (through the stat cache)."""
    path = Path(path)
    return {"size": path.stat().st_size, "sha256": cache.sha256(path)}


def folder_manifest(root: str | Path, cache: StatCache, pattern: str = "**/*") -> list[tuple[str, int, str]]:
    """(relative path, size, sha256) of every file below ``root``, sorted: the content of a folder."""
    root = Path(root)
    files = sorted(path for path in root.glob(pattern) if path.is_file() and not path.name.startswith(STAT_CACHE_FILE))
    return [(path.relative_to(root).as_posix(), path.stat().st_size, cache.sha256(path)) for path in files]


def manifest_digest(manifest: list[tuple[str, int, str]]) -> str:
    digest = hashlib.sha256()
    for name, size, sha256 in manifest:
        digest.update(f"{name}\0{size}\0{sha256}\n".encode())
    return digest.hexdigest()


def describe_file_change(path: str | Path, record: dict, cache: StatCache) -> str | None:
    """None when the file at ``path`` still has the recorded size and sha256, else what changed (for messages)."""
    path = Path(path)
    if not path.is_file():
        return "is missing" if not path.exists() else "is no longer a file"
    size = path.stat().st_size
    if size != record["size"]:
        return f"changed size ({record['size']} -> {size} bytes)"
    if cache.sha256(path) != record["sha256"]:
        return "changed content (same size, different sha256)"
    return None

