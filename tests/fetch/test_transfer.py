"""One download against a local server: resumed, checked, atomic, and one clear line for every fault."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dualvgr.fetch import transfer
from dualvgr.fetch.files import Expected, FetchError, human_bytes, partial_path
from dualvgr.fetch.transfer import download

REPO = Path(__file__).resolve().parents[2]
BODY = bytes(range(256)) * 40  # 10,240 bytes
SHA = hashlib.sha256(BODY).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_download_installs_the_checked_file_and_leaves_nothing_else(http_server, tmp_path):
    http_server.serve("w.pth", BODY)
    fetched = download(http_server.url("w.pth"), tmp_path / "w.pth", Expected(sha256=SHA))
    assert (tmp_path / "w.pth").read_bytes() == BODY
    assert (fetched.action, fetched.received, fetched.resumed_from) == ("downloaded", len(BODY), 0)
    assert leftovers(tmp_path) == ["w.pth"], "no .partial or .partial.json may stay behind"
    again = download(http_server.url("w.pth"), tmp_path / "w.pth", Expected(sha256=SHA))
    assert again.action == "present" and len(http_server.requests) == 1, "a present, checked file is not fetched again"


def test_cut_connection_is_retried_from_where_it_stopped(http_server, tmp_path):
    http_server.serve("w.pth", BODY, cut_after=3072, cuts=1)
    notes = []
    fetched = download(http_server.url("w.pth"), tmp_path / "w.pth", Expected(sha256=SHA), wait=0, log=notes.append)
    assert (tmp_path / "w.pth").read_bytes() == BODY
    assert http_server.ranges_asked("w.pth") == [None, "bytes=3072-"], "the second try asks only for the rest"
    assert http_server.requests[1].if_range == '"v1"', "the resumed request must be guarded by the ETag"
    assert fetched.received == len(BODY)
    assert notes == [f"w.pth: the connection to 127.0.0.1:{http_server.port} closed at byte 3,072 of 10,240; "
                     f"try 2 of 3 from byte 3,072"]


def test_cut_connection_resumes_on_the_next_call(http_server, tmp_path):
    http_server.serve("w.pth", BODY, cut_after=4096, cuts=1)
    target = tmp_path / "w.pth"
    with pytest.raises(FetchError) as error:
        download(http_server.url("w.pth"), target, Expected(sha256=SHA), tries=1)
    assert str(error.value) == (
        f"download of {http_server.url('w.pth')} failed after 1 try (the connection to 127.0.0.1:{http_server.port} "
        f"closed at byte 4,096 of 10,240); the 4,096 of 10,240 bytes that arrived are kept in {target}.partial: run "
        f"fetch again to resume from there"
    )
    assert not target.exists() and partial_path(target).stat().st_size == 4096
    fetched = download(http_server.url("w.pth"), target, Expected(sha256=SHA))
    assert target.read_bytes() == BODY
    assert (fetched.action, fetched.resumed_from, fetched.received) == ("resumed", 4096, len(BODY) - 4096)
    assert http_server.ranges_asked("w.pth")[-1] == "bytes=4096-"
    assert leftovers(tmp_path) == ["w.pth"]


def test_server_without_range_support_restarts_cleanly(http_server, tmp_path):
    http_server.serve("w.pth", BODY, ranges=False, cut_after=5000, cuts=1)
    target = tmp_path / "w.pth"
    with pytest.raises(FetchError, match="kept in"):
        download(http_server.url("w.pth"), target, Expected(sha256=SHA), tries=1)
    notes = []
    fetched = download(http_server.url("w.pth"), target, Expected(sha256=SHA), log=notes.append)
    assert target.read_bytes() == BODY, "the whole file sent again must not be appended to the first 5000 bytes"
    assert fetched.action == "downloaded" and fetched.received == len(BODY)
    assert http_server.ranges_asked("w.pth") == [None, "bytes=5000-"]
    assert notes == ["w.pth: the server sent the whole file (it ignores range requests, or the file changed): "
                     "starting again from byte 0"]


def test_file_changed_on_the_server_is_not_glued_to_the_old_bytes(http_server, tmp_path):
    old = http_server.serve("w.pth", b"o" * 8000, cut_after=3000, cuts=1)
    target = tmp_path / "w.pth"
    with pytest.raises(FetchError):
        download(http_server.url("w.pth"), target, tries=1)
    http_server.serve("w.pth", BODY, etag='"v2"')
    download(http_server.url("w.pth"), target, Expected(sha256=SHA))
    assert target.read_bytes() == BODY
    assert http_server.requests[-1].if_range == old.etag, "If-Range carries the old ETag, so the server sends all"


def test_wrong_hash_is_kept_aside_not_installed(http_server, tmp_path):
    http_server.serve("w.pth", BODY)
    target = tmp_path / "w.pth"
    with pytest.raises(FetchError) as error:
        download(http_server.url("w.pth"), target, Expected(sha256="63fe2227", authority="its file name carries it"))
    aside = [path for path in tmp_path.iterdir() if path.name.startswith("w.pth.partial.damaged-")]
    assert len(aside) == 1 and aside[0].read_bytes() == BODY, "the bad bytes are kept for inspection"
    assert str(error.value) == (
        f"{http_server.url('w.pth')} sent a file that fails its check: its sha256 is {SHA}, expected one starting "
        f"63fe2227 (its file name carries it); kept aside as {aside[0]}, nothing installed "
        f"at {target}. The server may have sent another file (an error page, a new version): open the URL in a "
        f"browser to see, then run fetch again"
    )
    assert not target.exists() and not partial_path(target).exists()


def test_announced_size_that_differs_from_the_expected_one_is_refused_before_downloading(http_server, tmp_path):
    http_server.serve("glove.zip", BODY)
    target = tmp_path / "glove.zip"
    with pytest.raises(FetchError) as error:
        download(http_server.url("glove.zip"), target, Expected(size=2_176_768_927, authority="Stanford's size"))
    assert str(error.value) == (
        f"{http_server.url('glove.zip')} offers 10,240 bytes, expected 2,176,768,927 bytes (Stanford's size): the file "
        f"there is not the one this harness knows; nothing was saved at {target}"
    )
    assert leftovers(tmp_path) == []


def test_404_is_one_line_naming_the_url_and_leaves_no_folder(http_server, tmp_path):
    target = tmp_path / "data" / "glove" / "glove.zip"
    with pytest.raises(FetchError) as error:
        download(http_server.url("moved.zip"), target)
    assert str(error.value) == (
        f"HTTP 404 Not Found for {http_server.url('moved.zip')}: the file is not (or no longer) there; if it has "
        f"moved, download it by hand and put it at {target}"
    )
    assert "\n" not in str(error.value)
    assert leftovers(tmp_path) == [], "folders made for a download that failed are removed again"


def test_no_network_is_one_line(closed_port, tmp_path):
    url = f"http://127.0.0.1:{closed_port}/w.pth"
    with pytest.raises(FetchError) as error:
        download(url, tmp_path / "w.pth", tries=2, wait=0)
    assert str(error.value) == (
        f"cannot reach 127.0.0.1:{closed_port} (Connection refused) after 2 tries: no network? Connect this machine, "
        f"or download {url} elsewhere and put it at {tmp_path / 'w.pth'}"
    )
    assert leftovers(tmp_path) == []


def test_busy_server_is_asked_again(http_server, tmp_path):
    http_server.serve("w.pth", BODY, status=503, status_times=1)
    notes = []
    download(http_server.url("w.pth"), tmp_path / "w.pth", Expected(sha256=SHA), wait=0, log=notes.append)
    assert (tmp_path / "w.pth").read_bytes() == BODY
    assert notes == ["w.pth: HTTP 503 Service Unavailable; try 2 of 3 from byte 0"]


def test_present_file_with_the_wrong_hash_is_not_taken_for_the_right_one(http_server, tmp_path):
    target = tmp_path / "w.pth"
    target.write_bytes(b"someone else's file")
    digest = hashlib.sha256(b"someone else's file").hexdigest()
    with pytest.raises(FetchError) as error:
        download(http_server.url("w.pth"), target, Expected(sha256=SHA))
    assert str(error.value) == (
        f"{target} is already there, but its sha256 is {digest}, expected {SHA}: it is not the file "
        f"{http_server.url('w.pth')} serves; move it away (or delete it) and run fetch again"
    )
    assert target.read_bytes() == b"someone else's file" and http_server.requests == []


def test_partial_of_another_url_is_not_resumed(http_server, tmp_path):
    http_server.serve("w.pth", BODY)
    target = tmp_path / "w.pth"
    partial_path(target).write_bytes(b"x" * 100)
    partial_path(target).with_name("w.pth.partial.json").write_text(json.dumps({"url": "http://elsewhere/w.pth"}))
    download(http_server.url("w.pth"), target, Expected(sha256=SHA))
    assert target.read_bytes() == BODY and http_server.ranges_asked("w.pth") == [None]


def test_complete_partial_answered_416_is_installed(http_server, tmp_path):
    http_server.serve("w.pth", BODY)
    target = tmp_path / "w.pth"
    partial_path(target).write_bytes(BODY)  # e.g. killed after the last byte, before the rename
    partial_path(target).with_name("w.pth.partial.json").write_text(json.dumps({"url": http_server.url("w.pth")}))
    fetched = download(http_server.url("w.pth"), target, Expected(sha256=SHA))
    assert target.read_bytes() == BODY and fetched.received == 0
    assert http_server.ranges_asked("w.pth") == [f"bytes={len(BODY)}-"]


def test_two_fetches_of_one_file_are_kept_apart(http_server, tmp_path):
    http_server.serve("w.pth", BODY)
    target = tmp_path / "w.pth"
    with open(partial_path(target), "ab") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(FetchError) as error:
            download(http_server.url("w.pth"), target)
    assert str(error.value) == (
        f"{target}.partial is being written by another fetch (it holds the file's lock): wait for it to finish, then "
        f"run fetch again"
    )
    assert http_server.requests == []


def test_disk_full_before_downloading_says_how_much_is_needed_where(http_server, tiny_disk):
    """A real full disk: a 64 KiB tmpfs and a 200 KiB file whose length the server announces."""
    http_server.serve("big.bin", bytes(200 * 1024))
    free = human_bytes(shutil.disk_usage(tiny_disk).free)  # 64 KiB less what tmpfs keeps for itself
    with pytest.raises(FetchError) as error:
        download(http_server.url("big.bin"), tiny_disk / "big.bin")
    assert str(error.value) == (
        f"not enough free space for big.bin: it needs 200.0 KiB more in {tiny_disk} ({free} free); free space "
        f"there or choose another place for it, then run fetch again (the 0 bytes fetched so far are kept in "
        f"big.bin.partial)"
    )
    assert leftovers(tiny_disk) == []


def test_disk_full_mid_download_on_a_real_tiny_disk(http_server, tiny_disk):
    """No announced length, so nothing can be checked ahead: the tmpfs runs out while writing (a real ENOSPC)."""
    http_server.serve("big.bin", bytes(200 * 1024), length=False)
    target = tiny_disk / "big.bin"
    with pytest.raises(FetchError) as error:
        download(http_server.url("big.bin"), target)
    kept = partial_path(target).stat().st_size
    assert 0 < kept <= 64 * 1024 and not target.exists()
    assert str(error.value) == (
        f"the disk filled up while downloading big.bin: it needs more space in {tiny_disk} (0 bytes free); free space "
        f"there or choose another place for it, then run fetch again (the {kept:,} bytes fetched so far are kept in "
        f"big.bin.partial)"
    )


def test_disk_full_mid_download_is_reported_with_the_space_still_needed(http_server, tmp_path, monkeypatch):
    """Simulated (runs without root): the write raises ENOSPC once 4 KiB are on disk, as a full disk does."""
    http_server.serve("w.pth", BODY)
    real_write = transfer._write_all

    def write_until_full(sink, chunk):
        room = 4096 - os.fstat(sink.fileno()).st_size
        if len(chunk) > room:
            real_write(sink, chunk[:room])
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(sink, chunk)

    monkeypatch.setattr(transfer, "_write_all", write_until_full)
    target = tmp_path / "w.pth"
    with pytest.raises(FetchError) as error:
        download(http_server.url("w.pth"), target, Expected(sha256=SHA))
    message = str(error.value)
    expected_start = f"the disk filled up while downloading w.pth: it needs 6.0 KiB more in {tmp_path} ("
    assert message.startswith(expected_start), message
    assert message.endswith("free); free space there or choose another place for it, then run fetch again (the 4,096 "
                            "bytes fetched so far are kept in w.pth.partial)"), message
    monkeypatch.setattr(transfer, "_write_all", real_write)
    assert download(http_server.url("w.pth"), target, Expected(sha256=SHA)).resumed_from == 4096
    assert target.read_bytes() == BODY


def test_killed_download_leaves_no_file_at_the_final_path(http_server, tmp_path):
    """SIGKILL mid-body (no cleanup code runs): only the .partial exists; the next call resumes it."""
    http_server.serve("w.pth", BODY * 4, chunk_delay=0.05)  # 40 KiB at ~20 KiB/s
    target = tmp_path / "w.pth"
    script = (f"from dualvgr.fetch.transfer import download; download({http_server.url('w.pth')!r}, "
              f"{str(target)!r})")
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 60
        while not (partial_path(target).exists() and partial_path(target).stat().st_size >= 4096):
            assert child.poll() is None, "the download ended before it could be killed"
            assert time.monotonic() < deadline, "no bytes arrived within 60 s"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    kept = partial_path(target).stat().st_size
    assert not target.exists(), "a killed download must never look complete"
    assert 0 < kept < len(BODY) * 4
    http_server.files["w.pth"].chunk_delay = 0
    fetched = download(http_server.url("w.pth"), target, Expected(sha256=hashlib.sha256(BODY * 4).hexdigest()))
    assert fetched.resumed_from == kept and target.read_bytes() == BODY * 4


def test_interrupt_keeps_the_bytes_and_says_how_to_resume(http_server, tmp_path, monkeypatch):
    http_server.serve("w.pth", BODY, cut_after=2048, cuts=1)
    target = tmp_path / "w.pth"

    def interrupted(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(transfer.time, "sleep", interrupted)  # Ctrl-C while waiting to retry
    with pytest.raises(FetchError) as error:
        download(http_server.url("w.pth"), target)
    assert str(error.value) == (
        f"interrupted while downloading {http_server.url('w.pth')}: 2,048 bytes kept in {target}.partial; run fetch "
        f"again to resume"
    )
