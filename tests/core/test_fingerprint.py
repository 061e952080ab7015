"""The stat cache behind every content check: a file is rehashed exactly when its stat changed."""

from __future__ import annotations

import os
import sqlite3
import time

import pytest

from dualvgr.core.fingerprint import (
    RACY_SECONDS,
    STAT_CACHE_FILE,
    StatCache,
    describe_file_change,
    folder_manifest,
    manifest_digest,
    sha256_file,
    stat_cache_in,
)


def _aged(path, seconds: float = 10 * RACY_SECONDS) -> None:
    """Give ``path`` an mtime well in the past (ctime still moves to now: only mtime can be set)."""
    past = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(past, past))


def _settle() -> None:
    """Let the racy window after the last write pass, so the next hash is trusted."""
    time.sleep(RACY_SECONDS + 0.1)


def test_unchanged_file_is_not_rehashed(tmp_path):
    target = tmp_path / "big.bin"
    target.write_bytes(os.urandom(1000))
    _settle()
    cache = stat_cache_in(tmp_path / "outputs")
    first = cache.sha256(target)
    assert first == sha256_file(target)
    again = stat_cache_in(tmp_path / "outputs")  # another command: a new instance, the same file on disk
    assert again.sha256(target) == first
    assert again.hashed == [], "an unchanged file must be answered from the stat cache"


def test_same_size_change_is_rehashed_even_with_the_old_mtime_put_back(tmp_path):
    target = tmp_path / "best.pt"
    target.write_bytes(b"a" * 1000)
    _aged(target)
    _settle()
    cache = stat_cache_in(tmp_path / "outputs")
    before = cache.sha256(target)
    stat = target.stat()
    with open(target, "r+b") as handle:  # same size, one byte different
        handle.seek(500)
        handle.write(b"b")
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # a hostile `touch -r`: only ctime tells
    later = stat_cache_in(tmp_path / "outputs")
    assert later.sha256(target) != before, "a same-size change with the old mtime must still be noticed (ctime)"
    assert later.hashed, "the changed file must be read again"


def test_racily_fresh_file_is_hashed_again(tmp_path):
    """A file written just before it was hashed could change again within one timestamp tick: not trusted."""
    target = tmp_path / "fresh.bin"
    target.write_bytes(b"x" * 10)
    cache = stat_cache_in(tmp_path / "outputs")
    cache.sha256(target)
    second = stat_cache_in(tmp_path / "outputs")
    second.sha256(target)
    assert second.hashed, "a file hashed within the racy window must be rehashed on its next check"


def test_replaced_file_with_another_inode_is_rehashed(tmp_path):
    target = tmp_path / "features.h5"
    target.write_bytes(b"1" * 64)
    _settle()
    cache = stat_cache_in(tmp_path / "outputs")
    cache.sha256(target)
    replacement = tmp_path / "other.h5"
    replacement.write_bytes(b"2" * 64)
    stat = target.stat()
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, target)
    later = stat_cache_in(tmp_path / "outputs")
    assert later.sha256(target) == sha256_file(target)
    assert later.hashed


@pytest.mark.parametrize("damage", ["garbage", "a_directory_in_its_place"])
def test_unusable_cache_file_still_hashes_correctly(tmp_path, damage):
    target = tmp_path / "data.bin"
    target.write_bytes(b"payload")
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    if damage == "garbage":
        (outputs / STAT_CACHE_FILE).write_bytes(b"this is not an sqlite database" * 10)
    else:  # what a read-only folder does to a non-root user, without depending on who runs the tests
        (outputs / STAT_CACHE_FILE).mkdir()
    with pytest.warns(RuntimeWarning, match="file-digest cache .* cannot be used"):
        digest = stat_cache_in(outputs).sha256(target)
    assert digest == sha256_file(target)


def test_locked_cache_degrades_instead_of_hanging(tmp_path, monkeypatch):
    target = tmp_path / "data.bin"
    target.write_bytes(b"payload")
    cache_path = tmp_path / "outputs" / STAT_CACHE_FILE
    StatCache(cache_path).sha256(target)  # create the table
    holder = sqlite3.connect(cache_path)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        monkeypatch.setattr("dualvgr.core.fingerprint._LOCK_TIMEOUT", 0.2)
        with pytest.warns(RuntimeWarning, match="cannot be used"):
            assert StatCache(cache_path).sha256(target) == sha256_file(target)
    finally:
        holder.rollback()
        holder.close()


def test_folder_digest_covers_content(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "a.avi").write_bytes(b"A" * 100)
    (folder / "b.avi").write_bytes(b"B" * 100)
    cache = StatCache(None)
    before = manifest_digest(folder_manifest(folder, cache))
    (folder / "b.avi").write_bytes(b"C" * 100)  # same size
    assert manifest_digest(folder_manifest(folder, cache)) != before


def test_describe_file_change_says_what_changed(tmp_path):
    target = tmp_path / "best.pt"
    target.write_bytes(b"abc")
    cache = StatCache(None)
    record = {"size": 3, "sha256": sha256_file(target)}
    assert describe_file_change(target, record, cache) is None
    target.write_bytes(b"abd")
    assert describe_file_change(target, record, cache) == "changed content (same size, different sha256)"
    target.write_bytes(b"abcd")
    assert describe_file_change(target, record, cache) == "changed size (3 -> 4 bytes)"
    target.unlink()
    assert describe_file_change(target, record, cache) == "is missing"
