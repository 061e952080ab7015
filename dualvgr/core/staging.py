"""Build beside, then swap: a stage rerun from scratch never destroys the output it replaces before it is done.

A stage rerun from scratch (``--force``, or outputs that changed since their run) writes into a staging folder
beside its output folder, ``<fingerprint>.staging-<pid>-<pid namespace>-<host>``. Only when the stage has
returned and its outputs are hashed is the old folder renamed aside (``.replaced-...``), the staging folder
renamed into place and the old one deleted; the outputs recorded in MLflow carry the final paths. So an
interrupted rebuild (Ctrl-C, SIGTERM, kill -9, a crash) leaves the previous output, and its cache hit, exactly as
they were. A run that is not from scratch works in the output folder itself, as before: a killed training
resumes there.

A staging folder is never resumed from: every later run of the same stage and fingerprint (a cache hit too)
first deletes the staging folders of processes that are gone (saying so), and puts back an old folder that a swap
cut short had renamed aside, before it looks for a cache hit. Only
the stage's own folder is staged (the data stage's dataset files and the report's folder live elsewhere). A stage
must not write its folder's absolute path into an output, since the folder is renamed: :func:`check_no_build_path`
fails such a run with the file named.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from dualvgr.core.errors import StageError
from dualvgr.core.fingerprint import StatCache
from dualvgr.core.runstate import ProcessIdentity

_KINDS = ("staging", "replaced")
_SCAN_LIMIT = 64 * 2**20  # files up to this size are checked for the build folder's path
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Build:
    """Where a stage writes (``work_dir``) and where its output ends up (``out_dir``); the same unless staged."""

    out_dir: Path
    work_dir: Path

    @property
    def staged(self) -> bool:
        return self.work_dir != self.out_dir

    def final(self, path: str | Path) -> Path:
        """The path a file of the build has once the build is swapped in (others are unchanged)."""
        path = Path(path)
        return self.out_dir / path.relative_to(self.work_dir) if path.is_relative_to(self.work_dir) else path


def prepare(out_dir: Path, *, from_scratch: bool) -> Build:
    """The folder to build in: ``out_dir`` itself, or a fresh staging folder beside it when ``from_scratch``."""
    out_dir = Path(out_dir).resolve()
    if not from_scratch:
        out_dir.mkdir(parents=True, exist_ok=True)
        return Build(out_dir, out_dir)
    staging = sibling(out_dir, "staging", ProcessIdentity.current())
    if staging.exists():
        shutil.rmtree(staging)  # this very process's own, from an earlier failed attempt
    staging.mkdir(parents=True)
    return Build(out_dir, staging)


def swap_in(build: Build, cache: StatCache) -> None:
    """Put a completed build in place of the old output (two renames; the old folder is deleted after)."""
    if not build.staged:
        return
    replaced = None
    if build.out_dir.exists():
        replaced = sibling(build.out_dir, "replaced", ProcessIdentity.current())
        os.rename(build.out_dir, replaced)
    os.rename(build.work_dir, build.out_dir)
    cache.moved(build.work_dir, build.out_dir)
    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)


def discard(build: Build) -> None:
    """A build that did not complete: its staging folder goes (the old output was never touched)."""
    if build.staged:
        shutil.rmtree(build.work_dir, ignore_errors=True)


def check_no_build_path(stage: str, build: Build, paths: Iterable[Path]) -> None:
    """Fail when an output of a staged build contains the staging folder's path, which the swap makes dangle."""
    if not build.staged:
        return
    needle = str(build.work_dir).encode()
    for path in (Path(p).resolve() for p in paths):
        if not path.is_relative_to(build.work_dir):
            continue  # written elsewhere (the data stage's dataset files): not renamed
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.stat().st_size <= _SCAN_LIMIT and needle in file.read_bytes():
                raise StageError(
                    f"stage {stage} wrote the path of its build folder {build.work_dir} into {build.final(file).name}; "
                    f"that folder is renamed to {build.out_dir} when the run completes, so the path would point "
                    f"nowhere: write paths relative to the stage's out_dir instead")


def sibling(out_dir: Path, kind: str, process: ProcessIdentity) -> Path:
    """``<out_dir>.<kind>-<pid>-<place>``: the folder names the process that made it."""
    return out_dir.with_name(f"{out_dir.name}.{kind}-{process.pid}-{_place(process)}")


def _place(process: ProcessIdentity) -> str:
    """Where a pid means something, as a name: "<pid namespace number>-<host>"."""
    return f"{re.sub(r'[^0-9]', '', process.namespace)}-{_UNSAFE.sub('_', process.host)}"


def leftover(folder: Path, out_dir: Path) -> tuple[str, int] | None:
    """(kind, pid) for a staging or replaced folder of ``out_dir`` made by a process of this host and pid
    namespace; None for any other name, and for folders of other machines (not ours to judge)."""
    match = re.fullmatch(re.escape(out_dir.name) + r"\.(staging|replaced)-(\d+)-(\d*)-(.+)", folder.name)
    if match is None:
        return None
    kind, pid, namespace, host = match.groups()
    return (kind, int(pid)) if f"{namespace}-{host}" == _place(ProcessIdentity.current()) else None


def clear_leftovers(out_dir: Path, say: Callable[[str], None]) -> None:
    """Staging folders of gone processes are deleted; a replaced folder is put back where its swap was cut short."""
    if not out_dir.parent.is_dir():
        return
    here = ProcessIdentity.current()
    for folder in sorted(out_dir.parent.glob(f"{glob_escape(out_dir.name)}.*-*")):
        found = leftover(folder, out_dir)
        if found is None:
            continue
        kind, pid = found
        if pid == here.pid or not ProcessIdentity(here.host, pid, here.namespace).is_gone():
            continue  # a live process may still be building there
        if kind == "replaced" and not out_dir.exists():
            os.rename(folder, out_dir)
            say(f"[{out_dir.parent.name}] put back {out_dir.name}: process {pid} died while swapping a rebuild in")
            continue
        shutil.rmtree(folder, ignore_errors=True)
        what = "an interrupted rebuild (never resumed from)" if kind == "staging" else "an old output"
        say(f"[{out_dir.parent.name}] removed {folder.name}, {what} left by process {pid}, which is gone")


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)
