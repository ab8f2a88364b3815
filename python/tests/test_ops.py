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
    yr = gndet.ops.group_norm_relu(gndet.tensor(x), 3, gndet.tensor(w), gndet.tensor(b))
    np.testing.assert_allclose(yr.numpy(), np.maximum(numpy_group_norm(x, 3, w, b), 0), atol=1e-12)
    assert (yr.numpy() == 0).any() and (yr.numpy() > 0).any()
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


# Every op of the table on random data (never zeros) against numpy: (name, gndet call, numpy reference).
RNG = np.random.default_rng(11)
A, B = RNG.uniform(0.5, 2.0, (3, 4)), RNG.uniform(-1.5, 1.5, (3, 4))
IDX = np.array([2, 0, 1])
TABLE = [
    ("add", lambda a, b: gndet.ops.add(a, b), lambda a, b: a + b),
    ("add number", lambda a, b: gndet.ops.add(a, 0.5), lambda a, b: a + 0.5),
    ("sub", lambda a, b: gndet.ops.sub(a, b), lambda a, b: a - b),
    ("mul", lambda a, b: gndet.ops.mul(a, b), lambda a, b: a * b),
    ("mul number", lambda a, b: gndet.ops.mul(a, 3.0), lambda a, b: a * 3),
    ("div", lambda a, b: gndet.ops.div(b, a), lambda a, b: b / a),
    ("div number", lambda a, b: gndet.ops.div(a, 4.0), lambda a, b: a / 4),
    ("pow", lambda a, b: gndet.ops.pow(a, b), lambda a, b: a ** b),
    ("pow number", lambda a, b: gndet.ops.pow(a, 1.5), lambda a, b: a ** 1.5),
    ("maximum", lambda a, b: gndet.ops.maximum(a, b), np.maximum),
    ("minimum", lambda a, b: gndet.ops.minimum(a, b), np.minimum),
    ("eq", lambda a, b: gndet.ops.eq(a, a), lambda a, b: a == a),
    ("eq number", lambda a, b: gndet.ops.eq(a, float(A[0, 0])), lambda a, b: a == A[0, 0]),
    ("ne", lambda a, b: gndet.ops.ne(a, b), lambda a, b: a != b),
    ("lt", lambda a, b: gndet.ops.lt(b, a), lambda a, b: b < a),
    ("lt number", lambda a, b: gndet.ops.lt(b, 0.0), lambda a, b: b < 0),
    ("le", lambda a, b: gndet.ops.le(b, a), lambda a, b: b <= a),
    ("gt", lambda a, b: gndet.ops.gt(b, a), lambda a, b: b > a),
    ("gt number", lambda a, b: gndet.ops.gt(b, 0.0), lambda a, b: b > 0),
    ("ge", lambda a, b: gndet.ops.ge(b, a), lambda a, b: b >= a),
    ("logical_and", lambda a, b: gndet.ops.logical_and(gndet.ops.gt(b, 0.0), gndet.ops.lt(a, 1.0)),
     lambda a, b: (b > 0) & (a < 1)),
    ("logical_or", lambda a, b: gndet.ops.logical_or(gndet.ops.gt(b, 0.0), gndet.ops.lt(a, 1.0)),
     lambda a, b: (b > 0) | (a < 1)),
    ("logical_not", lambda a, b: gndet.ops.logical_not(gndet.ops.gt(b, 0.0)), lambda a, b: ~(b > 0)),
    ("where", lambda a, b: gndet.ops.where(gndet.ops.gt(b, 0.0), a, b), lambda a, b: np.where(b > 0, a, b)),
    ("where number", lambda a, b: gndet.ops.where(gndet.ops.gt(b, 0.0), a, -1.0), lambda a, b: np.where(b > 0, a, -1)),
    ("neg", lambda a, b: gndet.ops.neg(b), lambda a, b: -b),
    ("exp", lambda a, b: gndet.ops.exp(b), lambda a, b: np.exp(b)),
    ("log", lambda a, b: gndet.ops.log(a), lambda a, b: np.log(a)),
    ("sqrt", lambda a, b: gndet.ops.sqrt(a), lambda a, b: np.sqrt(a)),
    ("rsqrt", lambda a, b: gndet.ops.rsqrt(a), lambda a, b: 1 / np.sqrt(a)),
    ("abs", lambda a, b: gndet.ops.abs(b), lambda a, b: np.abs(b)),
    ("relu", lambda a, b: gndet.ops.relu(b), lambda a, b: np.maximum(b, 0)),
    ("add_relu", lambda a, b: gndet.ops.add_relu(b, -a / 2), lambda a, b: np.maximum(b - a / 2, 0)),
    ("sigmoid", lambda a, b: gndet.ops.sigmoid(b), lambda a, b: 1 / (1 + np.exp(-b))),
    ("tanh", lambda a, b: gndet.ops.tanh(b), lambda a, b: np.tanh(b)),
    ("clamp", lambda a, b: gndet.ops.clamp(b, -0.5, 0.7), lambda a, b: np.clip(b, -0.5, 0.7)),
    ("clamp_min", lambda a, b: gndet.ops.clamp_min(b, -0.5), lambda a, b: np.maximum(b, -0.5)),
    ("clamp_max", lambda a, b: gndet.ops.clamp_max(b, 0.7), lambda a, b: np.minimum(b, 0.7)),
    ("sign", lambda a, b: gndet.ops.sign(b), lambda a, b: np.sign(b)),
    ("floor", lambda a, b: gndet.ops.floor(b), lambda a, b: np.floor(b)),
    ("ceil", lambda a, b: gndet.ops.ceil(b), lambda a, b: np.ceil(b)),
    ("cat", lambda a, b: gndet.ops.cat([a, b], 1), lambda a, b: np.concatenate([a, b], 1)),
    ("stack", lambda a, b: gndet.ops.stack([a, b]), lambda a, b: np.stack([a, b])),
    ("split sizes", lambda a, b: gndet.ops.split(a, [1, 3], 1)[1], lambda a, b: a[:, 1:]),
    ("index_select", lambda a, b: gndet.ops.index_select(a, 0, gndet.tensor(IDX)), lambda a, b: a[IDX]),
    ("index_add", lambda a, b: gndet.ops.index_add(a, 0, gndet.tensor(IDX), b),
     lambda a, b: a + b[np.argsort(IDX)]),
    ("gather", lambda a, b: gndet.ops.gather(a, 1, gndet.tensor(np.tile(IDX, (3, 1)))),
     lambda a, b: np.take_along_axis(a, np.tile(IDX, (3, 1)), 1)),
    ("scatter_add", lambda a, b: gndet.ops.scatter_add(a, 1, gndet.tensor(np.tile(IDX, (3, 1))), b[:, :3]),
     lambda a, b: a + np.stack([np.bincount(IDX, w, minlength=4) for w in b[:, :3]])),
    ("masked_fill", lambda a, b: gndet.ops.masked_fill(a, gndet.ops.gt(b, 0.0), 9.0), lambda a, b: np.where(b > 0, 9, a)),
    ("nonzero", lambda a, b: gndet.ops.nonzero(gndet.ops.gt(b, 0.0)), lambda a, b: np.argwhere(b > 0)),
    ("sum", lambda a, b: gndet.ops.sum(a), lambda a, b: a.sum()),
    ("sum dims", lambda a, b: gndet.ops.sum(a, [0], True), lambda a, b: a.sum(0, keepdims=True)),
    ("mean", lambda a, b: gndet.ops.mean(b), lambda a, b: b.mean()),
    ("mean dims", lambda a, b: gndet.ops.mean(b, [1]), lambda a, b: b.mean(1)),
    ("var", lambda a, b: gndet.ops.var(b), lambda a, b: b.var(ddof=1)),
    ("var dims", lambda a, b: gndet.ops.var(b, [1], False), lambda a, b: b.var(1)),
    ("max", lambda a, b: gndet.ops.max(b), lambda a, b: b.max()),
    ("max dim", lambda a, b: gndet.ops.max(b, 1)[0], lambda a, b: b.max(1)),
    ("min", lambda a, b: gndet.ops.min(b), lambda a, b: b.min()),
    ("min dim", lambda a, b: gndet.ops.min(b, 0)[1], lambda a, b: b.argmin(0)),
    ("argmax", lambda a, b: gndet.ops.argmax(b, 1), lambda a, b: b.argmax(1)),
    ("argmin", lambda a, b: gndet.ops.argmin(b, 1), lambda a, b: b.argmin(1)),
    ("sort", lambda a, b: gndet.ops.sort(b, 1, True)[0], lambda a, b: -np.sort(-b, 1)),
    ("argsort", lambda a, b: gndet.ops.argsort(b, 1), lambda a, b: np.argsort(b, 1, kind="stable")),
    ("topk", lambda a, b: gndet.ops.topk(b, 2, 1, False)[0], lambda a, b: np.sort(b, 1)[:, :2]),
    ("softmax", lambda a, b: gndet.ops.softmax(b, 1), lambda a, b: np.exp(b) / np.exp(b).sum(1, keepdims=True)),
    ("log_softmax", lambda a, b: gndet.ops.log_softmax(b, 0), lambda a, b: b - np.log(np.exp(b).sum(0))),
    ("matmul", lambda a, b: gndet.ops.matmul(a, b.t()), lambda a, b: a @ b.T),
    ("bmm", lambda a, b: gndet.ops.bmm(a.unsqueeze(0), b.t().unsqueeze(0)), lambda a, b: (a @ b.T)[None]),
    ("linear", lambda a, b: gndet.ops.linear(a, b, gndet.tensor(B[0, :3])), lambda a, b: a @ b.T + B[0, :3]),
    ("l1_loss", lambda a, b: gndet.ops.l1_loss(a, b, "sum"), lambda a, b: np.abs(a - b).sum()),
    ("smooth_l1_loss", lambda a, b: gndet.ops.smooth_l1_loss(a, b, 1.0, "none"),
     lambda a, b: np.where(np.abs(a - b) < 1, 0.5 * (a - b) ** 2, np.abs(a - b) - 0.5)),
    ("binary_cross_entropy_with_logits", lambda a, b: gndet.ops.binary_cross_entropy_with_logits(b, a / 2, None, "none"),
     lambda a, b: np.maximum(b, 0) - b * a / 2 + np.log1p(np.exp(-np.abs(b)))),
    ("cross_entropy", lambda a, b: gndet.ops.cross_entropy(b, gndet.tensor(IDX), None, -100, "none"),
     lambda a, b: -(b - np.log(np.exp(b).sum(1, keepdims=True)))[np.arange(3), IDX]),
]


@pytest.mark.parametrize("name,op,ref", TABLE, ids=[t[0] for t in TABLE])
def test_op_against_numpy(name, op, ref):
    got = op(gndet.tensor(A), gndet.tensor(B))
    # float64 on both sides; reductions and transcendental functions round differently: a few ulps.
    np.testing.assert_allclose(np.asarray(got.numpy(), dtype=np.float64), np.asarray(ref(A, B), dtype=np.float64),
                               rtol=1e-12, atol=1e-12)


def test_the_table_is_covered():
    """Each op of gndet.ops is exercised by a test of this file (the table above or a named test)."""
    elsewhere = {"split", "conv2d", "conv_transpose2d", "conv_ws2d", "weight_standardization", "group_norm",
                 "group_norm_relu",
                 "frozen_batch_norm", "max_pool2d", "upsample_nearest", "interpolate_bilinear", "nms", "batched_nms",
                 "paste_masks", "roi_align", "box_iou", "topk", "log_softmax", "smooth_l1_loss"}
    tested = {name.split(" ")[0] for name, _, _ in TABLE} | elsewhere
    assert sorted(set(gndet.ops.__all__) - tested) == []


def test_layers_and_resizing():
    x = gndet.tensor(RNG.standard_normal((1, 2, 4, 4)))
    np.testing.assert_array_equal(gndet.ops.upsample_nearest(x, 2).numpy(), x.numpy().repeat(2, 2).repeat(2, 3))
    np.testing.assert_array_equal(gndet.ops.upsample_nearest(x, 8, 8).numpy(), x.numpy().repeat(2, 2).repeat(2, 3))
    assert gndet.ops.interpolate_bilinear(x, 7, 5).shape == (1, 2, 7, 5)
    np.testing.assert_allclose(gndet.ops.interpolate_bilinear(x, 4, 4).numpy(), x.numpy(), atol=1e-12)
    pooled = gndet.ops.max_pool2d(x, 2, 2).numpy()
    np.testing.assert_array_equal(pooled, x.numpy().reshape(1, 2, 2, 2, 2, 2).max(axis=(3, 5)))
    w = gndet.tensor(RNG.standard_normal((2, 3, 3, 3)))
    y = gndet.ops.conv_transpose2d(x, w, None, stride=2, padding=1)
    assert y.shape == (1, 3, 7, 7)
    stats = [gndet.tensor(RNG.uniform(0.5, 1.5, 2)) for _ in range(4)]
    fb = gndet.ops.frozen_batch_norm(x, *stats).numpy()
    wt, bs, mu, var = (s.numpy().reshape(1, 2, 1, 1) for s in stats)
    np.testing.assert_allclose(fb, (x.numpy() - mu) / np.sqrt(var + 1e-5) * wt + bs, atol=1e-12)
    boxes = gndet.tensor([[0, 0, 4, 4], [1, 1, 4, 4], [0, 0, 4, 4]], dtype="float32")
    kept = gndet.ops.batched_nms(boxes, gndet.tensor([0.9, 0.8, 0.7]), gndet.tensor([0, 0, 1]), 0.5)
    assert kept.tolist() == [0, 2]
    masks = gndet.ops.paste_masks(gndet.ones([1, 4, 4]), gndet.tensor([[2, 2, 6, 6]], dtype="float32"), 8, 8)
    assert masks.shape == (1, 8, 8) and int(masks.numpy().sum()) == 16
