#!/usr/bin/env bash
# Times `gndet coco-eval` against pycocotools (COCO, loadRes, COCOeval evaluate + accumulate +
# summarize, via tools/reference/coco_reference.py) on the same COCO-sized files: 5,000 images
# x 100 detections, bbox and segm (mask results without boxes, as mmdetection writes them). Both
# are timed end to end (reading the JSON files included), one after the other, in one run; the
# 12 summary lines of both must be identical. Writes bench/results/coco_eval_vs_pycocotools.md.
#
#   bench/coco_eval_vs_pycocotools.sh [BUILD_DIR (default build)] [WORK_DIR (default /tmp/gndet_coco_eval_bench)]
#
# Needs python3 with numpy and pycocotools (python3 -m pip install pycocotools numpy).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
WORK=${2:-/tmp/gndet_coco_eval_bench}
GNDET="$BUILD/apps/gndet"
REF=tools/reference/coco_reference.py
OUT=bench/results/coco_eval_vs_pycocotools.md
[ -x "$GNDET" ] || { echo "no $GNDET: build first (ninja -C $BUILD)" >&2; exit 1; }
python3 -c 'import numpy, pycocotools' || { echo "needs python3 with numpy and pycocotools" >&2; exit 1; }

if [ ! -f "$WORK/dt_segm.json" ]; then
  echo "generating 5000 images x 100 detections in $WORK ..."
  python3 tools/reference/make_coco_eval_bench_files.py "$WORK" --images 5000 --dets 100 --seed 0
fi

now() { date +%s.%N; }
elapsed() { python3 -c "print('%.2f' % ($2 - $1))"; }

declare -A T
rows=""
for type in bbox segm; do
  dt="$WORK/dt_$type.json"
  t0=$(now); "$GNDET" coco-eval --gt "$WORK/gt.json" --dt "$dt" --iou-type "$type" > "$WORK/gndet_$type.txt"; t1=$(now)
  "$GNDET" coco-eval --gt "$WORK/gt.json" --dt "$dt" --iou-type "$type" --threads 1 > /dev/null; t2=$(now)
  python3 "$REF" eval "$WORK/gt.json" "$dt" "$type" > "$WORK/pycocotools_$type.json"; t3=$(now)
  python3 -c "import json,sys; sys.stdout.write(json.load(open('$WORK/pycocotools_$type.json'))['summary'])" \
    > "$WORK/pycocotools_$type.txt"
  same=no
  cmp -s "$WORK/gndet_$type.txt" "$WORK/pycocotools_$type.txt" && same=yes
  g=$(elapsed "$t0" "$t1"); g1=$(elapsed "$t1" "$t2"); p=$(elapsed "$t2" "$t3")
  ratio=$(python3 -c "print('%.1f' % ($p / $g))"); ratio1=$(python3 -c "print('%.1f' % ($p / $g1))")
  echo "$type: gndet ${g} s (1 thread ${g1} s), pycocotools ${p} s -> ${ratio}x (${ratio1}x single-threaded); identical summary: $same"
  rows+="| $type | $g | $g1 | $p | **${ratio}x** | ${ratio1}x | $same |"$'\n'
  T[$type]=$same
done

{
  echo "# gndet coco-eval vs pycocotools"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) CPU cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine)"
  echo "- gndet: $(git rev-parse --short HEAD 2>/dev/null || echo '?') (+ working tree), $BUILD ($(grep -m1 -o "buildtype=[a-z]*" "$BUILD/meson-info/intro-buildoptions.json" 2>/dev/null || echo release)); pycocotools $(python3 -c 'import importlib.metadata as m; print(m.version("pycocotools"))'), numpy $(python3 -c 'import numpy; print(numpy.__version__)'), $(python3 --version)"
  echo "- data: tools/reference/make_coco_eval_bench_files.py --images 5000 --dets 100 --seed 0: $(python3 -c "import json; d=json.load(open('$WORK/gt.json')); print(len(d['images']), 'images,', len(d['annotations']), 'gt objects (80 categories),')") 500000 detections; dt_bbox.json $(du -m "$WORK/dt_bbox.json" | cut -f1) MB, dt_segm.json (RLE masks, no boxes) $(du -m "$WORK/dt_segm.json" | cut -f1) MB"
  echo "- command: bench/coco_eval_vs_pycocotools.sh $BUILD $WORK"
  echo "- timed end to end, files read included: \`gndet coco-eval --gt gt.json --dt dt_TYPE.json --iou-type TYPE\` (OpenMP, all cores; and --threads 1) vs \`python3 tools/reference/coco_reference.py eval gt.json dt_TYPE.json TYPE\` (COCO(), loadRes, evaluate, accumulate, summarize)"
  echo
  echo "| iou type | gndet (s) | gndet 1 thread (s) | pycocotools (s) | speed-up | speed-up, 1 thread | identical 12 lines |"
  echo "|---|---|---|---|---|---|---|"
  printf "%s" "$rows"
} > "$OUT"
echo "wrote $OUT"
[ "${T[bbox]}" = yes ] && [ "${T[segm]}" = yes ]
