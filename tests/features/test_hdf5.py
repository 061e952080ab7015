"""The partial-file protocol on its own: never taken for done, not clobbered while another process writes it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from dualvgr.core.errors import DataError
from dualvgr.features.hdf5 import PartialFeatureFile, partial_path

OPEN = dict(dataset="resnext_features", row_shape=(2, 4), ids=np.array([5, 9]), attrs={"kind": "motion"}, resume_key="k")


def test_finish_refuses_missing_rows_and_renames_only_when_complete(tmp_path):
    out = tmp_path / "motion.h5"
    partial = PartialFeatureFile.open(out, **OPEN)
    partial.write([0], [np.ones((2, 4), np.float32)])
    with pytest.raises(RuntimeError, match="1 rows not written"):
        partial.finish({})
    assert not out.exists() and partial_path(out).exists()
    partial.finish({"failed_ids": np.array([9])}, failed_rows=[1])
    assert out.exists() and not partial_path(out).exists()


def test_a_partial_file_locked_by_another_process_is_not_restarted(tmp_path):
    out = tmp_path / "motion.h5"
    PartialFeatureFile.open(out, **OPEN).close()
    script = f"import h5py, time\nf = h5py.File({str(partial_path(out))!r}, 'r+')\nprint('open', flush=True)\ntime.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(DataError, match="locked: another extraction is writing"):
            PartialFeatureFile.open(out, **{**OPEN, "resume_key": "other"})
        assert partial_path(out).exists(), "the other process's file must survive"
    finally:
        holder.kill()
        holder.wait()
