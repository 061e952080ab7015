"""The CLI's validate command and error reporting (no tracking store needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dualvgr.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_validate_prints_resolved_spec(capsys):
    assert main(["validate", "--experiment", str(REPO / "experiments/msvd_qa.yaml"), "--set", "train.epochs=3"]) == 0
    out = capsys.readouterr().out
    assert "epochs: 3" in out and "# spec sha256:" in out and "module_dim: 768" in out


def test_validate_unknown_key_exits_nonzero_and_suggests():
    done = subprocess.run(
        [sys.executable, "-m", "dualvgr", "validate", "--set", "train.lrr=1"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert done.returncode != 0
    assert "train.lrr" in done.stderr and "train.lr" in done.stderr and "Traceback" not in done.stderr


def test_overrides_string_and_set_combine(capsys):
    assert main(["validate", "--experiment", str(REPO / "experiments/demo.yaml"),
                 "--overrides", "train.epochs=2 train.batch_size=8", "--set", "train.epochs=5"]) == 0
    out = capsys.readouterr().out
    assert "epochs: 5" in out and "batch_size: 8" in out, "--set comes after --overrides and wins"


def test_validate_into_a_closed_pipe_exits_quietly():
    """`dualvgr validate | head -1`: the reader goes away; no BrokenPipeError traceback, SIGPIPE's exit code."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE, as after `head -1` has exited
    try:
        done = subprocess.run([sys.executable, "-m", "dualvgr", "validate"], cwd=REPO, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert done.returncode == 141, (done.returncode, done.stderr)
    assert done.stderr == "", done.stderr


def test_validate_piped_to_head_prints_the_first_line_only():
    done = subprocess.run(f"{sys.executable} -m dualvgr validate | head -1; exit ${{PIPESTATUS[0]}}", shell=True,
                          executable="/bin/bash", cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.stdout == "name: demo\n" and "Traceback" not in done.stderr and "Broken" not in done.stderr, done
    assert done.returncode in (0, 141), "0 when everything fit into the pipe before head left, else SIGPIPE's 141"
