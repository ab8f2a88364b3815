#!/usr/bin/env bash
# gndet's data pipeline against mmdetection's on one core, back to back on the same JPEGs
# (bench/data_pipeline.cpp, bench/mmdet_data_pipeline.py). Prints both and the ratio.
#
#   bench/data_pipeline.sh [BUILD_DIR] [PYTHON]
#     BUILD_DIR  a gndet build with bench/data_pipeline (default: build)
#     PYTHON     a Python with mmdetection 3.3 (default: $GNDET_REF_PYTHON, else /tmp/refenv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PY=${2:-${GNDET_REF_PYTHON:-/tmp/refenv/bin/python}}
DIR=${DIR:-/tmp/gndet_pipeline_images}
[ -x "$BUILD/bench/data_pipeline" ] || { echo "data_pipeline: no $BUILD/bench/data_pipeline (build gndet first)"; exit 1; }
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' + working tree')"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$BUILD/bench/data_pipeline" --dir "$DIR" | tee /tmp/gndet_pipeline.txt
echo
"$PY" bench/mmdet_data_pipeline.py --dir "$DIR" 2>/dev/null | tee /tmp/mmdet_pipeline.txt
ours=$(sed -n 's/^RESULT data_pipeline images_per_s=//p' /tmp/gndet_pipeline.txt)
theirs=$(sed -n 's/^RESULT mmdet_data_pipeline images_per_s=//p' /tmp/mmdet_pipeline.txt)
echo
awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "gndet / mmdetection images/s per core = %.2f (> 1: gndet is faster); 8 gndet workers: ~%.0f images/s\n", a / b, 8 * a }'
