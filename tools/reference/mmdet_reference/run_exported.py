"""mmdetection 3.3.0 runs a checkpoint that gndet wrote (`gndet convert CKPT.safetensors OUT.pth`).

    python run_exported.py --config gn/mask-rcnn_r50_fpn_gn-all_2x_coco.py \
        --checkpoint OUT.pth --image IMAGE.png --out DIR

Loads OUT.pth with mmengine's own `load_checkpoint` (strict: every key of the model, no extra one),
runs mmdetection's test path on IMAGE (the fixture image of make_fixture.py) and writes DIR/det_*.npy
and DIR/input.npy, which tests/nn/test_checkpoint_reference.cpp compares with gndet's predictions of
the same weights. Same environment as make_fixture.py (venv with torch 2.1.2 and mmdet 3.3.0,
torchvision's nms / roi_align standing in for mmcv's compiled ones unless --ops mmcv).
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import make_fixture as mf  # noqa: E402  (same config loading and inference path as the fixtures)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--config', required=True, help='path under mmdet/.mim/configs')
    ap.add_argument('--checkpoint', required=True)
    ap.add_argument('--image', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--ops', default='shim', choices=['auto', 'mmcv', 'shim'])
    args = ap.parse_args()

    mf.setup_ops(args.ops)
    import torch
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.runner import load_checkpoint
    register_all_modules()

    cfg = mf.load_cfg(args.config, mf.SCORE_THR)
    model = MODELS.build(cfg.model)
    # strict=True: a missing or unexpected key raises, so a partial load cannot pass silently.
    ckpt = load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
    model.eval()
    arrays, _, t_inf = mf.run_inference(model, args.image)
    os.makedirs(args.out, exist_ok=True)
    for k in ('input', 'det_bboxes', 'det_scores', 'det_labels', 'det_masks'):
        if k in arrays:
            np.save(os.path.join(args.out, k + '.npy'), arrays[k])
    print('mmdetection: %d tensors loaded from %s (meta keys: %s), %d detections in %.1f s' %
          (len(model.state_dict()), args.checkpoint, sorted(ckpt.get('meta', {}).keys()),
           arrays['det_scores'].shape[0], t_inf))


if __name__ == '__main__':
    main()
