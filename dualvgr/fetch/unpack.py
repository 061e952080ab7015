"""Turn a downloaded archive into what the experiment reads, atomically: one file of a zip, or a tar's folder.

- :func:`unpack_member`: GloVe's zip holds one text file; ``questions.glove`` may name that ``.txt`` (the
  questions stage also streams the ``.zip`` itself, which saves the unpacked 5.6 GB). The member is written to
  ``<target>.partial`` and renamed when zipfile's CRC-32 check at its end has passed.
- :func:`unpack_folder`: MSVD's ``YouTubeClips.tar`` holds one folder ``YouTubeClips/`` of ``.avi`` clips. It is
  extracted into a hidden staging folder beside the target and renamed into place when complete; members outside
  that folder, absolute paths, ``..`` and links are refused.

An archive that cannot be read is set aside (``<name>.damaged-<time>``) so that the next fetch downloads it anew;
the archive is otherwise kept (it may be the user's own copy).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from dualvgr.fetch.files import CHUNK, DISK_FULL, FetchError, human_bytes, partial_path

def unpack_member(archive: Path, member: str, target: Path, *, progress: bool = False) -> int:
    """Write ``member`` of the zip ``archive`` to ``target``; returns its size."""
    archive, target = Path(archive), Path(target)
    partial = partial_path(target)
    try:
        with zipfile.ZipFile(archive) as zipped:
            try:
                info = zipped.getinfo(member)
            except KeyError:
                names = ", ".join(zipped.namelist()[:3]) or "nothing"
                raise _damaged(archive, f"it holds no {member} (it holds {names})") from None
            _check_space(info.file_size, target.parent, target.name)
            with zipped.open(info) as source, open(partial, "wb") as sink, _bar(info.file_size, target.name,
                                                                                 progress) as bar:
                for chunk in iter(lambda: source.read(CHUNK), b""):
                    sink.write(chunk)
                    bar.update(len(chunk))
                sink.flush()
                os.fsync(sink.fileno())
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        partial.unlink(missing_ok=True)
        raise _damaged(archive, f"not a readable zip ({error})") from None
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise _write_error(error, info_size=_size_or_none(archive, member), where=target.parent,
                           name=target.name) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return info.file_size


def unpack_folder(archive: Path, folder: str, target: Path, *, progress: bool = False) -> int:
    """Extract the tar ``archive``'s top folder ``folder`` to ``target`` (any name); returns the bytes written."""
    archive, target = Path(archive), Path(target)
    if target.exists() and any(target.iterdir()):
        raise FetchError(
            f"{target} exists and is not empty, but the experiment finds no videos there: move it away, then run "
            f"fetch again to unpack {archive.name} there"
        )
    staging = target.parent / f".{target.name}.unpacking"
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted unpack: start it again
    total = 0
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            _check_members(archive, members, folder)
            total = sum(member.size for member in members if member.isfile())
            _check_space(total, target.parent, target.name)
            with _bar(total, target.name, progress) as bar:
                for member in members:
                    tar.extract(member, staging, **_SAFE)
                    bar.update(member.size if member.isfile() else 0)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / folder, target)
    except (tarfile.TarError, EOFError) as error:
        raise _damaged(archive, f"not a readable tar ({error})") from None
    except OSError as error:
        raise _write_error(error, info_size=total, where=target.parent, name=target.name) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return total


# Python's own guard against archives that write outside the folder (3.12 semantics, backported to 3.10.12+).
_SAFE = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


def _check_members(archive: Path, members: list[tarfile.TarInfo], folder: str) -> None:
    for member in members:
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
            raise _damaged(archive, f"it holds {member.name!r}, which is not a plain file or folder inside it")
        if name.parts[:1] != (folder,):
            raise FetchError(
                f"{archive} holds {member.name!r} outside the folder {folder}/ that this harness expects: it is not "
                f"the archive the source promises; unpack it by hand"
            )
    if not any(member.isfile() for member in members):
        raise _damaged(archive, f"its folder {folder}/ holds no files")


def _check_space(needed: int, where: Path, name: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(where).free
    if needed > free:
        raise FetchError(
            f"not enough free space to unpack {name}: it needs {human_bytes(needed)} in {where} ({human_bytes(free)} "
            f"free); free space there and run fetch again"
        )


def _write_error(error: OSError, *, info_size: int | None, where: Path, name: str) -> FetchError:
    if error.errno in DISK_FULL:
        needed = f"{human_bytes(info_size)}" if info_size else "more space"
        return FetchError(
            f"the disk filled up while unpacking {name}: it needs {needed} in {where} "
            f"({human_bytes(shutil.disk_usage(where).free)} free once the unfinished copy is removed); free space "
            f"there and run fetch again"
        )
    return FetchError(f"cannot unpack {name} into {where}: {error.strerror or error}")


def _damaged(archive: Path, reason: str) -> FetchError:
    from dualvgr.train.resume import set_aside  # one set-aside convention for every damaged file

    aside = set_aside(archive, reason)
    return FetchError(
        f"{archive} cannot be unpacked: {reason}; set aside as {aside.moved_to.name}: run fetch again to download "
        f"it anew"
    )


def _size_or_none(archive: Path, member: str) -> int | None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            return zipped.getinfo(member).file_size
    except (OSError, KeyError, zipfile.BadZipFile):
        return None


def _bar(total: int, name: str, progress: bool) -> tqdm:
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"unpack {name}",
                disable=not progress, leave=False)
