#!/usr/bin/env python3
"""mmdetection 3.3's training data pipeline on one core, the reference of bench/data_pipeline.cpp.

The zoo's train pipeline without annotations, with mmdetection's own classes on the same JPEGs:
LoadImageFromFile (OpenCV decode), Resize(scale=(1333, 800), keep_ratio=True) (OpenCV bilinear),
RandomFlip(prob=0.5), PackDetInputs, then the model's DetDataPreprocessor (BGR -> RGB, normalise,
pad to a multiple of 32) on a batch of one, as mmdetection's runner does. OpenCV and PyTorch are
limited to one thread (one data-loader worker). Best of --rounds passes.

  /tmp/refenv/bin/python bench/mmdet_data_pipeline.py --dir /tmp/gndet_pipeline_images [--rounds 3]

(the directory is made by build/bench/data_pipeline; bench/data_pipeline.sh runs both)
"""
import argparse
import glob
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--dir', default='/tmp/gndet_pipeline_images')
    ap.add_argument('--rounds', type=int, default=3)
    a = ap.parse_args()

    import cv2
    import numpy as np
    import torch
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    # mmcv-lite has no compiled ops, which mmdet imports (the pipeline does not use them).
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tools', 'reference',
                                    'mmdet_reference'))
    import mmcv_ext_shim
    if not mmcv_ext_shim.real_ext_available():
        mmcv_ext_shim.install()
    import mmdet
    from mmcv.transforms import LoadImageFromFile
    from mmdet.datasets.transforms import PackDetInputs, RandomFlip, Resize
    from mmdet.models.data_preprocessors import DetDataPreprocessor

    paths = sorted(glob.glob(os.path.join(a.dir, 'img_*.jpg')))
    if not paths:
        raise SystemExit(f'no img_*.jpg in {a.dir}: run build/bench/data_pipeline first')
    load = LoadImageFromFile()
    resize = Resize(scale=(1333, 800), keep_ratio=True)
    flip = RandomFlip(prob=0.5)
    pack = PackDetInputs()
    pre = DetDataPreprocessor(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
                              pad_size_divisor=32)
    stages = ['read + decode (OpenCV)', 'resize to 1333 x 800', 'random flip', 'pack (HWC -> CHW tensor)',
              'normalise + pad (preprocessor)']
    best = [1e30] * len(stages)
    best_total = 1e30
    for _ in range(a.rounds):
        np.random.seed(1)
        t = [0.0] * len(stages)
        start = time.perf_counter()
        for path in paths:
            t0 = time.perf_counter()
            r = load({'img_path': path})
            t1 = time.perf_counter(); t[0] += t1 - t0
            r = resize(r)
            t0 = time.perf_counter(); t[1] += t0 - t1
            r = flip(r)
            t1 = time.perf_counter(); t[2] += t1 - t0
            packed = pack(r)
            t0 = time.perf_counter(); t[3] += t0 - t1
            out = pre({'inputs': [packed['inputs']], 'data_samples': [packed['data_samples']]}, training=False)
            t1 = time.perf_counter(); t[4] += t1 - t0
            assert out['inputs'].shape[-2] % 32 == 0 and out['inputs'].dtype == torch.float32
        best_total = min(best_total, time.perf_counter() - start)
        best = [min(b, x) for b, x in zip(best, t)]
    n = len(paths)
    print(f'mmdetection {mmdet.__version__} data pipeline (OpenCV {cv2.__version__}, PyTorch {torch.__version__}), '
          f'1 thread, {n} JPEGs in {a.dir}, best of {a.rounds} passes')
    for name, b in zip(stages, best):
        print(f'  {name:32s} {1e3 * b / n:7.2f} ms/image')
    print(f'  {"total":32s} {1e3 * best_total / n:7.2f} ms/image = {n / best_total:.1f} images/s per core')
    print(f'RESULT mmdet_data_pipeline images_per_s={n / best_total:.3f}')


if __name__ == '__main__':
    main()
