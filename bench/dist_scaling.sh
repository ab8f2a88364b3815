#!/usr/bin/env bash
# Data-parallel scaling on CPU ranks, in one run (one thread per rank), printed with ratios:
#   1. shapes config training throughput (images/s) at 1 and 2 ranks, batch 2 per rank
#   2. all-reduce of R-50 GN Mask R-CNN's gradients (45.7 M floats) by dist::GradientAverager vs
#      one MPI_Allreduce of a buffer of the same size
#   3. the zoo model, mask-rcnn_r50_fpn_gn-all_2x (the full 1333x800 recipe pipeline), training
#      throughput at 1 and 2 ranks, batch 1 per rank, on 640x640 shapes images (resized to 800x800:
#      no COCO images here); R50_STEPS=0 leaves it out (about 5 minutes on 2 idle cores)
#   bench/dist_scaling.sh [BUILD_DIR]      (default build; the shapes data go to /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
DATA=${TMPDIR:-/tmp}/gndet_bench_shapes
[ -f "$DATA/annotations/train.json" ] || "$B/apps/gndet" make-shapes --out "$DATA" --train 64 --val 4 --size 128 >/dev/null
CFG=configs/shapes/mask-rcnn_r18_fpn_gn-all_shapes.json
OPTS="train_dataloader.dataset.data_root=$DATA/ train_dataloader.batch_size=2 train_dataloader.num_workers=0"
MPI=(mpirun --bind-to core --map-by core -x OMP_NUM_THREADS=1)
[ "$(id -u)" = 0 ] && MPI+=(--allow-run-as-root)
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
out1=$("${MPI[@]}" -np 1 "$B/bench/dist_allreduce" throughput $CFG 20 $OPTS)
echo "$out1"
one=$(echo "$out1" | sed -n 's/.*= \([0-9.]*\) images\/s/\1/p')
out2=$("${MPI[@]}" -np 2 "$B/bench/dist_allreduce" throughput $CFG 20 $OPTS)
echo "$out2"
two=$(echo "$out2" | sed -n 's/.*= \([0-9.]*\) images\/s/\1/p')
awk -v a="$one" -v b="$two" 'BEGIN { printf "scaling 2 ranks / 1 rank: %.2f (ideal 2.00)\n", b / a }'
"${MPI[@]}" -np 2 "$B/bench/dist_allreduce" allreduce --reps 5

# 3. The zoo model at 1 and 2 ranks. Its COCO dataset entry is pointed at the shapes files; the
# class list follows the file's categories (the model keeps its 80 classes: labels 0-2 are a subset).
R50_STEPS=${R50_STEPS:-3}
if [ "$R50_STEPS" != 0 ]; then
  DATA640=${TMPDIR:-/tmp}/gndet_bench_shapes640
  [ -f "$DATA640/annotations/train.json" ] || "$B/apps/gndet" make-shapes --out "$DATA640" --train 8 --val 1 --size 640 >/dev/null
  R50=configs/gn/mask-rcnn_r50_fpn_gn-all_2x_coco.json
  R50_OPTS="train_dataloader.dataset.data_root=$DATA640/ train_dataloader.dataset.ann_file=annotations/train.json
    train_dataloader.dataset.data_prefix.img=train/
    train_dataloader.batch_size=1 train_dataloader.num_workers=0"
  r1=$("${MPI[@]}" -np 1 "$B/bench/dist_allreduce" throughput $R50 "$R50_STEPS" $R50_OPTS)
  echo "$r1"
  r2=$("${MPI[@]}" -np 2 "$B/bench/dist_allreduce" throughput $R50 "$R50_STEPS" $R50_OPTS)
  echo "$r2"
  a=$(echo "$r1" | sed -n 's/.*= \([0-9.]*\) images\/s/\1/p')
  b=$(echo "$r2" | sed -n 's/.*= \([0-9.]*\) images\/s/\1/p')
  awk -v a="$a" -v b="$b" 'BEGIN { printf "zoo model scaling 2 ranks / 1 rank: %.2f (ideal 2.00)\n", b / a }'
fi
