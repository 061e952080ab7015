"""The ``dualvgr`` command: one subcommand per stage, plus ``pipeline`` and ``validate``.

Every subcommand reads one experiment file (``--experiment``, default ``experiments/demo.yaml``), applies
``--set dotted.key=value`` overrides (repeatable) and the MLproject's space-separated ``--overrides``, and
``--force`` ignores the stage cache. The MLproject entry points call exactly these commands. SIGINT and SIGTERM
end the open runs KILLED and exit 130 and 143.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from dualvgr.core.errors import HarnessError
from dualvgr.core.runstate import exit_code, interruptible
from dualvgr.core.schema import ExperimentSpec
from dualvgr.core.spec import DEFAULT_EXPERIMENT, dump_spec, load_spec, spec_hash, split_overrides
from dualvgr.pipeline import PIPELINE, STAGES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dualvgr", description="DualVGR reproduction harness: run a stage of a declared experiment."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--experiment", "-e", default=DEFAULT_EXPERIMENT, metavar="FILE",
                        help=f"experiment YAML file (default: {DEFAULT_EXPERIMENT})")
    common.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override one value, e.g. --set train.epochs=5 (repeatable)")
    common.add_argument("--overrides", default="", metavar="'K=V K=V'",
                        help="space-separated overrides (what the MLproject entry points pass)")
    common.add_argument("--force", action="store_true", help="ignore the stage cache and rerun")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    for name, (_, _, summary) in STAGES.items():
        sub.add_parser(name, parents=[common], help=summary)
    sub.add_parser("pipeline", parents=[common], help=f"all stages in order: {' -> '.join(PIPELINE)}")
    sub.add_parser("validate", parents=[common], help="check the experiment and print it fully resolved")
    fetch = sub.add_parser("fetch", parents=[common], help="download the experiment's inputs; say how to get the rest")
    fetch.add_argument("--dry-run", action="store_true", help="list what would be downloaded, change nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done, 2 an error the user can fix (one line), 128 + signal when interrupted (130, 143) or
    when the reader of the output went away (141)."""
    args = build_parser().parse_args(argv)
    try:
        with interruptible():
            spec = load_spec(args.experiment, [*split_overrides(args.overrides), *args.sets])
            code = _command(args, spec)
            sys.stdout.flush()  # a reader that went away shows here, not as a traceback at exit
            return code
    except BrokenPipeError:
        # `dualvgr validate | head -1`: the reader has what it wanted; stop quietly, as tools ended by SIGPIPE do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 128 + signal.SIGPIPE
    except HarnessError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interruption:  # the runs that were open have been ended KILLED on the way here
        print(f"error: {interruption or 'interrupted by SIGINT'}; open runs were ended KILLED", file=sys.stderr)
        return exit_code(interruption)


def _command(args: argparse.Namespace, spec: ExperimentSpec) -> int:
    if args.command == "validate":
        return _validate(spec)
    if args.command == "fetch":  # a tool, not a stage: no MLflow run (dualvgr.fetch.command)
        from dualvgr.fetch import fetch_inputs

        fetch_inputs(spec, dry_run=args.dry_run, progress=not args.quiet, experiment=args.experiment)
        return 0
    return _run(args, spec)


def _run(args: argparse.Namespace, spec: ExperimentSpec) -> int:
    from dualvgr.core.store import probe_server_of

    # A tracking server that is down is found before MLflow and PyTorch load (seconds on a busy machine).
    probe_server_of(os.environ.get("MLFLOW_TRACKING_URI", ""))
    # Imported here: MLflow and PyTorch take seconds to load, which `validate` and `--help` do not need.
    from dualvgr.core.ranks import Ranks, follow
    from dualvgr.core.runner import Runner
    from dualvgr.core.tracking import Tracker
    from dualvgr.pipeline import all_stages

    dist = Ranks.from_environment()
    if dist.active and not dist.is_main:
        follow(dist, all_stages())  # under torchrun, ranks > 0 do what rank 0's stages send them (Stage.follow)
        return 0
    try:
        tracker = Tracker()  # first: a store that is down or locked fails in seconds, before the stages load
        runner = Runner(all_stages(), tracker, progress=not args.quiet)
        # `mlflow run` creates the run and hands it to us; the requested stage logs into it.
        launched = os.environ.pop("MLFLOW_RUN_ID", None)
        if args.command == "pipeline":
            run_pipeline(runner, spec, force=args.force, launched_run_id=launched)
        else:
            runner.run(args.command, spec, force=args.force, launched_run_id=launched)
    finally:
        dist.release()  # the followers end with this command, however it ends
    return 0


def run_pipeline(runner, spec: ExperimentSpec, *, force: bool = False, launched_run_id: str | None = None) -> None:
    """Every stage in order, as children of one ``pipeline`` run; seeds share the upstream stages."""
    from dualvgr.core.runner import pipeline_run

    with pipeline_run(runner, spec, launched_run_id) as parent:
        for name in PIPELINE:
            if name in runner.stages:
                runner.run(name, spec, force=force, parent_run_id=parent.run_id)


def _validate(spec: ExperimentSpec) -> int:
    print(dump_spec(spec), end="")
    print(f"# spec sha256: {spec_hash(spec)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
