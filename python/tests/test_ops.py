"""gndet.ops: generated from the op table, equal to numpy references, differentiable where the
C++ op is (float64 gradcheck), and complete against the library's registry of differentiable ops."""
import numpy as np
import pytest

import gndet

# Differentiable ops the library registers that Python reaches as Tensor methods or operators,
# or that are internal steps of a public op (each named with where it is reached).
REACHED_OTHERWISE = {
    "view": "Tensor.view", "reshape": "Tensor.reshape", "permute": "Tensor.permute", "expand": "Tensor.expand",
    "narrow": "Tensor.narrow / indexing", "slice": "indexing", "select": "indexing", "squeeze": "Tensor.squeeze",
    "unsqueeze": "Tensor.unsqueeze", "contiguous": "Tensor.contiguous", "clone": "Tensor.clone",
    "to_dtype": "Tensor.to", "to_device": "Tensor.to", "transpose": "Tensor.transpose", "flatten": "Tensor.flatten",
    "python_function": "gndet.autograd.Function", "add_scalar": "ops.add(x, number)", "mul_scalar": "ops.mul(x, number)",
    "div_scalar": "ops.div(x, number)", "rdiv_scalar": "number / Tensor", "pow_scalar": "ops.pow(x, number)",
}


def test_every_registered_op_is_reachable():
    public = set(gndet.ops.__all__)
    missing = [op for op in gndet.registered_ops() if op not in public and op not in REACHED_OTHERWISE]
    assert not missing, f"differentiable ops with no Python entry: {missing}"


def test_ops_have_signatures_and_docs():
    assert len(gndet.ops.__all__) >= 60
    assert "eps: float = 1e-05" in gndet.ops.group_norm.__doc__
    assert "GroupNorm" in gndet.ops.group_norm.__doc__


def numpy_group_norm(x, groups, w, b, eps=1e-5):
    n, c = x.shape[:2]
    g = x.reshape(n, groups, -1)
    y = (g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + eps)
    return y.reshape(x.shape) * w.reshape(1, c, 1, 1) + b.reshape(1, c, 1, 1)


def numpy_conv2d(x, w, stride, pad):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    y = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            y[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return y


def test_group_norm_and_conv_equal_numpy():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 6, 5, 4)), rng.standard_normal(6), rng.standard_normal(6)
    y = gndet.ops.group_norm(gndet.tensor(x), 3, gndet.tensor(w), gndet.tensor(b))
    # float64 on both sides; the two sum in different orders: a few ulps of O(1) values.
    np.testing.assert_allclose(y.numpy(), numpy_group_norm(x, 3, w, b), atol=1e-12)
    cw = rng.standard_normal((4, 6, 3, 3))
    c = gndet.ops.conv2d(gndet.tensor(x), gndet.tensor(cw), None, stride=2, padding=1)
    np.testing.assert_allclose(c.numpy(), numpy_conv2d(x, cw, 2, 1), atol=1e-12)
    # conv_ws2d is conv2d of the standardised weight (mean 0, std 1 per output filter).
    ws = gndet.ops.weight_standardization(gndet.tensor(cw)).numpy()
    np.testing.assert_allclose(ws.reshape(4, -1).mean(1), 0, atol=1e-12)
    cws = gndet.ops.conv_ws2d(gndet.tensor(x), gndet.tensor(cw), None, padding=(1, 1))
    np.testing.assert_allclose(cws.numpy(), numpy_conv2d(x, ws, 1, 1), atol=1e-11)


def test_detection_ops():
    boxes = gndet.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype="float32")
    scores = gndet.tensor([0.9, 0.8, 0.7])
    assert gndet.ops.nms(boxes, scores, 0.5).tolist() == [0, 2]
    iou = gndet.ops.box_iou(boxes, boxes).numpy()
    np.testing.assert_allclose(iou[0, 1], 81 / 100, rtol=1e-6)
    with pytest.raises(ValueError, match="iou"):
        gndet.ops.box_iou(boxes, boxes, mode="giou")
    feat = gndet.tensor(np.arange(64, dtype=np.float32).reshape(1, 1, 8, 8))
    rois = gndet.tensor([[0, 0, 0, 8, 8]], dtype="float32")
    out = gndet.ops.roi_align(feat, rois, out_h=2, out_w=2, spatial_scale=1.0, sampling_ratio=2)
    assert out.shape == (1, 1, 2, 2)
    # A linear ramp averages to its value at each bin's centre (aligned: pixel centres at +0.5).
    np.testing.assert_allclose(out.numpy().ravel(), [18 - 4.5, 22 - 4.5, 50 - 4.5, 54 - 4.5], atol=1e-4)
    vals, idx = gndet.ops.topk(scores, 2)
    assert idx.tolist() == [0, 1]
    assert [p.shape for p in gndet.ops.split(gndet.zeros([5, 2]), 2)] == [(2, 2), (2, 2), (1, 2)]


def test_bad_arguments():
    with pytest.raises(TypeError):
        gndet.ops.conv2d(gndet.ones([1, 1, 3, 3]), "w")
    with pytest.raises(TypeError):
        gndet.ops.group_norm(None, 2)
    with pytest.raises(ValueError, match="reduction"):
        gndet.ops.l1_loss(gndet.ones([2]), gndet.ones([2]), reduction="avg")
    with pytest.raises(gndet.Error, match="group_norm"):
        gndet.ops.group_norm(gndet.ones([1, 6, 2, 2]), 4)


@pytest.mark.parametrize("name,fn,shapes", [
    ("group_norm", lambda x, w, b: gndet.ops.group_norm(x, 2, w, b), [(2, 4, 3, 3), (4,), (4,)]),
    ("conv_ws2d", lambda x, w: gndet.ops.conv_ws2d(x, w, None, padding=1), [(1, 2, 4, 4), (3, 2, 3, 3)]),
    ("roi_align", lambda x: gndet.ops.roi_align(x, gndet.tensor([[0, 0.5, 0.5, 5.2, 4.1]], dtype="float64"), 2, 2),
     [(1, 2, 6, 6)]),
    ("softmax", lambda x: gndet.ops.log_softmax(x, 1), [(3, 5)]),
    ("smooth_l1", lambda a, b: gndet.ops.smooth_l1_loss(a, b, beta=0.5), [(4, 4), (4, 4)]),
])
def test_gradcheck_ops(name, fn, shapes):
    rng = np.random.default_rng(7)
    inputs = [gndet.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]
    r = gndet.gradcheck(fn, inputs)
    assert r.passed, f"{name}: {r!r}"
    assert r.elements == sum(int(np.prod(s)) for s in shapes)
