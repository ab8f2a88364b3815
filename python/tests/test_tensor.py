"""Tensors from Python: copies and shared memory with numpy, DLPack, metadata, operators,
indexing, autograd basics, and errors as Python exceptions."""
import gc

import numpy as np
import pytest

import gndet


def test_tensor_copies_and_keeps_dtype():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = gndet.tensor(a)
    a[0, 0] = 100.0
    assert t.shape == (2, 3) and t.dtype == "float64" and t.device == "cpu"
    assert t.numpy()[0, 0] == 0.0  # a copy
    assert gndet.tensor([1.5, 2.5]).dtype == "float32"  # Python floats: float32, as torch.tensor
    assert gndet.tensor([1, 2]).dtype == "int64"
    assert gndet.tensor([[1, 2]], dtype="float64").dtype == "float64"


def test_from_numpy_shares_memory_both_ways():
    a = np.zeros((3, 4), dtype=np.float32)
    t = gndet.from_numpy(a)
    a[1, 2] = 7.0
    assert t[1, 2].item() == 7.0
    t.fill_(3.0)
    assert (a == 3.0).all()
    # Strided views share too.
    b = np.arange(20, dtype=np.int64).reshape(4, 5)[:, 1::2]
    tb = gndet.from_numpy(b)
    assert tb.shape == (4, 2) and tb.stride() == (5, 2)
    np.testing.assert_array_equal(tb.numpy(), b)


def test_memory_lives_as_long_as_either_side():
    a = np.arange(1000, dtype=np.float32)
    t = gndet.from_numpy(a)
    del a
    gc.collect()
    assert t.sum().item() == sum(range(1000))  # the array stays alive through the tensor
    n = (gndet.ones([100]) * 2).numpy()
    gc.collect()
    assert n.sum() == 200.0  # the tensor's storage stays alive through the array


def test_numpy_refuses_what_it_cannot_share():
    x = gndet.ones([2], requires_grad=True)
    with pytest.raises(TypeError, match="detach"):
        x.numpy()
    assert x.detach().numpy().tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="negative strides"):
        gndet.from_numpy(np.arange(4.0)[::-1])
    with pytest.raises(TypeError):
        gndet.from_numpy([1, 2, 3])
    with pytest.raises(TypeError):
        gndet.from_numpy(np.array([1 + 2j]))


def test_dlpack_both_ways_with_numpy():
    t = gndet.arange(6, dtype="float32").reshape(2, 3)
    n = np.from_dlpack(t)
    n[0, 0] = 9.0
    assert t[0, 0].item() == 9.0  # shared
    a = np.ones((2, 2), dtype=np.float64)
    u = gndet.from_dlpack(a)
    a[1, 1] = 5.0
    assert u.dtype == "float64" and u[1, 1].item() == 5.0


def test_dlpack_with_torch():
    torch = pytest.importorskip("torch", reason="torch is not installed in this environment")
    t = gndet.arange(6, dtype="float32").reshape(2, 3)
    tt = torch.from_dlpack(t)
    assert tt.shape == (2, 3) and tt[1, 2].item() == 5.0
    g = gndet.from_dlpack(torch.arange(4, dtype=torch.float64))
    assert g.dtype == "float64" and g.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_metadata_and_conversions():
    t = gndet.zeros([2, 3, 4])
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.numel() == 24 and len(t) == 2 and t.size(1) == 3
    assert t.to("float64").dtype == "float64"
    assert t.to("cpu") is not None
    assert t.is_contiguous() and not t.permute(2, 0, 1).is_contiguous()
    assert t.reshape(6, 4).shape == (6, 4) and t.reshape([-1]).shape == (24,)
    with pytest.raises(ValueError, match="float8"):
        t.to("float8")
    with pytest.raises(ValueError):
        t.to("tpu")


def test_operators_match_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((1, 4))
    ta, tb = gndet.tensor(a), gndet.tensor(b)
    np.testing.assert_allclose((ta + tb).numpy(), a + b)
    np.testing.assert_allclose((ta - 2).numpy(), a - 2)
    np.testing.assert_allclose((2 - ta).numpy(), 2 - a)
    np.testing.assert_allclose((ta * tb / 3).numpy(), a * b / 3)
    np.testing.assert_allclose((1 / (ta * ta + 1)).numpy(), 1 / (a * a + 1))
    np.testing.assert_allclose((ta @ tb.t()).numpy(), a @ b.T)
    np.testing.assert_array_equal((ta > 0).numpy(), a > 0)
    np.testing.assert_allclose((-ta).numpy(), -a)
    np.testing.assert_allclose(ta.sum(dim=[1]).numpy(), a.sum(1))
    np.testing.assert_allclose(ta.mean().item(), a.mean())


def test_indexing_like_numpy():
    a = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    t = gndet.from_numpy(a)
    for key in [1, -1, (0, 2), slice(1, 3), (slice(None), slice(0, 4, 2)), (Ellipsis, 2), (None, 1), (1, Ellipsis, None)]:
        np.testing.assert_array_equal(t[key].numpy(), a[key], err_msg=str(key))
    idx = gndet.tensor([2, 0])
    np.testing.assert_array_equal(t[idx].numpy(), a[[2, 0]])
    with pytest.raises(IndexError):
        t[3]
    with pytest.raises(TypeError):
        t["x"]


def test_item_bool_and_repr():
    t = gndet.tensor([2.5])
    assert t.item() == 2.5 and float(t) == 2.5 and bool(t)
    assert gndet.tensor([3]).item() == 3
    with pytest.raises(ValueError, match="ambiguous"):
        bool(gndet.ones([2]))
    x = gndet.ones([2], requires_grad=True)
    assert "requires_grad=True" in repr(x) and "grad_fn=<mul>" in repr(x * 2)


def test_autograd_basics():
    x = gndet.tensor([1.0, -2.0, 3.0], dtype="float64", requires_grad=True)
    y = (x * x).sum()
    assert y.grad_fn == "sum" and x.is_leaf and not y.is_leaf
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, -4.0, 6.0])
    x.grad = None
    with gndet.no_grad():
        z = x * 3
        assert not z.requires_grad and not gndet.is_grad_enabled()
        with gndet.enable_grad():
            assert (x * 3).requires_grad
    assert gndet.is_grad_enabled()
    assert not x.detach().requires_grad
    (x.relu() if hasattr(x, "relu") else gndet.ops.relu(x)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 0.0, 1.0])


def test_errors_arrive_as_exceptions_with_the_message():
    with pytest.raises(gndet.Error, match="matmul"):
        gndet.ones([2, 3]) @ gndet.ones([2, 3])
    assert issubclass(gndet.Error, ValueError)
    with pytest.raises(TypeError):
        gndet.zeros("abc")
    with pytest.raises(gndet.Error, match="undefined|backward|grad"):
        gndet.ones([2]).backward()  # nothing requires grad


def test_factories_and_seed():
    assert gndet.full([2, 2], 3.0).tolist() == [[3.0, 3.0], [3.0, 3.0]]
    assert gndet.arange(4).tolist() == [0, 1, 2, 3] and gndet.arange(1, 2, 0.5, dtype="float64").tolist() == [1.0, 1.5]
    gndet.manual_seed(5)
    a = gndet.randn([3])
    gndet.manual_seed(5)
    assert gndet.randn([3]).tolist() == a.tolist()
    u = gndet.rand([1000]).numpy()
    assert 0 <= u.min() and u.max() < 1 and 0.4 < u.mean() < 0.6
    assert gndet.zeros([2], requires_grad=True).requires_grad and gndet.ones([1], dtype="int64").dtype == "int64"
    with pytest.raises(ValueError, match="unknown dtype"):
        gndet.zeros([2], dtype="complex64")


def test_save_and_load(tmp_path):
    path = str(tmp_path / "w.safetensors")
    gndet.save({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": gndet.ones([2], dtype="int64")}, path)
    back = gndet.load(path)
    assert sorted(back) == ["a", "b"] and back["a"].tolist() == [[0, 1, 2], [3, 4, 5]] and back["b"].dtype == "int64"
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(gndet.Error, match="bad.safetensors"):
        gndet.load(str(tmp_path / "bad.safetensors"))
