"""Layers from Python: C++ modules, state_dict as numpy, a module written in Python from those
parts trained with gndet.optim.SGD."""
import numpy as np
import pytest

import gndet
from gndet import nn


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.ConvWS2d(3, 8, 3, padding=1)
        self.gn = nn.GroupNorm(4, 8)
        self.head = nn.Linear(8, 2)
        self.scale = nn.Parameter(gndet.ones([1]))

    def forward(self, x):
        y = gndet.ops.relu(self.gn(self.conv(x)))
        return self.head(y.mean(dim=[2, 3])) * self.scale


def test_cpp_modules():
    gndet.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)
    assert conv.bias is None and conv.weight.shape == (4, 3, 3, 3)
    assert conv(gndet.randn([1, 3, 8, 8])).shape == (1, 4, 4, 4)
    seq = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.MaxPool2d(2))
    assert seq(gndet.randn([2, 3, 8, 8])).shape == (2, 4, 4, 4)
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]
    with pytest.raises(TypeError, match="kernel_size"):
        nn.Conv2d(3, 4, "3")


def test_resnet_and_fpn():
    backbone = nn.ResNet(depth=18, base_channels=8, stem_channels=8, norm_cfg={"type": "GN", "num_groups": 4},
                         init_cfg=None)
    feats = backbone(gndet.randn([1, 3, 64, 64]))
    assert [f.shape for f in feats] == [(1, 8, 16, 16), (1, 16, 8, 8), (1, 32, 4, 4), (1, 64, 2, 2)]
    neck = nn.FPN(in_channels=[8, 16, 32, 64], out_channels=16, num_outs=5, norm_cfg={"type": "GN", "num_groups": 4})
    outs = neck(feats)
    assert len(outs) == 5 and outs[-1].shape == (1, 16, 1, 1)
    with pytest.raises(gndet.Error, match="depth"):
        nn.ResNet(depth=19)


def test_state_dict_round_trip_and_strict_errors():
    gndet.manual_seed(1)
    a, b = TinyNet(), TinyNet()
    sd = a.state_dict()
    assert set(sd) == {"scale", "conv.weight", "conv.bias", "gn.weight", "gn.bias", "head.weight", "head.bias"}
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    b.load_state_dict({k: v.copy() for k, v in sd.items()})
    x = gndet.randn([2, 3, 6, 6])
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    bad = dict(sd)
    del bad["gn.bias"]
    bad["extra"] = np.zeros(1)
    with pytest.raises(gndet.Error, match="gn.bias"):
        b.load_state_dict(bad)
    report = b.load_state_dict(bad, strict=False)
    assert report["missing_keys"] == ["gn.bias"] and report["unexpected_keys"] == ["extra"]
    with pytest.raises(gndet.Error, match=r"weight \(expected \(8, 3, 3, 3\)"):
        nn.Conv2d(3, 8, 3).load_state_dict({"weight": np.zeros((1, 1, 1, 1), np.float32),
                                           "bias": np.zeros(8, np.float32)})


def test_python_module_trains_with_sgd():
    gndet.manual_seed(2)
    net = TinyNet()
    opt = gndet.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    x = gndet.tensor(rng.standard_normal((8, 3, 6, 6)), dtype="float32")
    target = gndet.tensor(rng.integers(0, 2, 8))
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = gndet.ops.cross_entropy(net(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert len(net.parameters()) == 7 and all(p.grad is not None for p in net.parameters())
    assert losses[-1] < 0.5 * losses[0], losses  # 40 steps of lr 0.1 on 8 samples
    with pytest.raises(ValueError, match="require grad"):
        gndet.optim.SGD([gndet.ones([1])], lr=0.1)
