"""Time of the content-checked cache: checking a recorded output, unchanged and changed, against plain sha256.

The runner checks every output of a candidate cache hit by content (``dualvgr.core.stage.output_change``). On a
generated file (default 2 GiB, the size of a small feature file) this measures, in one process:

- ``baseline``: :func:`dualvgr.core.fingerprint.sha256_file`, reading and hashing the whole file;
- ``unchanged``: the check of the recorded output when the file is as recorded: a stat-cache hit (size, mtime,
  ctime, inode, device as when hashed), so nothing is read (target: well under a second);
- ``changed``: the check after one byte was changed in place (same size): the stat differs, so the file is hashed
  again and the change is found (expected: about the baseline).

Each check uses a new ``StatCache`` object, as a new command would. Repeats alternate the three (``--repeats``);
medians are printed as one JSON object (``--save`` also writes it). Between repeats the byte is put back and the
file re-hashed, after the stat cache's racy window (a file modified within 2 s of being hashed is hashed again).
The file stays in the page cache when memory allows, so ``baseline`` and ``changed`` measure hashing rather than
the disk; timings on a shared machine are noisy, and the ratios measured in the same run are what matter. The
file is deleted afterwards. Not a test: run by hand,

    python benchmarks/cache_check.py                       # 2 GiB of temporary disk, about a minute
    python benchmarks/cache_check.py --size-mb 256 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dualvgr.core.fingerprint import RACY_SECONDS, sha256_file, stat_cache_in  # noqa: E402
from dualvgr.core.stage import describe_output, output_change  # noqa: E402

_BLOCK = 64 * 2**20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size-mb", type=int, default=2048, help="size of the generated file in MiB (default 2048)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workdir", type=Path, default=None, help="where the file goes (default: a temporary folder)")
    p.add_argument("--save", type=Path, default=None, help="also write the JSON result here")
    return p.parse_args(argv)


def write_file(path: Path, size: int) -> None:
    """Random-looking bytes (a random block, varied per block so no two blocks are equal), fsynced."""
    block = bytearray(os.urandom(_BLOCK))
    with open(path, "wb") as handle:
        written, index = 0, 0
        while written < size:
            block[:8] = index.to_bytes(8, "little")
            chunk = block[: min(_BLOCK, size - written)]
            handle.write(chunk)
            written, index = written + len(chunk), index + 1
        handle.flush()
        os.fsync(handle.fileno())


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        value = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([value ^ 0xFF]))


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def settle() -> None:
    """Outside the stat cache's racy window, so that a digest made now is trusted by the next check."""
    time.sleep(RACY_SECONDS + 0.2)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    size = args.size_mb * 2**20
    times: dict[str, list[float]] = {"baseline": [], "unchanged": [], "changed": []}
    with tempfile.TemporaryDirectory(prefix="cache_check_bench_", dir=args.workdir) as tmp:
        outputs = Path(tmp) / "outputs"
        target = outputs / "features" / "0123456789abcdef" / "features.h5"
        target.parent.mkdir(parents=True)
        generation, _ = timed(write_file, target, size)
        settle()
        record = describe_output(target, stat_cache_in(outputs))  # what the run recorded (and the stat cache)
        for _ in range(args.repeats):  # alternate, so that drifting machine load hits all three alike
            seconds, _ = timed(sha256_file, target)
            times["baseline"].append(seconds)

            cache = stat_cache_in(outputs)
            seconds, change = timed(output_change, record, cache)
            assert change is None and cache.hashed == [], (change, cache.hashed)  # a stat-cache hit: nothing read
            times["unchanged"].append(seconds)

            flip_byte(target, size // 2)
            cache = stat_cache_in(outputs)
            seconds, change = timed(output_change, record, cache)
            assert change == "changed content (same size, different sha256)" and cache.hashed, change
            times["changed"].append(seconds)

            flip_byte(target, size // 2)  # back as recorded; hashed again once settled, as a later run would
            settle()
            stat_cache_in(outputs).sha256(target)
    medians = {name: statistics.median(values) for name, values in times.items()}
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "config": {"size_mb": args.size_mb, "repeats": args.repeats, "generation_seconds": round(generation, 1)},
        "seconds": {name: [round(v, 6) for v in values] for name, values in times.items()},
        "median_seconds": {name: round(value, 6) for name, value in medians.items()},
        "baseline_mb_per_second": round(args.size_mb / medians["baseline"], 1),
        "ratios": {
            "baseline_over_unchanged": round(medians["baseline"] / medians["unchanged"], 1),
            "changed_over_baseline": round(medians["changed"] / medians["baseline"], 3),
        },
        "targets_met": {"unchanged < 0.1 s": medians["unchanged"] < 0.1},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.save:
        args.save.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
