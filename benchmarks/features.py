"""Feature extraction speed: ours against a straightforward re-implementation of the original procedure.

Both run in the same process on the same synthetic videos (MSVD-like: 320x240, 30 fps, ~10 s, MJPG/avi and
mp4v/mp4) with the same random-weight networks, alternating repeats so machine noise hits both alike:

- preprocessing only: decode, sample, resize, normalise (what dominates on a GPU). Original: read every
  frame, split/merge, per-clip-frame Pillow resize, float64 normalisation (``dualvgr.features.reference``).
  Ours: the extraction's worker pipeline (grab/retrieve of needed frames, one vectorised bit-exact resize per
  distinct frame) plus the device-side normalisation, without the network; measured in one process
  (``ours_preprocess_1proc``, like for like) and with ``--preprocess-workers`` decoding processes (how the
  extraction feeds a GPU).
- end to end: the original's per-clip forwards with autograd on, against ``extract_features``.

Reports clip frames per second (num_clips x frames_per_clip per video), medians over ``--repeats``, ratios, and
the maximum absolute (and relative) difference between the two procedures' features. Prints a JSON summary.

    python benchmarks/features.py --preprocess-only --videos 16 --num-clips 8  # 2 minutes on 2 CPU cores
    python benchmarks/features.py --videos 2 --repeats 3 --num-clips 2        # a few minutes on 2 CPU cores
    python benchmarks/features.py --device cuda --videos 8 --num-clips 8     # faithful sizes on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import h5py
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dualvgr.core.device import resolve_device, set_tf32  # noqa: E402
from dualvgr.features import AppearanceSettings, MotionSettings, extract_features, resolve_weights  # noqa: E402
from dualvgr.features import reference  # noqa: E402
from dualvgr.features.backbones import build_appearance_backbone, build_motion_backbone  # noqa: E402
from dualvgr.features.extract import iter_network_inputs  # noqa: E402

CODECS = (("MJPG", "avi"), ("mp4v", "mp4"))


def write_videos(folder: Path, count: int, *, seconds: float, fps: int, size: tuple[int, int]) -> list[tuple[int, Path]]:
    """MSVD-like clips: a textured background panning under a moving disc, some noise, a frame counter."""
    width, height = size
    videos = []
    for index in range(count):
        codec, suffix = CODECS[index % len(CODECS)]
        path = folder / f"video{index}.{suffix}"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
        rng = np.random.default_rng(index)
        coarse = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
        texture = cv2.resize(coarse, (2 * width, height), interpolation=cv2.INTER_CUBIC)
        for t in range(int(seconds * fps)):
            frame = np.ascontiguousarray(texture[:, (3 * t) % width : (3 * t) % width + width])
            cv2.circle(frame, (int(width / 2 + width / 3 * np.sin(t / 15)), height // 2), height // 6, (40, 200, 90), -1)
            frame = cv2.add(frame, rng.integers(0, 12, frame.shape, dtype=np.uint8))
            cv2.putText(frame, str(t), (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
            writer.write(frame)
        writer.release()
        videos.append((index, path))
    return videos


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def original_preprocess(kind: str, videos, settings) -> None:
    for _, path in videos:
        if kind == "appearance":
            for batch in reference.appearance_inputs(path, settings.num_clips, settings.frames_per_clip, settings.image_size):
                torch.from_numpy(batch)  # the original's torch.FloatTensor(...) of each clip
        else:
            torch.from_numpy(reference.motion_inputs(path, settings.num_clips, settings.frames_per_clip, settings.image_size))


def our_preprocess(videos, settings, device: torch.device, num_workers: int) -> None:
    for _ in iter_network_inputs(videos, settings, device=device, num_workers=num_workers):
        pass
    _sync(device)


def original_end_to_end(kind: str, videos, settings, model, device: torch.device) -> dict[int, np.ndarray]:
    """The original procedure; the model sits on ``device``, inputs are moved there per forward."""
    features = {}
    for video_id, path in videos:
        if kind == "appearance":
            batches = reference.appearance_inputs(path, settings.num_clips, settings.frames_per_clip, settings.image_size)
            features[video_id] = np.stack([model(torch.from_numpy(b).to(device)).detach().cpu().numpy() for b in batches])
        else:
            clips = reference.motion_inputs(path, settings.num_clips, settings.frames_per_clip, settings.image_size)
            features[video_id] = model(torch.from_numpy(clips).to(device)).detach().cpu().numpy()
    _sync(device)
    return features


def _timed(function) -> tuple[float, object]:
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def bench_kind(kind: str, videos, args, device: torch.device, folder: Path) -> dict[str, object]:
    if kind == "appearance":
        settings = AppearanceSettings(
            num_clips=args.num_clips, frames_per_clip=args.frames_per_clip, image_size=args.appearance_size
        )
        weights = resolve_weights("random", "resnet101", allow_random=True)
        original_model = build_appearance_backbone(weights).to(device)  # contiguous layout, as torchvision's default
    else:
        settings = MotionSettings(
            num_clips=args.num_clips, frames_per_clip=args.frames_per_clip, image_size=args.motion_size,
            sample_size=args.motion_size, sample_duration=args.frames_per_clip,
        )
        weights = resolve_weights("random", "resnext101", allow_random=True)
        original_model = build_motion_backbone(
            weights, sample_size=args.motion_size, sample_duration=args.frames_per_clip
        ).to(device)
    frames = len(videos) * settings.num_clips * settings.frames_per_clip
    names = ("original_preprocess", "ours_preprocess_1proc", "ours_preprocess", "original_end_to_end", "ours_end_to_end")
    times: dict[str, list[float]] = {name: [] for name in names}
    max_abs = max_rel = 0.0
    for repeat in range(args.repeats):
        times["original_preprocess"].append(_timed(lambda: original_preprocess(kind, videos, settings))[0])
        times["ours_preprocess_1proc"].append(_timed(lambda: our_preprocess(videos, settings, device, 0))[0])
        times["ours_preprocess"].append(
            _timed(lambda: our_preprocess(videos, settings, device, args.preprocess_workers))[0]
        )
        if args.preprocess_only:
            continue
        seconds, original = _timed(lambda: original_end_to_end(kind, videos, settings, original_model, device))
        times["original_end_to_end"].append(seconds)
        out = folder / f"{kind}_{repeat}.h5"
        result = extract_features(
            videos, settings, weights, out,
            device=device, batch_size=args.batch_size, num_workers=args.num_workers, progress=False,
        )
        times["ours_end_to_end"].append(result.seconds)
        with h5py.File(out, "r") as handle:
            ours = handle[f"{'resnet' if kind == 'appearance' else 'resnext'}_features"][:]
            rows = {int(i): row for row, i in enumerate(handle["ids"][:])}
        for video_id, expected in original.items():
            difference = np.abs(ours[rows[video_id]] - expected).max()
            max_abs = max(max_abs, float(difference))
            max_rel = max(max_rel, float(difference / max(np.abs(expected).max(), 1e-12)))
        out.unlink()
    summary: dict[str, object] = {"clip_frames_per_video": settings.num_clips * settings.frames_per_clip}
    for name, values in times.items():
        if values:
            summary[f"{name}_fps"] = round(frames / statistics.median(values), 2)
    summary["preprocess_speedup_1proc"] = round(
        summary["ours_preprocess_1proc_fps"] / summary["original_preprocess_fps"], 2
    )
    summary["preprocess_speedup"] = round(summary["ours_preprocess_fps"] / summary["original_preprocess_fps"], 2)
    if not args.preprocess_only:
        summary["end_to_end_speedup"] = round(summary["ours_end_to_end_fps"] / summary["original_end_to_end_fps"], 2)
        summary["max_abs_difference"] = max_abs
        summary["max_rel_difference"] = max_rel
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=2, help="synthetic videos (alternating MJPG/avi, mp4v/mp4)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats; medians are reported")
    parser.add_argument("--num-clips", type=int, default=8, help="clips per video (MSVD-QA: 8)")
    parser.add_argument("--frames-per-clip", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="video length (MSVD clips are ~10 s)")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--appearance-size", type=int, default=224)
    parser.add_argument("--motion-size", type=int, default=112, help="frame size and the network's sample_size")
    parser.add_argument("--kinds", nargs="+", default=["appearance", "motion"], choices=["appearance", "motion"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--num-workers", type=int, default=None,
        help="decoding processes of our pipeline (default: 0 on a CPU, where they would take cores from the network; "
        "CPU count - 2 on a GPU machine)",
    )
    parser.add_argument(
        "--preprocess-workers", type=int, default=None,
        help="decoding processes when preprocessing is measured alone (default: the CPU count; it is also "
        "measured in the main process alone, as `ours_preprocess_1proc`)",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="our frames/clips per forward (default: one video)")
    parser.add_argument("--preprocess-only", action="store_true", help="skip the networks")
    args = parser.parse_args()

    device = resolve_device(args.device)
    if args.num_workers is None:
        args.num_workers = 0 if device.type == "cpu" else max(1, (os.cpu_count() or 2) - 2)
    if args.preprocess_workers is None:
        args.preprocess_workers = os.cpu_count() or 1
    set_tf32(False)  # both procedures in full float32 (B40)
    summary: dict[str, object] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "videos": args.videos,
        "video": f"{args.width}x{args.height}, {args.fps} fps, {args.seconds} s",
        "repeats": args.repeats,
        "num_workers": args.num_workers,
        "preprocess_workers": args.preprocess_workers,
        "batch_size": args.batch_size,
    }
    with tempfile.TemporaryDirectory(prefix="features_bench_") as tmp:
        folder = Path(tmp)
        videos = write_videos(folder, args.videos, seconds=args.seconds, fps=args.fps, size=(args.width, args.height))
        for kind in args.kinds:
            summary[kind] = bench_kind(kind, videos, args, device, folder)
            print(f"{kind}: {json.dumps(summary[kind])}", file=sys.stderr, flush=True)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
