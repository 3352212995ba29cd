#!/usr/bin/env bash
# The GPU check, in one call on a lent GPU machine (H100/H200 with CUDA 13, PyTorch,
# CuPy, CMake, ninja, pybind11 and scikit-build-core installed; no network):
#   1. builds nnfast for sm_90 with its CUDA module required, printing every kernel's
#      registers and spills (ptxas -v) into $OUT/ptxas.txt;
#   2. runs the CUDA tests (tests/test_cuda.py) through PyTorch and CuPy arrays;
#   3. benchmarks against the copy bandwidth and PyTorch (benchmarks/gpu_bench.py): Adam
#      in float32 and bfloat16 (against torch's fused Adam), the master-weights step
#      (bf16 params and grads, fp32 masters and moments, against a copy of its bytes), the
#      optimizer phase of an AMP step (nnfast.torch.GradScaler + max_grad_norm against
#      torch's unscale_ + clip_grad_norm_ + fused step), Lion (against DeepSpeed's FusedLion
#      where it imports) and Adafactor (against torch.optim.Adafactor),
#      softmax cross-entropy and the activations (float32; relu and softmax cross-entropy
#      in bfloat16 too, against torch on bfloat16 tensors).
# Finishes in a few minutes; the table comes last. Usage: benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/nnfast-gpu-check}"
mkdir -p "$OUT"
PYTHON="${PYTHON:-python3}"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
echo "== build (sm_90, NNFAST_CUDA=ON)"
start=$SECONDS
"$PYTHON" -m pip install --no-build-isolation --no-deps --force-reinstall -v \
  -Ccmake.define.NNFAST_CUDA=ON \
  -Ccmake.define.CMAKE_CUDA_ARCHITECTURES=90 \
  -Ccmake.define.NNFAST_CUDA_RESOURCE_USAGE=ON \
  -Cbuild-dir=build/gpu-check . > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
grep -E "ptxas info *: (Compiling|Used)|bytes stack frame" "$OUT/build.log" > "$OUT/ptxas.txt" || true
echo "built in $((SECONDS - start)) s; $(grep -c 'Used' "$OUT/ptxas.txt") kernels, " \
     "$(grep -E 'spill (stores|loads)' "$OUT/ptxas.txt" | grep -vc ' 0 bytes spill stores, 0 bytes spill loads') with spills"
"$PYTHON" -c "import nnfast; print(nnfast.info())"

echo "== CUDA tests"
start=$SECONDS
"$PYTHON" -m pytest -q -p no:cacheprovider tests/test_cuda.py > "$OUT/tests.log" 2>&1 \
  && status=0 || status=$?
tail -5 "$OUT/tests.log"
echo "tests took $((SECONDS - start)) s (exit $status)"
grep -E "^(FAILED|ERROR)|Error" "$OUT/tests.log" | head -20 || true

echo "== benchmark"
"$PYTHON" benchmarks/gpu_bench.py --json "$OUT/gpu_bench.json"
exit $status
