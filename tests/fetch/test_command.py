"""``dualvgr fetch`` on a real experiment file, its sources pointed at a local server."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from dualvgr.cli import main
from dualvgr.core.spec import load_spec
from dualvgr.fetch import Expected, FetchError, Source, fetch_inputs, transfer
from dualvgr.fetch.sources import GLOVE, IMAGENET, MSVD_VIDEOS, SOURCES, source
from dualvgr.text.glove import load_glove

REPO = Path(__file__).resolve().parents[2]
MSVD = REPO / "experiments/msvd_qa.yaml"
WEIGHTS = b"pretend these are ResNet-101 weights" * 100
GLOVE_TEXT = b"the 0.1 0.2 0.3\nman 0.4 0.5 0.6\n"


def zipped(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, data)
    return buffer.getvalue()


def tarred(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture()
def local_sources(http_server):
    """SOURCES with every URL on the local server (same checks, own values), serving tiny stand-ins."""
    glove_zip = zipped("glove.840B.300d.txt", GLOVE_TEXT)
    http_server.serve("resnet101-abcd.pth", WEIGHTS)
    http_server.serve("glove.840B.300d.zip", glove_zip)
    http_server.serve("YouTubeClips.tar", tarred({"YouTubeClips/clip_1_5.avi": b"avi", "YouTubeClips/c_2_9.avi": b"a"}))
    return {
        IMAGENET: Source(http_server.url("resnet101-abcd.pth"),
                         Expected(sha256=hashlib.sha256(WEIGHTS).hexdigest()[:8], authority="its name")),
        GLOVE: Source(http_server.url("glove.840B.300d.zip"), Expected(size=len(glove_zip)),
                      member="glove.840B.300d.txt"),
        MSVD_VIDEOS: Source(http_server.url("YouTubeClips.tar"), Expected(), folder="YouTubeClips"),
    }


@pytest.fixture()
def msvd_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.chdir(tmp_path)  # the experiment's relative paths (data/...) land here
    return load_spec(MSVD, [])


def test_fetch_downloads_checks_and_unpacks_what_the_experiment_reads(msvd_spec, local_sources, tmp_path):
    lines = []
    report = fetch_inputs(msvd_spec, sources=local_sources, out=lines.append, progress=False)
    assert report.status == {
        "appearance weights": "downloaded", "motion weights": "by hand", "GloVe": "unpacked",
        "MSVD-QA annotations": "by hand", "MSVD video mapping": "by hand", "MSVD videos": "unpacked",
    }
    assert (tmp_path / "torch/hub/checkpoints/resnet101-63fe2227.pth").read_bytes() == WEIGHTS, \
        "the ImageNet file goes where features.weights reads it (torchvision's file name, under $TORCH_HOME)"
    glove = load_glove(tmp_path / "data/glove/glove.840B.300d.txt", ["man", "the", "<UNK>"])
    assert glove.matrix.tolist()[0] == pytest.approx([0.4, 0.5, 0.6]), "the questions stage reads what fetch made"
    assert sorted(p.name for p in (tmp_path / "data/msvd-qa/YouTubeClips").iterdir()) == ["c_2_9.avi", "clip_1_5.avi"]
    assert lines[-1] == ("[fetch] still to do by hand (see above): motion weights, MSVD-QA annotations, MSVD video "
                         "mapping")
    assert f"        by hand: download youtube_mapping.txt from https://mega.nz/" in "\n".join(lines)

    again = fetch_inputs(msvd_spec, sources=local_sources, out=lines.append, progress=False)
    assert again.status["appearance weights"] == again.status["GloVe"] == again.status["MSVD videos"] == "present"


def test_dry_run_changes_nothing_and_says_how_far_a_download_got(msvd_spec, local_sources, http_server, tmp_path):
    partial = tmp_path / "data/glove/glove.840B.300d.zip.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"x" * 3000)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    lines = []
    report = fetch_inputs(msvd_spec, sources=local_sources, out=lines.append, dry_run=True)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before and http_server.requests == []
    assert set(report.status.values()) == {"download", "by hand"}
    text = "\n".join(lines)
    assert f"would resume (an earlier download stopped at 2.9 KiB) {http_server.url('glove.840B.300d.zip')}" in text
    assert f"then unpack glove.840B.300d.txt to {tmp_path}/data/glove/glove.840B.300d.txt (the archive is kept)" in text
    assert lines[-1] == "[fetch] 3 download, 3 by hand"


def test_one_failed_download_does_not_stop_the_others(msvd_spec, local_sources, http_server):
    del http_server.files["glove.840B.300d.zip"]
    lines = []
    with pytest.raises(FetchError) as error:
        fetch_inputs(msvd_spec, sources=local_sources, out=lines.append, progress=False, experiment="x.yaml")
    url = http_server.url("glove.840B.300d.zip")
    assert str(error.value) == (
        f"GloVe: HTTP 404 Not Found for {url}: the file is not (or no longer) there; if it has moved, download it by "
        f"hand and put it at {Path.cwd() / 'data/glove/glove.840B.300d.zip'} (run `dualvgr fetch -e x.yaml` again "
        f"(same overrides) to resume)"
    )
    assert lines[-2] == "[fetch] 1 downloaded, 3 by hand, 1 failed, 1 unpacked"


def test_cli_fetch_failure_is_one_error_line_and_exit_2(msvd_spec, closed_port, monkeypatch, capsys):
    monkeypatch.setattr(transfer.time, "sleep", lambda seconds: None)  # the retries, without their waits
    for name in (IMAGENET, GLOVE, MSVD_VIDEOS):  # the real table, its URLs where nothing listens
        monkeypatch.setitem(SOURCES, name, replace(source(SOURCES, name), url=f"http://127.0.0.1:{closed_port}/{name}"))
    assert main(["fetch", "-e", str(MSVD), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: 3 inputs not fetched: appearance weights, GloVe, MSVD "
                                                   "videos (each reason is printed above; appearance weights: cannot "
                                                   f"reach 127.0.0.1:{closed_port} (Connection refused) after 3 tries")
    assert err.endswith(f"); run `dualvgr fetch -e {MSVD}` again (same overrides) to resume\n")


def test_cli_fetch_dry_run_lists_and_exits_0(capsys):
    assert main(["fetch", "-e", str(REPO / "experiments/demo.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "[fetch] plan for experiment 'demo' (dry run: nothing is changed)"
    assert out.splitlines()[-1] == "[fetch] 4 nothing"
