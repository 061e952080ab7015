#!/usr/bin/env bash
# GPU check, one short command on a CUDA machine (finishes in a few minutes; must stay under 10):
#   1. the tests marked `gpu` (CUDA model forward/backward, the training fast path, CPU/GPU agreement);
#   2. training samples/s of the harness's loop at the paper's MSVD-QA shape (batch 256, N=8, F=16, D=768):
#      fp32 faithful (TF32 off), fp32 with TF32, bf16 autocast;
#   3. appearance and motion extraction frames/s, ours against the original procedure, on the GPU.
# Writes one JSON summary ($OUT/gpu_check.json, default benchmarks/out/). Needs only PyTorch, h5py and OpenCV
# (no MLflow): the repository is used in place through PYTHONPATH.
# Targets on one H100: >= 2,000 training samples/s in fp32 and >= 5,000 in bf16; extraction >= 3x the original.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } | tee "$OUT/device.txt"

echo "== CUDA tests"
python3 -m pytest -q -p no:cacheprovider -m gpu tests/model tests/train/test_gpu.py tests/features 2>&1 | tee "$OUT/gpu_tests.txt" | tail -5
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "== training throughput"
for variant in "fp32" "fp32 --tf32" "bf16"; do
    name=$(echo "$variant" | tr -d ' -')
    timeout 240 python3 benchmarks/train_loop.py --device cuda --precision $variant --questions 8192 --videos 1024 \
        --epochs 3 --json "$OUT/train_$name.json" > /dev/null || status=1
    python3 -c "import json,sys; r=json.load(open('$OUT/train_$name.json')); print('$variant', round(r['samples_per_second_median']), 'samples/s')" || status=1
done

echo "== feature extraction (ours vs the original procedure)"
timeout 240 python3 benchmarks/features.py --device cuda --videos 4 --repeats 2 --num-workers 4 > "$OUT/features.json" \
    || status=1
tail -c 1500 "$OUT/features.json"

python3 - "$OUT" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
summary = {"device": (out / "device.txt").read_text().strip().splitlines(),
           "gpu_tests": (out / "gpu_tests.txt").read_text().strip().splitlines()[-1:]}
for name in ("fp32", "fp32tf32", "bf16"):
    path = out / f"train_{name}.json"
    if path.is_file():
        summary[f"train_samples_per_second_{name}"] = round(json.loads(path.read_text())["samples_per_second_median"], 1)
try:
    text = (out / "features.json").read_text()
    summary["features"] = json.loads(text[text.index("{"):])
except (OSError, ValueError) as error:
    summary["features"] = f"unavailable: {error}"
summary["targets"] = {"train_fp32": 2000, "train_bf16": 5000, "extraction_end_to_end_ratio": 3.0}
(out / "gpu_check.json").write_text(json.dumps(summary, indent=1))
print(json.dumps({k: v for k, v in summary.items() if k != "features"}, indent=1))
PY
exit $status
