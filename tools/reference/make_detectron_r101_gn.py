"""A Detectron-style `R-101-GN.pkl` and the backbone mmdetection builds from the same numbers.

    python make_detectron_r101_gn.py --out DIR

Detectron's ImageNet GN backbones (`R-50-GN.pkl`, `R-101-GN.pkl`: Caffe2 blobs in a Python 2
pickle) cannot be downloaded here, so this script writes one of the same form from seeded random
numbers: `{"blobs": {name: numpy float32 array}}` with Detectron's blob names (conv1_w, conv1_gn_s,
res2_0_branch2a_w, res2_0_branch1_gn_b, ...), the `*_momentum` blobs a Detectron training run
leaves next to each weight and the ImageNet classifier (pred_w, pred_b), pickled with protocol 2
as Python 2's cPickle wrote them. The names are produced here, from mmdetection's own ResNet-101 GN
backbone (mmdet.models.backbones.ResNet, depth 101, GN 32 groups) and Detectron's naming
(stage resK = layerK-1, unit i, branch2a/b/c = conv1/2/3 + gn1/2/3, branch1 = downsample), a
second, independent statement of the table in nn/checkpoint_io/name_map.cpp.

It also writes DIR/r101_gn_backbone.safetensors: mmdetection's ResNet state_dict after loading
those numbers, under `backbone.` names. tests/nn/test_checkpoint_reference.cpp converts the .pkl
natively and requires exactly these tensors, bit for bit.
"""
import argparse
import os
import pickle
import sys
from collections import OrderedDict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'mmdet_reference'))


def detectron_name(mmdet_key):
    """mmdetection ResNet key (without `backbone.`) -> Detectron blob name."""
    parts = mmdet_key.split('.')
    wb = {'weight': 's', 'bias': 'b'}
    if parts[0] == 'conv1':
        return 'conv1_w'
    if parts[0] == 'gn1':
        return 'conv1_gn_' + wb[parts[1]]
    layer, unit, module = int(parts[0][len('layer'):]), int(parts[1]), parts[2]
    prefix = 'res%d_%d_' % (layer + 1, unit)
    if module == 'downsample':
        return prefix + ('branch1_w' if parts[3] == '0' else 'branch1_gn_' + wb[parts[4]])
    branch = 'branch2' + 'abc'[int(module[-1]) - 1]
    if module.startswith('conv'):
        return prefix + branch + '_w'
    return prefix + branch + '_gn_' + wb[parts[3]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    args = ap.parse_args()
    import mmcv_ext_shim  # mmcv-lite has no compiled ops; mmdet imports them (see its README)
    if not mmcv_ext_shim.real_ext_available():
        mmcv_ext_shim.install()
    import torch
    from mmdet.models.backbones import ResNet
    from safetensors.torch import save_file

    torch.manual_seed(101)
    rng = np.random.default_rng(101)
    net = ResNet(depth=101, norm_cfg=dict(type='GN', num_groups=32, requires_grad=True))
    blobs = OrderedDict()
    names = OrderedDict()
    for k, v in net.state_dict().items():
        # Seeded numbers of the tensor's shape; GN scales near 1 so they look like trained ones.
        a = rng.standard_normal(v.shape).astype(np.float32) * 0.05
        if k.endswith('.weight') and v.dim() == 1:
            a += 1.0
        name = detectron_name(k)
        assert name not in blobs, name
        blobs[name] = a
        blobs[name + '_momentum'] = np.zeros_like(a)  # what Detectron's SGD leaves next to each blob
        names[k] = name
    blobs['pred_w'] = rng.standard_normal((1000, 2048)).astype(np.float32) * 0.01  # ImageNet classifier
    blobs['pred_b'] = np.zeros(1000, np.float32)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'R-101-GN.pkl'), 'wb') as f:
        pickle.dump({'blobs': blobs}, f, protocol=2)

    # mmdetection's backbone with those numbers, as mmdetection would hold them after loading.
    sd = OrderedDict((k, torch.from_numpy(blobs[n].copy())) for k, n in names.items())
    net.load_state_dict(sd, strict=True)
    save_file(OrderedDict(('backbone.' + k, v.contiguous()) for k, v in net.state_dict().items()),
              os.path.join(args.out, 'r101_gn_backbone.safetensors'))
    print('wrote %d blobs (%d weights) to %s/R-101-GN.pkl' % (len(blobs), len(names), args.out))


if __name__ == '__main__':
    main()
