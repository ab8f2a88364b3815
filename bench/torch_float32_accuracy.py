#!/usr/bin/env python3
"""How far float32 backbone / FPN outputs are from float64, in mmdetection (PyTorch on the CPU).

The PyTorch side of bench/float32_accuracy.cpp (issue 12's accuracy target). Builds an mmdetection
3.3.0 zoo model from the config shipped in its wheel (default: X-101 32x4d GN+WS Mask R-CNN) with
seeded random weights (mmdetection's own init_weights; no pretrained download), runs backbone and
neck on one seeded random image in float32 and in float64, and prints, for the stem, C2..C5 and P2..P6,
max |f32 - f64| / max |f64|. It also writes, for gndet to run the very same model and input:

  OUT/model.pth         the backbone's and neck's state dict (torch.save, {'state_dict': ...})
  OUT/input.f32         the image, float32, C order, shape (1, 3, H, W)
  OUT/c5_f64.f64, OUT/p5_f64.f64   float64 outputs, to check that gndet's float64 run is the same model

  /tmp/refenv/bin/python bench/torch_float32_accuracy.py --out /tmp/acc [--config REL] [--height 800 --width 1088]

Needs mmdetection 3.3.0 (see tools/reference/mmdet_reference/README.md). Runs single-threaded
(--threads) so that its summation order does not depend on the machine.
"""
import argparse
import copy
import os
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    ap.add_argument('--config', default='gn+ws/mask-rcnn_x101-32x4d_fpn_gn-ws-all_2x_coco.py')
    ap.add_argument('--height', type=int, default=800)
    ap.add_argument('--width', type=int, default=1088)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()

    import torch
    # mmcv-lite has no compiled ops, which mmdet imports (backbone and neck do not use them): the
    # reference tools' stand-in provides them when the real ones are missing.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tools', 'reference',
                                    'mmdet_reference'))
    import mmcv_ext_shim
    if not mmcv_ext_shim.real_ext_available():
        mmcv_ext_shim.install()
    import mmdet
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)

    cfg = Config.fromfile(os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'configs', a.config))
    cfg.model.backbone.init_cfg = None  # no pretrained download: mmdetection's random init
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    # Backbone and neck only: the heads need mmcv's compiled ops and play no part here.
    model = torch.nn.Module()
    model.backbone = MODELS.build(copy.deepcopy(cfg.model.backbone))
    model.neck = MODELS.build(copy.deepcopy(cfg.model.neck))
    model.backbone.init_weights()
    model.neck.init_weights()
    # GN weights start at 1 and biases at 0: perturb every parameter a little so that no layer is
    # an exact identity of its input statistics (as tools/reference's fixtures do).
    gen = torch.Generator().manual_seed(a.seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    model.eval()
    torch.save({'state_dict': model.state_dict()}, os.path.join(a.out, 'model.pth'))

    x = torch.from_numpy(np.random.RandomState(a.seed).randn(1, 3, a.height, a.width).astype(np.float32))
    x.numpy().tofile(os.path.join(a.out, 'input.f32'))

    def run(dtype):
        m = copy.deepcopy(model).to(dtype)
        b = m.backbone
        with torch.no_grad():
            stem = b.maxpool(b.relu(b.norm1(b.conv1(x.to(dtype)))))
            cs = b(x.to(dtype))
            ps = m.neck(cs)
        return stem.double(), [t.double() for t in cs], [t.double() for t in ps]

    s32, c32, p32 = run(torch.float32)
    s64, c64, p64 = run(torch.float64)
    c64[3].numpy().tofile(os.path.join(a.out, 'c5_f64.f64'))
    p64[3].numpy().tofile(os.path.join(a.out, 'p5_f64.f64'))
    print(f'PyTorch {torch.__version__}, mmdet {mmdet.__version__}, {a.config}, input 1x3x{a.height}x{a.width}, '
          f'{a.threads} threads')
    print('level  max|f32-f64|/max|f64|')
    for name, lo, hi in [('stem', s32, s64)] + [(f'C{i + 2}', c32[i], c64[i]) for i in range(4)] + \
                        [(f'P{i + 2}', p32[i], p64[i]) for i in range(5)]:
        print(f'{name:5s}  {float((lo - hi).abs().max() / hi.abs().max()):.3e}')
    sys.stdout.flush()


if __name__ == '__main__':
    main()
