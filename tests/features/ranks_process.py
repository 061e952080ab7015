"""The real ``dualvgr`` CLI, for torchrun to launch in tests, with faults injected into one rank on request.

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/features/ranks_process.py appearance -e x.yaml

The environment says what goes wrong, and where (only tests set it; the package knows nothing of it):
``INJECT`` is ``kill`` (the rank SIGKILLs itself, as the kernel's OOM killer would) or ``error`` (a DataError, as
a damaged video raises), on rank ``INJECT_RANK`` once it has written ``INJECT_AFTER`` videos (default 1). Just
before, it creates the file ``INJECT_MARKER`` (when given), which rank ``WAIT_RANK`` waits for (up to a minute)
at its first write: so that rank is surely still at work when the other fails.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _inject() -> None:
    from dualvgr.core.errors import DataError
    from dualvgr.features.hdf5 import PartialFeatureFile

    rank, what = os.environ.get("RANK"), os.environ.get("INJECT", "")
    marker = Path(os.environ.get("INJECT_MARKER", os.devnull))
    fails, waits = bool(what) and rank == os.environ.get("INJECT_RANK"), rank == os.environ.get("WAIT_RANK")
    after = int(os.environ.get("INJECT_AFTER", "1"))
    original, written = PartialFeatureFile.write, [0]

    def write(self, rows, features):
        if fails and written[0] >= after:
            marker.touch()
            if what == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise DataError(f"injected failure on rank {rank} after {written[0]} video(s)")
        if waits and written[0] == 0:
            deadline = time.monotonic() + 60
            while not marker.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1)  # for the failing rank to post its status
        original(self, rows, features)
        written[0] += len(rows)

    PartialFeatureFile.write = write


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))  # torchrun runs this file as a script: the package and the tests are beside it
    _inject()
    from dualvgr.cli import main

    raise SystemExit(main(sys.argv[1:]))
