"""Archives turned into what the experiment reads: whole or not at all, and a damaged archive set aside."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from dualvgr.fetch.files import FetchError
from dualvgr.fetch.unpack import unpack_folder, unpack_member

GLOVE_LINES = b"the 0.1 0.2 0.3\nof 0.4 0.5 0.6\n"


def make_zip(path: Path, members: dict[str, bytes], *, compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    return path


def make_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_zip_member_is_unpacked_whole(tmp_path):
    archive = make_zip(tmp_path / "glove.840B.300d.zip", {"glove.840B.300d.txt": GLOVE_LINES})
    size = unpack_member(archive, "glove.840B.300d.txt", tmp_path / "glove.840B.300d.txt")
    assert (tmp_path / "glove.840B.300d.txt").read_bytes() == GLOVE_LINES and size == len(GLOVE_LINES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["glove.840B.300d.txt", "glove.840B.300d.zip"], \
        "the archive is kept and no .partial is left"


def test_zip_with_a_bad_crc_is_set_aside_and_nothing_is_installed(tmp_path):
    archive = make_zip(tmp_path / "g.zip", {"g.txt": GLOVE_LINES}, compression=zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    data[data.index(b"0.4")] = ord("9")  # one flipped byte inside the stored member
    archive.write_bytes(bytes(data))
    with pytest.raises(FetchError) as error:
        unpack_member(archive, "g.txt", tmp_path / "g.txt")
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("g.zip.damaged-")]
    assert len(aside) == 1
    assert str(error.value) == (
        f"{archive} cannot be unpacked: not a readable zip (Bad CRC-32 for file 'g.txt'); set aside as "
        f"{aside[0].name}: run fetch again to download it anew"
    )
    assert not (tmp_path / "g.txt").exists() and not (tmp_path / "g.txt.partial").exists()


def test_zip_without_the_member_is_set_aside(tmp_path):
    archive = make_zip(tmp_path / "g.zip", {"readme.txt": b"hello"})
    with pytest.raises(FetchError, match=r"g.zip cannot be unpacked: it holds no g.txt \(it holds readme.txt\); set "
                                         r"aside as g.zip.damaged-"):
        unpack_member(archive, "g.txt", tmp_path / "g.txt")
    assert not archive.exists() and not (tmp_path / "g.txt").exists()


def test_tar_folder_is_unpacked_into_place(tmp_path):
    archive = make_tar(tmp_path / "YouTubeClips.tar", {"YouTubeClips/a.avi": b"A" * 100, "YouTubeClips/b.avi": b"B"})
    written = unpack_folder(archive, "YouTubeClips", tmp_path / "YouTubeClips")
    assert sorted(p.name for p in (tmp_path / "YouTubeClips").iterdir()) == ["a.avi", "b.avi"] and written == 101
    assert sorted(p.name for p in tmp_path.iterdir()) == ["YouTubeClips", "YouTubeClips.tar"], "no staging left"


def test_tar_folder_goes_where_the_layout_says(tmp_path):
    archive = make_tar(tmp_path / "YouTubeClips.tar", {"YouTubeClips/a.avi": b"A"})
    unpack_folder(archive, "YouTubeClips", tmp_path / "video" / "YouTubeClips")
    assert (tmp_path / "video" / "YouTubeClips" / "a.avi").read_bytes() == b"A"


@pytest.mark.parametrize("evil", ["../escape.avi", "/etc/escape.avi"])
def test_tar_member_outside_its_folder_is_refused_before_writing(tmp_path, evil):
    archive = make_tar(tmp_path / "v.tar", {"YouTubeClips/a.avi": b"A", evil: b"E"})
    with pytest.raises(FetchError, match=rf"v.tar cannot be unpacked: it holds '{evil}', which is not a plain file or "
                                         rf"folder inside it; set aside as v.tar.damaged-"):
        unpack_folder(archive, "YouTubeClips", tmp_path / "YouTubeClips")
    assert not (tmp_path / "YouTubeClips").exists() and not (tmp_path.parent / "escape.avi").exists()


def test_tar_of_another_layout_is_not_unpacked(tmp_path):
    archive = make_tar(tmp_path / "v.tar", {"clips/a.avi": b"A"})
    with pytest.raises(FetchError) as error:
        unpack_folder(archive, "YouTubeClips", tmp_path / "YouTubeClips")
    assert str(error.value) == (
        f"{archive} holds 'clips/a.avi' outside the folder YouTubeClips/ that this harness expects: it is not the "
        f"archive the source promises; unpack it by hand"
    )
    assert archive.exists(), "a readable archive of another layout is the user's to look at, not damaged"


def test_truncated_tar_is_set_aside_and_no_folder_appears(tmp_path):
    archive = make_tar(tmp_path / "v.tar", {"YouTubeClips/a.avi": b"A" * 5000, "YouTubeClips/b.avi": b"B" * 5000})
    archive.write_bytes(archive.read_bytes()[:7000])  # the download stopped mid-file
    with pytest.raises(FetchError, match=r"v.tar cannot be unpacked: not a readable tar \(unexpected end of data\); "
                                         r"set aside as v.tar.damaged-"):
        unpack_folder(archive, "YouTubeClips", tmp_path / "YouTubeClips")
    assert not (tmp_path / "YouTubeClips").exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("v.tar.damaged-")] == []


def test_unpacking_onto_a_folder_with_other_files_is_refused(tmp_path):
    archive = make_tar(tmp_path / "v.tar", {"YouTubeClips/a.avi": b"A"})
    (tmp_path / "YouTubeClips").mkdir()
    (tmp_path / "YouTubeClips" / "notes.txt").write_text("mine")
    with pytest.raises(FetchError) as error:
        unpack_folder(archive, "YouTubeClips", tmp_path / "YouTubeClips")
    assert str(error.value) == (
        f"{tmp_path / 'YouTubeClips'} exists and is not empty, but the experiment finds no videos there: move it "
        f"away, then run fetch again to unpack v.tar there"
    )


def test_unpacking_into_a_full_disk_says_how_much_is_needed(tiny_disk):
    archive = make_zip(tiny_disk / "g.zip", {"g.txt": b"0" * 200_000})  # compresses to a few hundred bytes
    with pytest.raises(FetchError, match=rf"not enough free space to unpack g.txt: it needs 195.3 KiB in "
                                         rf"{tiny_disk} \(\d+\.\d KiB free\); free space there and run fetch again"):
        unpack_member(archive, "g.txt", tiny_disk / "g.txt")
    assert not (tiny_disk / "g.txt").exists() and not (tiny_disk / "g.txt.partial").exists()
