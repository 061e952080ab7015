"""One HTTP download that is resumable, checked and atomic (what ``dualvgr fetch`` does for each input file).

- **Atomic.** The bytes arrive in ``<name>.partial`` beside the final path (with ``<name>.partial.json``: the URL
  and the server's validator); the final name appears only through ``os.replace`` after the check passed, so a
  killed or failed download never looks complete. A ``flock`` on the partial file keeps two fetches of one file
  apart.
- **Resumable.** A later call asks only for the missing bytes (``Range: bytes=N-``) with ``If-Range`` carrying
  the validator, so a file that changed on the server comes back whole (200) instead of being glued to the old
  bytes. A server that ignores ``Range`` also answers 200: the partial file is emptied and the download restarts
  from byte 0. A connection cut mid-body (or a body shorter than announced) is retried a few times, each time
  from where it stopped; what arrived is kept for the next call.
- **Checked.** sha256 where the source publishes one (or a prefix of it, as torchvision's file names carry),
  otherwise the size; always the length the server announced. A file that fails its check is set aside under
  ``<name>.partial.damaged-<time>`` (kept for inspection, never at the final path).
- **One line per failure**, as every :class:`~dualvgr.core.errors.HarnessError`: HTTP 404 and other refusals,
  no network, a full disk (how much is needed, where), an interrupted download (how to resume).
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from tqdm.auto import tqdm

from dualvgr import __version__
from dualvgr.fetch.files import (
    CHUNK, DISK_FULL, Expected, FetchError, check_file, human_bytes, partial_path,
)

USER_AGENT = f"dualvgr-fetch/{__version__}"
# Answers that say "try again later" rather than "no such file".
TRANSIENT_HTTP = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Fetched:
    """What :func:`download` did: ``present`` (already there and checked), ``downloaded`` or ``resumed``."""

    path: Path
    action: str
    received: int = 0  # bytes transferred by this call
    resumed_from: int = 0


class _Transient(Exception):
    """A failure worth another try (cut connection, server busy); ``connect`` when nothing was reached."""

    def __init__(self, reason: str, *, connect: bool = False):
        super().__init__(reason)
        self.connect = connect


def _meta_path(partial: Path) -> Path:
    return partial.with_name(partial.name + ".json")


def download(
    url: str,
    path: str | os.PathLike,
    expected: Expected = Expected(),
    *,
    progress: bool = False,
    tries: int = 3,
    wait: float = 1.0,
    timeout: float = 30.0,
    log: Callable[[str], None] = lambda message: None,
) -> Fetched:
    """Make ``path`` hold the checked file from ``url``, resuming what an earlier call left in ``<path>.partial``."""
    path = Path(path)
    if path.exists():
        problem = check_file(path, expected, progress=progress)
        if problem:
            raise FetchError(
                f"{path} is already there, but {problem}{expected.said_by}: it is not the file {url} serves; "
                f"move it away (or delete it) and run fetch again"
            )
        return Fetched(path, "present")
    with _folder_for(path), _locked(partial_path(path)) as sink:
        if path.exists():  # another fetch finished it between the first look and taking the lock
            return Fetched(path, "present")
        job = _Job(url, path, partial_path(path), sink, expected, timeout, progress, log)
        job.start()
        try:
            for attempt in range(1, tries + 1):
                try:
                    job.transfer()
                    break
                except _Transient as failure:
                    if attempt == tries:
                        raise FetchError(job.gave_up(failure, tries)) from None
                    log(f"{path.name}: {failure}; try {attempt + 1} of {tries} from byte {job.size:,}")
                    time.sleep(wait * attempt)
        except KeyboardInterrupt:
            raise FetchError(
                f"interrupted while downloading {url}: {job.size:,} bytes kept in {job.partial}; run fetch again to "
                f"resume"
            ) from None
        return job.finish()


@contextmanager
def _folder_for(path: Path) -> Iterator[None]:
    """Create ``path``'s folder; if nothing is left in the folders made here when the download fails, remove them."""
    made = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FetchError(f"cannot create the folder {path.parent} for {path.name}: {error.strerror}") from error
    try:
        yield
    except BaseException:
        for folder in made:  # innermost first
            try:
                folder.rmdir()
            except OSError:
                break
        raise


@contextmanager
def _locked(partial: Path) -> Iterator:
    # Unbuffered: a write that fills the disk fails at the write, and the file holds exactly what was written.
    sink = open(partial, "ab", buffering=0)
    try:
        fcntl.flock(sink.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sink.close()
        raise FetchError(
            f"{partial} is being written by another fetch (it holds the file's lock): wait for it to finish, then "
            f"run fetch again"
        ) from None
    try:
        yield sink
    finally:
        if partial.exists() and os.path.samefile(partial, sink.fileno()) and partial.stat().st_size == 0:
            partial.unlink()  # nothing arrived: leave no stray file behind
            _meta_path(partial).unlink(missing_ok=True)
        sink.close()


class _Job:
    """The state of one download across tries: the partial file, its hash so far, the announced length."""

    def __init__(self, url, path, partial, sink, expected, timeout, progress, log):
        self.url, self.path, self.partial, self.sink = url, path, partial, sink
        self.expected, self.timeout, self.progress, self.log = expected, timeout, progress, log
        self.meta_path = _meta_path(partial)
        self.host = urlsplit(url).netloc or url
        self.total: int | None = None
        self.received = 0
        self.resumed_from = 0
        self.hasher = hashlib.sha256()
        self._fresh_meta: dict | None = None

    @property
    def size(self) -> int:
        return os.fstat(self.sink.fileno()).st_size

    def start(self) -> None:
        meta = self._read_meta()
        if self.size and meta.get("url") != self.url:
            self.log(f"{self.partial.name}: left by a download of another URL; starting again")
            self._restart()
            return
        self.total = meta.get("total")
        self.resumed_from = self.size
        if self.size:
            with open(self.partial, "rb") as handle:  # hash what an earlier call fetched
                for chunk in iter(lambda: handle.read(CHUNK), b""):
                    self.hasher.update(chunk)

    def transfer(self) -> None:
        """One request for the missing bytes; returns when the body is complete, else raises."""
        offset = self.size
        if self.total is not None and offset == self.total:
            return
        if self.total is not None and offset > self.total:
            self._restart()
            offset = 0
        response = self._request(offset)
        if response is None:  # 416: the partial file already holds the whole file
            return
        with response:
            self._accept(response, offset)
            self._check_announced()
            self._check_space()
            if self._fresh_meta:  # written once the space is known to suffice: what a resumed request needs
                self._write_meta(self._fresh_meta)
                self._fresh_meta = None
            self._stream(response)
        if self.total is not None and self.size < self.total:
            raise _Transient(f"the connection to {self.host} closed at byte {self.size:,} of {self.total:,}")

    def finish(self) -> Fetched:
        size = self.size
        if self.total is not None and size != self.total:
            raise FetchError(f"{self.url}: {size:,} bytes arrived, the server announced {self.total:,}")
        problem = self.expected.mismatch(size, self.hasher.hexdigest())
        if problem:
            from dualvgr.train.resume import set_aside  # one set-aside convention for every damaged file

            aside = set_aside(self.partial, problem)
            self.meta_path.unlink(missing_ok=True)
            raise FetchError(
                f"{self.url} sent a file that fails its check: {problem}{self.expected.said_by}; kept aside "
                f"as {aside.moved_to}, nothing installed at {self.path}. The server may have sent another file (an "
                f"error page, a new version): open the URL in a browser to see, then run fetch again"
            )
        try:
            os.fsync(self.sink.fileno())
        except OSError as error:
            raise self._disk_error(error) from error
        os.replace(self.partial, self.path)
        self.meta_path.unlink(missing_ok=True)
        action = "resumed" if self.resumed_from else "downloaded"
        return Fetched(self.path, action, self.received, self.resumed_from)

    def gave_up(self, failure: _Transient, tries: int) -> str:
        tried = "1 try" if tries == 1 else f"{tries} tries"
        if failure.connect and not self.size:
            return (
                f"cannot reach {self.host} ({failure}) after {tried}: no network? Connect this machine, or "
                f"download {self.url} elsewhere and put it at {self.path}"
            )
        of_total = f" of {self.total:,}" if self.total is not None else ""
        return (
            f"download of {self.url} failed after {tried} ({failure}); the {self.size:,}{of_total} bytes that "
            f"arrived are kept in {self.partial}: run fetch again to resume from there"
        )

    # -- one request ------------------------------------------------------------------------------------------

    def _request(self, offset: int):
        """The response for the bytes from ``offset`` on; None when a 416 says the partial file is complete."""
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        validator = self._read_meta().get("validator")
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if validator:
                headers["If-Range"] = validator
        try:
            return urlopen(Request(self.url, headers=headers), timeout=self.timeout)
        except HTTPError as error:
            error.close()
            if error.code == 416 and offset:
                if _content_range(error.headers.get("Content-Range"))[1] == offset:
                    self.total = offset
                    return None
                self.log(f"{self.path.name}: the server refuses to resume at byte {offset:,}; starting again")
                self._restart()
                raise _Transient("range not satisfiable") from None
            if error.code in TRANSIENT_HTTP:
                raise _Transient(f"HTTP {error.code} {error.reason}") from None
            raise FetchError(_refusal(error, self.url, self.path)) from None
        except URLError as error:
            reason = error.reason
            if isinstance(reason, socket.gaierror):
                raise FetchError(
                    f"cannot reach {self.host} (its name does not resolve: {reason.strerror}): no network? Connect "
                    f"this machine, or download {self.url} elsewhere and put it at {self.path}"
                ) from None
            raise _Transient(getattr(reason, "strerror", None) or str(reason), connect=True) from None
        except (TimeoutError, ConnectionError, http.client.HTTPException) as error:
            raise _Transient(f"{type(error).__name__}: {error}", connect=True) from None

    def _accept(self, response, offset: int) -> None:
        """Decide where the body goes: appended (206 from ``offset``) or from byte 0 (200, or a 206 elsewhere)."""
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start == offset:
                self.total = total if total is not None else self.total
                return
            self.log(f"{self.path.name}: asked for byte {offset:,}, the server sent from {start}; starting again")
            self._restart()
            raise _Transient(f"the server answered a range from byte {start}, not {offset:,}")
        if response.status != 200:
            raise FetchError(f"{self.url} answered HTTP {response.status} {response.reason}, expected 200 or 206")
        if offset:
            self.log(
                f"{self.path.name}: the server sent the whole file (it ignores range requests, or the file "
                f"changed): starting again from byte 0"
            )
            self._restart()
        length = response.headers.get("Content-Length")
        self.total = int(length) if length and length.isdigit() else None
        validator = response.headers.get("ETag")
        if not validator or validator.startswith("W/"):  # If-Range accepts only a strong ETag or a date
            validator = response.headers.get("Last-Modified")
        self._fresh_meta = {"url": self.url, "validator": validator, "total": self.total}

    def _check_announced(self) -> None:
        offered = self.total
        if self.expected.size is not None and offered is not None and offered != self.expected.size:
            self._restart()
            raise FetchError(
                f"{self.url} offers {offered:,} bytes, expected {self.expected.describe()}: the file there is not "
                f"the one this harness knows; nothing was saved at {self.path}"
            )

    def _check_space(self) -> None:
        total = self.total if self.total is not None else self.expected.size
        if total is None:
            return
        needed = total - self.size
        free = shutil.disk_usage(self.partial.parent).free
        if needed > free:
            raise FetchError(self._no_space(needed, free))

    def _stream(self, response) -> None:
        bar = tqdm(total=self.total, initial=self.size, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=self.path.name, disable=not self.progress, leave=False)
        with bar:
            while True:
                try:
                    chunk = response.read1(CHUNK)  # what has arrived: a cut or a kill loses nothing on disk
                except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as error:
                    raise _Transient(f"{type(error).__name__}: {error}".rstrip(": ")) from None
                if not chunk:
                    return
                try:
                    _write_all(self.sink, chunk)
                except OSError as error:
                    raise self._disk_error(error) from error
                self.hasher.update(chunk)
                self.received += len(chunk)
                bar.update(len(chunk))

    # -- bookkeeping ------------------------------------------------------------------------------------------

    def _restart(self) -> None:
        self.sink.truncate(0)
        self.hasher = hashlib.sha256()
        self.resumed_from = 0
        self.total = None
        self.meta_path.unlink(missing_ok=True)

    def _read_meta(self) -> dict:
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    def _write_meta(self, meta: dict) -> None:
        try:
            self.meta_path.write_text(json.dumps(meta), encoding="utf-8")
        except OSError as error:
            raise self._disk_error(error) from error

    def _disk_error(self, error: OSError) -> FetchError:
        if error.errno in DISK_FULL:
            free = shutil.disk_usage(self.partial.parent).free
            total = self.total if self.total is not None else self.expected.size
            needed = total - self.size if total is not None else None
            return FetchError(self._no_space(needed, free, full=True))
        return FetchError(f"cannot write {self.partial}: {error.strerror or error}")

    def _no_space(self, needed: int | None, free: int, *, full: bool = False) -> str:
        how_much = f"{human_bytes(needed)} more" if needed is not None else "more space"
        what = "the disk filled up while downloading" if full else "not enough free space for"
        return (
            f"{what} {self.path.name}: it needs {how_much} in {self.partial.parent} ({human_bytes(free)} free); free "
            f"space there or choose another place for it, then run fetch again (the {self.size:,} bytes fetched so "
            f"far are kept in {self.partial.name})"
        )


def _write_all(sink, chunk: bytes) -> None:
    view = memoryview(chunk)
    while view:
        written = sink.write(view)
        view = view[written:]


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """``(first byte, total length)`` of ``bytes 100-199/1000`` (or ``bytes */1000``); None where unknown."""
    if not header or not header.startswith("bytes "):
        return None, None
    span, _, total = header[len("bytes "):].partition("/")
    first = span.split("-", 1)[0]
    return (int(first) if first.isdigit() else None), (int(total) if total.isdigit() else None)


def _refusal(error: HTTPError, url: str, path: Path) -> str:
    if error.code in (404, 410):
        return (
            f"HTTP {error.code} {error.reason} for {url}: the file is not (or no longer) there; if it has moved, "
            f"download it by hand and put it at {path}"
        )
    return (
        f"HTTP {error.code} {error.reason} for {url}: the server refuses it; download it by hand and put it at {path}"
    )
