#!/usr/bin/env bash
# gndet against PyTorch on the CPU, back to back in one run on the same machine: inference of one
# 800x1333 image and a training iteration on two, of mask-rcnn_r50_fpn_gn-all (gndet's
# bench/model_iteration) and of torchvision's Mask R-CNN with GroupNorm built to the same recipe
# (bench/torchvision_maskrcnn_gn.py), both with the same number of threads. Prints each side's
# iterations and the ratio torch / gndet (> 1: gndet is faster).
#
#   bench/cpu_vs_pytorch.sh [BUILD_DIR] [PYTHON]
#     BUILD_DIR  a gndet build with bench/model_iteration (default: build)
#     PYTHON     a Python with torch and torchvision (default: $GNDET_TORCH_PYTHON, else python3)
#   environment: MODES ("infer train"), ITERS (3), WARMUP (1), THREADS (2)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PY=${2:-${GNDET_TORCH_PYTHON:-python3}}
MODES=${MODES:-"infer train"}
ITERS=${ITERS:-3}
WARMUP=${WARMUP:-1}
THREADS=${THREADS:-2}
[ -x "$BUILD/bench/model_iteration" ] || { echo "cpu_vs_pytorch: no $BUILD/bench/model_iteration (build gndet first)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "gndet vs PyTorch, CPU, $THREADS threads each"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' + working tree')"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: bench/cpu_vs_pytorch.sh $BUILD $PY (MODES='$MODES' ITERS=$ITERS WARMUP=$WARMUP THREADS=$THREADS)"
for mode in $MODES; do
  echo
  echo "== $mode: gndet =="
  OMP_NUM_THREADS=$THREADS "$BUILD/bench/model_iteration" --mode "$mode" --device cpu --iters "$ITERS" --warmup "$WARMUP" \
    --threads "$THREADS" | tee "$tmp/gndet-$mode.txt"
  echo
  echo "== $mode: PyTorch =="
  OMP_NUM_THREADS=$THREADS "$PY" bench/torchvision_maskrcnn_gn.py --mode "$mode" --device cpu --iters "$ITERS" \
    --warmup "$WARMUP" --threads "$THREADS" --ours "$tmp/gndet-$mode.txt"
done
