"""Training throughput of the harness's own loop (``dualvgr.train.loop.train_epoch``) with features in memory.

Unlike ``train_step.py`` (one model step on fixed tensors), this runs what ``dualvgr train`` runs: per-epoch
shuffling, batch gathering from device-resident features (the CUDA fast path), the three-term loss, clipping,
Adam, and the periodic finiteness check. Defaults are the paper's MSVD-QA shape (N=8, F=16, D=768, batch 256,
V_q 4000, V_a 1000). Not a test: run by hand, e.g.

    python benchmarks/train_loop.py --device cuda --precision bf16 --json out.json

Prints (and optionally writes) one JSON object with the median samples/s over the timed epochs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dualvgr.core.device import set_tf32  # noqa: E402
from dualvgr.model import DualVGR, DualVGRConfig  # noqa: E402
from dualvgr.train.data import SplitQuestions, VideoFeatures  # noqa: E402
from dualvgr.train.loop import Recipe, train_epoch  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    p.add_argument("--tf32", action="store_true", help="allow TF32 (off = faithful fp32, B40)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--questions", type=int, default=4096, help="questions per timed epoch")
    p.add_argument("--videos", type=int, default=512)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up epoch)")
    p.add_argument("--num-clips", type=int, default=8)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--module-dim", type=int, default=768)
    p.add_argument("--question-vocab", type=int, default=4000)
    p.add_argument("--answer-vocab", type=int, default=1000)
    p.add_argument("--question-len", type=int, default=10)
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def synthetic_split(args, generator: torch.Generator) -> SplitQuestions:
    q = args.questions
    lengths = torch.randint(args.question_len // 2, args.question_len + 1, (q,), generator=generator)
    questions = torch.randint(2, args.question_vocab, (q, args.question_len), generator=generator)
    questions[torch.arange(args.question_len)[None, :] >= lengths[:, None]] = 0
    types = np.array(["what", "who", "how", "when", "where"])[np.arange(q) % 5]
    return SplitQuestions(
        name="train", questions=questions, lengths=lengths,
        answers=torch.randint(0, args.answer_vocab, (q,), generator=generator),
        video_ids=np.arange(q) % args.videos, types=types, qa_ids=np.arange(q),
        question_text=[""] * q, answer_text=[""] * q,
    )


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    set_tf32(args.tf32)
    generator = torch.Generator().manual_seed(0)
    split = synthetic_split(args, generator)
    appearance = torch.rand(args.videos, args.num_clips, args.frames, 2048, generator=generator).to(device)
    motion = (torch.rand(args.videos, args.num_clips, 2048, generator=generator) * 8).to(device)
    features = VideoFeatures.from_arrays(np.arange(args.videos), appearance, motion)
    torch.manual_seed(0)
    model = DualVGR(DualVGRConfig(
        question_vocab_size=args.question_vocab, answer_vocab_size=args.answer_vocab, module_dim=args.module_dim,
        num_clips=args.num_clips, frames_per_clip=args.frames)).to(device)
    network = torch.compile(model) if args.compile else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
    recipe = Recipe(epochs=args.epochs + 1, lr=1e-4, lr_decay_every=10, lr_decay_factor=0.5, grad_clip=12.0,
                    batch_size=args.batch, seed=666, alpha=1.0, beta=1e-8, precision=args.precision,
                    sync_every=1 if device.type == "cpu" else 25)
    scaler = torch.amp.GradScaler(device.type) if args.precision == "fp16" else None
    rates = []
    for epoch in range(args.epochs + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        stats = train_epoch(network, optimizer, split, features, recipe, epoch, device, scaler=scaler, progress=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if epoch:  # epoch 0 warms up (cuDNN autotuning, allocator, compile)
            rates.append(stats.samples / (time.perf_counter() - started))
    result = {
        "benchmark": "train_loop", "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": args.precision, "tf32": args.tf32, "compile": args.compile, "batch": args.batch,
        "shape": {"N": args.num_clips, "F": args.frames, "D": args.module_dim, "V_q": args.question_vocab,
                  "V_a": args.answer_vocab}, "questions_per_epoch": args.questions,
        "samples_per_second_median": statistics.median(rates), "samples_per_second": rates,
        "torch": torch.__version__,
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)
    return result


if __name__ == "__main__":
    main()
