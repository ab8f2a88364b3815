#!/usr/bin/env bash
# gndet against mmdetection 3.3.0 itself on the CPU, in one run on the same machine, alternating the two
# sides (gndet first in odd rounds, mmdetection first in even ones): mask-rcnn_r50_fpn_gn-all_2x_coco
#   infer: one picture with real detections: gndet's bench/model_iteration --image (decode, test pipeline,
#          predict(), masks pasted at image size: what `gndet infer` runs) against mmdetection's
#          inference_detector, both on the same mmdetection .pth (bench/mmdet_maskrcnn_gn.py
#          --make-checkpoint: its random initialisation perturbed so that 100 detections pass the 0.05 score
#          threshold and the mask head works); each round checks that both give >= MIN_DETECTIONS, the same
#          number, and the same top detections (boxes within 1e-3 relative)
#   train: a training iteration on two 800 x 1333 images: bench/model_iteration --mode train against
#          mmdetection's model.train_step (data preprocessor, losses, backward, OptimWrapper SGD step)
# both in float32 with the same number of threads. Ends with, per mode, the median over rounds of the ratio
# mmdet / gndet (> 1: gndet is faster) with its min and max, and each side's median seconds.
#
#   bench/cpu_vs_mmdet.sh [BUILD_DIR] [PYTHON]
#     BUILD_DIR  a gndet build with bench/model_iteration (default: build)
#     PYTHON     a Python with mmdet 3.3.0, mmengine, mmcv(-lite), torch and torchvision (default:
#                $GNDET_MMDET_PYTHON, else /work/refenv/bin/python; tools/reference/mmdet_reference/README.md
#                says how to make one)
#   environment: MODES ("infer train"), ROUNDS (5), ITERS (3), WARMUP (1), THREADS (2), MIN_DETECTIONS (100),
#     GNDET_MMDET_DATA: where the checkpoint and the picture are kept, made on the first run (~20 s)
#     (default: ${XDG_CACHE_HOME:-~/.cache}/gndet/cpu_vs_mmdet)
# Each side is one process per mode and round; model building and checkpoint loading are not timed.
# About 25 minutes on 2 cores with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PY=${2:-${GNDET_MMDET_PYTHON:-/work/refenv/bin/python}}
MODES=${MODES:-"infer train"}
ROUNDS=${ROUNDS:-5}
ITERS=${ITERS:-3}
WARMUP=${WARMUP:-1}
THREADS=${THREADS:-2}
MIN_DETECTIONS=${MIN_DETECTIONS:-100}
DATA=${GNDET_MMDET_DATA:-${XDG_CACHE_HOME:-$HOME/.cache}/gndet/cpu_vs_mmdet}
CKPT=$DATA/mask-rcnn_r50_fpn_gn-all_perturbed.pth
IMAGE=$DATA/image.png
[ -x "$BUILD/bench/model_iteration" ] || { echo "cpu_vs_mmdet: no $BUILD/bench/model_iteration (build gndet first)"; exit 1; }
if ! "$PY" -c 'import mmdet' >/dev/null 2>&1; then
  echo "cpu_vs_mmdet: $PY cannot import mmdet: give a Python with mmdetection 3.3.0 (second argument or" \
    "GNDET_MMDET_PYTHON; tools/reference/mmdet_reference/README.md says how to install one)"
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=$THREADS
if [ ! -f "$CKPT" ] || [ ! -f "$IMAGE" ]; then
  echo "cpu_vs_mmdet: making the checkpoint and the picture in $DATA"
  "$PY" bench/mmdet_maskrcnn_gn.py --make-checkpoint "$CKPT" --image "$IMAGE" --threads "$THREADS" \
    --min-detections "$MIN_DETECTIONS" >"$tmp/make.txt" 2>&1 || { cat "$tmp/make.txt"; exit 1; }
  grep -E '^(wrote|[0-9]+ detections)' "$tmp/make.txt"
  echo
fi
echo "gndet vs mmdetection, CPU, $THREADS threads each, float32"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' + working tree')"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: bench/cpu_vs_mmdet.sh $BUILD $PY (MODES='$MODES' ROUNDS=$ROUNDS ITERS=$ITERS WARMUP=$WARMUP THREADS=$THREADS)"
versions='import mmdet, mmengine, mmcv, torch, torchvision as tv
print(f"mmdet {mmdet.__version__}, mmengine {mmengine.__version__}, mmcv {mmcv.__version__}, torch {torch.__version__}, torchvision {tv.__version__}")'
kernels="mmcv's compiled nms / roi_align"
"$PY" -c 'import mmcv._ext' >/dev/null 2>&1 || kernels="torchvision's nms / roi_align for mmcv-lite's missing mmcv._ext (tools/reference/mmdet_reference/mmcv_ext_shim.py)"
echo "reference: $("$PY" -c "$versions" 2>/dev/null); $kernels"
echo "inference checkpoint: $CKPT (sha256 $(sha256sum "$CKPT" | cut -c1-16)), picture: $IMAGE"

# run SIDE MODE ROUND: one process of one side, its output in $tmp/SIDE-MODE-ROUND.txt; prints its summary lines.
run() {
  local side=$1 mode=$2 r=$3 out=$tmp/$1-$2-$3.txt
  local infer_gndet=() infer_mmdet=()
  if [ "$mode" = infer ]; then
    infer_gndet=(--checkpoint "$CKPT" --image "$IMAGE" --detections "$tmp/gndet-dets-$r.json")
    infer_mmdet=(--checkpoint "$CKPT" --image "$IMAGE" --detections "$tmp/mmdet-dets-$r.json")
  fi
  echo "== round $r/$ROUNDS, $mode: $side =="
  local rc=0
  if [ "$side" = gndet ]; then
    "$BUILD/bench/model_iteration" --mode "$mode" --device cpu --iters "$ITERS" --warmup "$WARMUP" --threads "$THREADS" \
      "${infer_gndet[@]}" >"$out" 2>&1 || rc=$?
  else
    "$PY" bench/mmdet_maskrcnn_gn.py --mode "$mode" --iters "$ITERS" --warmup "$WARMUP" --threads "$THREADS" \
      "${infer_mmdet[@]}" >"$out" 2>&1 || rc=$?
  fi
  grep -E '^(iteration|median|peak host|RESULT)' "$out" || true
  if [ $rc -ne 0 ] || ! grep -q '^RESULT' "$out"; then
    echo "cpu_vs_mmdet: $side $mode failed (exit status $rc); its output:"
    cat "$out"
    exit 1
  fi
}

# detections FILE: the detections= of its RESULT line
detections() { sed -n 's/^RESULT .* detections=\([0-9]*\).*/\1/p' "$1"; }

for r in $(seq 1 "$ROUNDS"); do
  for mode in $MODES; do
    if [ $((r % 2)) -eq 1 ]; then sides="gndet mmdet"; else sides="mmdet gndet"; fi
    for side in $sides; do
      echo
      run "$side" "$mode" "$r"
    done
    if [ "$mode" = infer ]; then
      # The detections of this round's two runs: same count, >= MIN_DETECTIONS, same top detections.
      "$PY" bench/mmdet_maskrcnn_gn.py --check "$tmp/mmdet-dets-$r.json" --compare "$tmp/gndet-dets-$r.json" \
        >"$tmp/check-$r.txt" 2>&1 || { cat "$tmp/check-$r.txt"; echo "cpu_vs_mmdet: the detections differ"; exit 1; }
      cat "$tmp/check-$r.txt"
      g=$(detections "$tmp/gndet-infer-$r.txt")
      m=$(detections "$tmp/mmdet-infer-$r.txt")
      if [ "${g:-0}" -lt "$MIN_DETECTIONS" ] || [ "${m:-0}" -lt "$MIN_DETECTIONS" ] || [ "$g" != "$m" ]; then
        echo "cpu_vs_mmdet: detections gndet ${g:-?}, mmdet ${m:-?}: want the same number, >= $MIN_DETECTIONS"
        exit 1
      fi
    fi
  done
done

echo
echo "== summary: $ROUNDS rounds, each side's median of $ITERS timed iterations (after $WARMUP warm-up) per round =="
for mode in $MODES; do
  for r in $(seq 1 "$ROUNDS"); do
    g=$(sed -n 's/^RESULT .*median_s=\([0-9.eE+-]*\).*/\1/p' "$tmp/gndet-$mode-$r.txt")
    m=$(sed -n 's/^RESULT .*median_s=\([0-9.eE+-]*\).*/\1/p' "$tmp/mmdet-$mode-$r.txt")
    echo "$r $g $m"
  done >"$tmp/summary-$mode.txt"
  extra=""
  [ "$mode" = infer ] && extra=", $(detections "$tmp/gndet-infer-1.txt") detections each, top 10 matched"
  awk -v mode="$mode" -v extra="$extra" '
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; ++i) for (j = i; j > 1 && a[j - 1] > a[j]; --j) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { ++n; g[n] = $2; m[n] = $3; q[n] = $3 / $2; rounds = rounds sprintf("%s%.2f", n > 1 ? " " : "", q[n]) }
    END {
      lo = hi = q[1]; for (i = 2; i <= n; ++i) { if (q[i] < lo) lo = q[i]; if (q[i] > hi) hi = q[i] }
      printf "%s: mmdet / gndet = %.2f (min %.2f, max %.2f; rounds: %s); gndet %.3f s, mmdet %.3f s (medians)%s\n",
             mode, median(q, n), lo, hi, rounds, median(g, n), median(m, n), extra
    }' "$tmp/summary-$mode.txt"
done
echo "(> 1: gndet is faster); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
