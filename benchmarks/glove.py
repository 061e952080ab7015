"""Time and peak memory of our GloVe loader against the original's pandas route (dualvgr-original.md §1.3, B34).

On a synthetic GloVe-format file (default 300,000 lines of 300-d vectors, realistic 6-decimal values), builds the
(V_q, 300) float32 matrix for a realistic question vocabulary (default 5,000 words, 80% of them in the file) with:

- ``ours``: :func:`dualvgr.text.glove.load_glove`, streaming the file once and parsing only the vocabulary's lines;
- ``original``: ``data/glove/txt2pickle.py`` (``pd.read_csv(sep=' ', quoting=3, header=None, index_col=0)`` into
  ``{word: row.values}`` over ``df.T.items()``) followed by ``preprocess_questions.py``'s row lookup (without the
  pickle round trip, which would only add to the original's time).

The comparison file has no word with a space (pandas raises ParserError on one, B34); our loader also reads a
separate awkward file (words with spaces, NA-like words, duplicates, malformed lines) and its statistics are
reported. Each measurement runs in a fresh subprocess that reports its own time and peak RSS (``VmHWM``;
``ru_maxrss`` where there is no ``/proc``). Each approach imports only its own modules, and those imports count towards
its peak (``median_increment_mb`` leaves them out). Runs alternate between the approaches, ``--repeats`` each;
medians and ratios are printed as one JSON object, and both matrices are compared (sha256). Timings on a shared
machine are noisy: the ratios measured in the same run are the numbers that matter.
Targets: >= 3x faster and >= 5x less peak memory. Not a test: run by hand,

    python benchmarks/glove.py                       # ~1 GB of temporary files, a few minutes
    python benchmarks/glove.py --lines 30000 --repeats 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
_POOL = 997  # distinct vector strings; lines reuse them (the parsers do not care), which keeps generation fast


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lines", type=int, default=300_000)
    p.add_argument("--dim", type=int, default=300)
    p.add_argument("--vocab", type=int, default=5_000, help="question vocabulary size (with <NULL>, <UNK>)")
    p.add_argument("--present", type=float, default=0.8, help="fraction of the vocabulary found in the file")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workdir", type=Path, default=None, help="where the files go (default: a temporary folder)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--child", choices=("ours", "original"), help=argparse.SUPPRESS)
    p.add_argument("--glove", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--vocab-file", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def make_words(rng: np.random.Generator, count: int, prefix: str) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(2, 11, size=count)
    return [prefix + "".join(rng.choice(letters, size=n)) + str(i) for i, n in enumerate(lengths)]


def write_files(args: argparse.Namespace, workdir: Path) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(args.seed)
    words = make_words(rng, args.lines, "")
    pool = [" ".join(f"{v:.6f}" for v in rng.normal(0, 0.4, size=args.dim)) for _ in range(_POOL)]
    clean = workdir / "glove_clean.txt"
    with open(clean, "w", encoding="utf-8") as f:
        for start in range(0, args.lines, 10_000):
            f.write("".join(f"{w} {pool[(start + i) % _POOL]}\n" for i, w in enumerate(words[start : start + 10_000])))
    awkward = workdir / "glove_awkward.txt"
    with open(awkward, "w", encoding="utf-8") as f, open(clean, encoding="utf-8") as src:
        for i, line in enumerate(src):
            f.write(line)
            if i % 50_000 == 0:  # the awkward cases of 840B, sprinkled through the file
                f.write(f". . . {pool[1]}\nat the {pool[2]}\nnull {pool[3]}\nNA {pool[4]}\nN/A {pool[5]}\n")
                f.write(f"{words[i]} {pool[6]}\n")  # a duplicate: the last one wins
                f.write(f"{words[i + 1]} 0.1 0.2\n{words[i + 2]} {pool[7].replace(' ', ' x ', 1)}\n\n")  # malformed
    present = int(round((args.vocab - 2) * args.present))
    chosen = rng.choice(args.lines, size=present, replace=False)
    vocabulary = ["<NULL>", "<UNK>", *(words[i] for i in chosen), *make_words(rng, args.vocab - 2 - present, "zz")]
    vocab_file = workdir / "vocabulary.json"
    vocab_file.write_text(json.dumps(vocabulary), encoding="utf-8")
    return clean, awkward, vocab_file


def peak_rss_mb() -> float:
    """This process's peak RSS. Linux: VmHWM, because ru_maxrss survives exec and so starts at the forking parent's
    RSS (here the parent holds the generated word lists); elsewhere ru_maxrss."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale / 1024


def child(args: argparse.Namespace) -> None:
    """One measurement in this (fresh) process: print time, peak RSS and a digest of the matrix as JSON."""
    if args.child == "ours":  # each approach imports only what it needs: imports count towards its peak RSS
        from dualvgr.text.glove import load_glove
    else:
        import pandas as pd
    idx_to_token = json.loads(args.vocab_file.read_text(encoding="utf-8"))
    baseline = peak_rss_mb()
    start = time.perf_counter()
    stats = None
    if args.child == "ours":
        loaded = load_glove(args.glove, idx_to_token)
        matrix, stats = loaded.matrix, loaded.stats.as_dict()
    else:
        df = pd.read_csv(args.glove, sep=" ", quoting=3, header=None, index_col=0)  # txt2pickle.py
        glove = {key: val.values for key, val in df.T.items()}
        dim = glove[next(iter(glove))].shape[0]
        matrix = np.asarray([glove.get(token, np.zeros(dim)) for token in idx_to_token], dtype=np.float32)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    digest = hashlib.sha256(np.ascontiguousarray(matrix, dtype=np.float32).tobytes()).hexdigest()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": peak,
                "baseline_rss_mb": baseline,
                "sha256": digest,
                "stats": stats,
            }
        )
    )


def measure(approach: str, glove: Path, vocab_file: Path) -> dict:
    command = [sys.executable, __file__, "--child", approach, "--glove", str(glove), "--vocab-file", str(vocab_file)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{approach} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(runs: list[dict]) -> dict:
    return {
        "seconds": [round(r["seconds"], 3) for r in runs],
        "peak_rss_mb": [round(r["peak_rss_mb"], 1) for r in runs],
        "median_seconds": round(statistics.median(r["seconds"] for r in runs), 3),
        "median_peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in runs), 1),
        "median_increment_mb": round(statistics.median(r["peak_rss_mb"] - r["baseline_rss_mb"] for r in runs), 1),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        return child(args)
    with tempfile.TemporaryDirectory(prefix="glove_bench_", dir=args.workdir) as tmp:
        workdir = Path(tmp)
        start = time.perf_counter()
        clean, awkward, vocab_file = write_files(args, workdir)
        generation = time.perf_counter() - start
        runs: dict[str, list[dict]] = {"ours": [], "original": []}
        for _ in range(args.repeats):  # alternate, so that drifting machine load hits both alike
            for approach in runs:
                runs[approach].append(measure(approach, clean, vocab_file))
        awkward_run = measure("ours", awkward, vocab_file)
        ours, original = summary(runs["ours"]), summary(runs["original"])
        speedup = original["median_seconds"] / ours["median_seconds"]
        memory = original["median_peak_rss_mb"] / ours["median_peak_rss_mb"]
        report = {
            "config": {
                "lines": args.lines,
                "dim": args.dim,
                "vocab": args.vocab,
                "present": args.present,
                "repeats": args.repeats,
                "file_mb": round(clean.stat().st_size / 2**20, 1),
                "generation_seconds": round(generation, 1),
            },
            "ours": ours,
            "original": original,
            "ratios": {
                "speedup": round(speedup, 2),
                "peak_memory": round(memory, 2),
            },
            "targets_met": {"speedup >= 3": speedup >= 3, "peak_memory >= 5": memory >= 5},
            "matrices_equal": len({r["sha256"] for r in runs["ours"] + runs["original"]}) == 1,
            "ours_on_awkward_file": {"seconds": round(awkward_run["seconds"], 3), **awkward_run["stats"]},
        }
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
