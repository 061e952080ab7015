"""The real ``dualvgr`` CLI over two toy stages, to be run as a process that tests interrupt and kill.

    python -m tests.core.stage_process pipeline -e spec.yaml      # source -> sleeper (one run per seed)

``source`` writes ``numbers.txt``, ``sleeper`` writes ``doubled.txt``. The environment steers them without
changing their fingerprints: ``STAGE_CONTENT`` is what ``source`` writes; ``STAGE_SLEEP`` names a stage that,
once its output is written, touches the file ``STAGE_MARKER`` and sleeps until it is interrupted or killed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from dualvgr import cli, pipeline
from dualvgr.core.spec import replace_in
from dualvgr.core.stage import Stage, StageResult, seed_label


def _pause_if_asked(name: str) -> None:
    if os.environ.get("STAGE_SLEEP") == name:
        Path(os.environ["STAGE_MARKER"]).write_text(str(os.getpid()))
        while True:
            time.sleep(60)


def run_source(ctx):
    path = ctx.out_dir / "numbers.txt"
    path.write_text(os.environ.get("STAGE_CONTENT", str(ctx.spec.train.epochs)))
    _pause_if_asked("source")
    return StageResult({"numbers": path})


def run_sleeper(ctx):
    path = ctx.out_dir / "doubled.txt"
    path.write_text(ctx.input("source", "numbers").read_text() * 2)
    _pause_if_asked("sleeper")
    return StageResult({"doubled": path})


SOURCE = Stage("source", "1", params=lambda spec: {"epochs": spec.train.epochs}, run=run_source)
SLEEPER = Stage(
    "sleeper", "1", params=lambda spec: {"seed": spec.train.seed}, run=run_sleeper,
    upstream=lambda spec: ("source",),
    variants=lambda spec: [replace_in(spec, **{"train.seed": seed, "train.seeds": []}) for seed in spec.run_seeds],
    run_label=seed_label,
)

STAGES = {"source": (__name__, "SOURCE", "writes numbers.txt"),
          "sleeper": (__name__, "SLEEPER", "numbers.txt -> doubled.txt (one run per seed)")}


def main(argv: list[str]) -> int:
    cli.STAGES, cli.PIPELINE, pipeline.STAGES = STAGES, tuple(STAGES), STAGES
    return cli.main(argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
