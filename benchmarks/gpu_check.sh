#!/usr/bin/env bash
# GPU check, one short command on a CUDA machine (a few minutes; must stay under 10):
#   1. training samples/s of the harness's own loop at the paper's MSVD-QA shape (batch 256, N=8, F=16,
#      D=768): fp32 faithful (TF32 off) and bf16 autocast; targets on one H100: >= 2,000 and >= 5,000;
#   2. the tests marked `gpu` (CUDA model forward/backward, the training fast path, CPU/GPU agreement, CUDA
#      extraction and normalisation against the CPU);
#   3. appearance and motion extraction frames/s, ours against the original procedure (target >= 3x);
#   4. fp32 training with TF32 allowed, for reference.
# Writes $OUT/gpu_check.json (default benchmarks/out/) after every step, so a run cut short keeps what it
# measured. Needs only PyTorch, h5py, OpenCV and Pillow (no MLflow): the checkout is used through PYTHONPATH.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0

summarise() {
python3 - "$OUT" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
summary = {"targets": {"train_fp32_samples_per_second": 2000, "train_bf16_samples_per_second": 5000,
                       "extraction_end_to_end_ratio": 3.0}}
if (out / "device.txt").is_file():
    summary["device"] = (out / "device.txt").read_text().strip().splitlines()
for name in ("fp32", "bf16", "fp32tf32"):
    path = out / f"train_{name}.json"
    if path.is_file():
        result = json.loads(path.read_text())
        summary[f"train_{name}_samples_per_second"] = round(result["samples_per_second_median"], 1)
if (out / "gpu_tests.txt").is_file():
    summary["gpu_tests"] = (out / "gpu_tests.txt").read_text().strip().splitlines()[-1:]
if (out / "features.json").is_file():
    text = (out / "features.json").read_text()
    try:
        summary["features"] = json.loads(text[text.index("{"):])
    except ValueError as error:
        summary["features"] = f"unreadable: {error}"
(out / "gpu_check.json").write_text(json.dumps(summary, indent=1))
PY
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } | tee "$OUT/device.txt"
summarise

train() {  # name, then benchmark flags
    local name=$1; shift
    timeout 60 python3 benchmarks/train_loop.py --device cuda "$@" --questions 8192 --videos 1024 --epochs 2 \
        --json "$OUT/train_$name.json" > "$OUT/train_$name.log" 2>&1 || { status=1; tail -3 "$OUT/train_$name.log"; }
    summarise
    python3 -c "import json; r=json.load(open('$OUT/train_$name.json')); print('train $name:', round(r['samples_per_second_median']), 'samples/s')" 2>/dev/null
}

echo "== training throughput"
train fp32 --precision fp32
train bf16 --precision bf16

echo "== CUDA tests"
timeout 70 python3 -m pytest -q -p no:cacheprovider -m gpu tests/model tests/train/test_gpu.py tests/features \
    > "$OUT/gpu_tests.txt" 2>&1 || status=1
tail -3 "$OUT/gpu_tests.txt"
summarise

echo "== feature extraction (ours vs the original procedure)"
timeout 80 python3 benchmarks/features.py --device cuda --videos 16 --repeats 1 --num-workers 14 \
    > "$OUT/features.json" 2> "$OUT/features.log" || status=1
summarise
python3 -c "
import json; s=json.load(open('$OUT/gpu_check.json')); f=s.get('features')
print(json.dumps(f, indent=1)[:1500] if f else 'features: none')"

echo "== fp32 with TF32 (not faithful, for reference)"
train fp32tf32 --precision fp32 --tf32
exit $status
