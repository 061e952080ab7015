"""Throughput of one DualVGR training step, and the FLOP rate it achieves against a large matmul.

One step = forward + loss (CE + alpha*common + beta*HSIC, §4.1) + backward + clip_grad_norm_(12) + Adam step,
as in the original ``train.py`` (§4.3), at the paper's MSVD-QA shape by default (N=8, F=16, D=768, V_q=4000,
V_a=1000, questions of up to 10 tokens). Not a test: run by hand, e.g.

    python benchmarks/train_step.py                                   # CPU, batch 32
    python benchmarks/train_step.py --device cuda --batch 256 --precision bf16

FLOPs: the LSTMs are counted analytically (``torch.utils.flop_counter`` does not see the fused CPU/cuDNN LSTM
kernels: the appearance LSTM alone is ~1.9 GFLOP per sample forward); everything else with FlopCounterMode.
``model_flops`` uses the usual convention backward = 2x forward. ``executed_flops`` drops the backward matmuls
that never run (input gradients of layers fed directly by the features), so it is the honest work figure;
both are reported, with their fractions of the matmul rate measured in the same run (timings on a shared
machine are noisy; the ratio is the number to compare). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dualvgr.model import DualVGR, DualVGRConfig, dualvgr_loss  # noqa: E402

LSTM_MODULES = ("linguistic_input_unit.concatRNN", "linguistic_input_unit.encoder", "visual_appearance_input_unit")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:K")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5, help="timed training steps (after --warmup)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16 = autocast (CUDA)")
    p.add_argument("--num-clips", type=int, default=8)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--module-dim", type=int, default=768)
    p.add_argument("--question-vocab", type=int, default=4000)
    p.add_argument("--answer-vocab", type=int, default=1000)
    p.add_argument("--question-len", type=int, default=10, help="padded length L; lengths drawn in [L/2, L]")
    p.add_argument("--matmul-size", type=int, default=2048)
    p.add_argument("--matmul-repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument(
        "--adam",
        choices=("fused", "foreach", "for-loop"),
        default="fused",
        help="Adam implementation (same maths; the original ran PyTorch's default, the for-loop on CPU)",
    )
    return p.parse_args(argv)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device: torch.device, size: int, repeats: int, dtype: torch.dtype) -> list[float]:
    """GFLOP/s of size^3 matmuls, one figure per repeat."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(2):
        torch.mm(a, b)
    sync(device)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        rates.append(2 * size**3 / (time.perf_counter() - t0) / 1e9)
    return rates


def lstm_flops(rows_steps: float, in_dim: int, hidden: int) -> float:
    """Forward FLOPs of one direction: per row and step, x W_ih^T and h W_hh^T (4H gates) + ~10 ops per gate
    unit for the pointwise cell."""
    return rows_steps * (2 * 4 * hidden * (in_dim + hidden) + 10 * 4 * hidden)


def count_flops(model: DualVGR, inputs: tuple, lengths: torch.Tensor, cfg: DualVGRConfig) -> dict[str, float]:
    """Per-batch forward FLOPs split into LSTM (analytic) and the rest (FlopCounterMode), and the two totals."""
    app = inputs[0]
    b, n, f, _ = app.shape
    hidden = cfg.module_dim // 2
    appearance_ih = 2 * b * n * f * 2 * 4 * hidden * cfg.vision_dim  # its input projection, both directions
    appearance = 2 * lstm_flops(b * n * f, cfg.vision_dim, hidden)
    question = 2 * 2 * lstm_flops(float(lengths.sum()), cfg.word_dim, hidden)  # two LSTMs x two directions
    counter = FlopCounterMode(display=False, depth=None)
    with counter, torch.no_grad():
        model(*inputs)
    per_module = counter.get_flop_counts()
    counted_lstm = sum(sum(per_module.get(f"DualVGR.{name}", {}).values()) for name in LSTM_MODULES)
    rest = sum(per_module["Global"].values()) - counted_lstm
    motion_in = 2 * b * n * cfg.vision_dim * cfg.module_dim  # motion Linear on the features: no input grad
    forward = appearance + question + rest
    model_flops = 3 * forward
    # Backward that really runs: no input gradient for the two layers fed by the (non-trainable) features.
    executed = model_flops - appearance_ih - motion_in
    return {
        "forward_lstm_appearance": appearance,
        "forward_lstm_question": question,
        "forward_other": rest,
        "forward": forward,
        "model_flops": model_flops,
        "executed_flops": executed,
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    autocast = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16) if args.precision == "bf16" else nullcontext()
    )
    torch.manual_seed(0)
    cfg = DualVGRConfig(
        question_vocab_size=args.question_vocab,
        answer_vocab_size=args.answer_vocab,
        module_dim=args.module_dim,
        num_clips=args.num_clips,
        frames_per_clip=args.frames,
    )
    model = DualVGR(cfg).to(device).train()
    adam_kwargs = {"fused": {"fused": True}, "foreach": {"foreach": True}, "for-loop": {"foreach": False}}[args.adam]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, **adam_kwargs)
    b, L = args.batch, args.question_len
    appearance = torch.randn(b, args.num_clips, args.frames, cfg.vision_dim, device=device)
    motion = torch.randn(b, args.num_clips, cfg.vision_dim, device=device)
    question = torch.randint(2, args.question_vocab, (b, L), device=device)
    lengths = torch.randint(max(1, L // 2), L + 1, (b,))  # stays on the CPU (B3)
    lengths[0] = L
    answers = torch.randint(0, args.answer_vocab, (b,), device=device)
    inputs = (appearance, motion, question, lengths)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            out = model(*inputs)
        loss = dualvgr_loss(out, answers, 1.0, 1e-8)["total"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=12)
        optimizer.step()

    mm_dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    rates = matmul_rate(device, args.matmul_size, args.matmul_repeats, mm_dtype)
    for _ in range(args.warmup):
        step()
    sync(device)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    rates += matmul_rate(device, args.matmul_size, args.matmul_repeats, mm_dtype)  # before and after: drift

    flops = count_flops(model, inputs, lengths, cfg)
    step_s = statistics.median(times)
    matmul_gflops = statistics.median(rates)
    summary = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "precision": args.precision,
        "adam": args.adam,
        "batch": b,
        "shape": {"N": args.num_clips, "F": args.frames, "D": args.module_dim, "L": L, "V_q": args.question_vocab,
                  "V_a": args.answer_vocab},
        "step_s_median": step_s,
        "step_s_all": times,
        "samples_per_s": b / step_s,
        "gflop_per_sample": {k: v / b / 1e9 for k, v in flops.items()},
        "matmul_gflops_median": matmul_gflops,
        "matmul_size": args.matmul_size,
        "achieved_gflops_model": flops["model_flops"] / step_s / 1e9,
        "fraction_of_matmul_model_flops": flops["model_flops"] / step_s / 1e9 / matmul_gflops,
        "achieved_gflops_executed": flops["executed_flops"] / step_s / 1e9,
        "fraction_of_matmul_executed_flops": flops["executed_flops"] / step_s / 1e9 / matmul_gflops,
    }
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
