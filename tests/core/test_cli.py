"""The CLI's validate command and error reporting (no tracking store needed)."""

from __future__ import annotations

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
