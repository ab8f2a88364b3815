"""Functions written in Python join the C++ graph; gradcheck accepts a right backward and rejects a
wrong one; the profiler's tables come back from gndet.profile()."""
import numpy as np
import pytest

import gndet
from gndet.autograd import Function


class Softplus(Function):
    @staticmethod
    def forward(ctx, x, beta):
        ctx.save_for_backward(x)
        ctx.beta = beta
        return gndet.ops.log(gndet.ops.exp(x * beta) + 1) / beta

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * gndet.ops.sigmoid(x * ctx.beta), None


class WrongSoftplus(Softplus):
    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * gndet.ops.sigmoid(x), None  # forgets beta


class MulAdd(Function):  # two outputs, two tensor inputs
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b, a + b

    @staticmethod
    def backward(ctx, g_mul, g_add):
        a, b = ctx.saved_tensors
        ga = (g_mul * b if g_mul is not None else 0) + (g_add if g_add is not None else 0)
        gb = (g_mul * a if g_mul is not None else 0) + (g_add if g_add is not None else 0)
        return ga, gb


def leaf(*shape, seed=0):
    return gndet.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def test_python_function_passes_gradcheck_and_a_wrong_backward_fails():
    x = leaf(3, 4)
    ok = gndet.gradcheck(lambda t: Softplus.apply(t, 2.0), [x])
    assert ok.passed and ok.elements == 12, repr(ok)
    assert "max abs error" in repr(ok) and "0.000000" not in repr(ok)  # small errors keep their digits
    bad = gndet.gradcheck(lambda t: WrongSoftplus.apply(t, 2.0), [x])
    assert not bad.passed and bad.max_abs_error > 1e-2
    assert "analytic" in bad.worst or "numeric" in bad.worst or bad.worst
    with pytest.raises(gndet.Error, match="gradcheck failed"):
        gndet.gradcheck(lambda t: WrongSoftplus.apply(t, 2.0), [x], raise_exception=True)


def test_function_in_a_graph_with_c_ops():
    x = leaf(5)
    y = Softplus.apply(x * 2, 1.0)
    assert y.grad_fn == "python_function"
    (y.sum() * 3).backward()
    expected = 3 * 2 / (1 + np.exp(-2 * x.detach().numpy()))
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)


def test_multiple_outputs_and_unused_ones():
    a, b = leaf(3, seed=1), leaf(3, seed=2)
    assert gndet.gradcheck(lambda p, q: MulAdd.apply(p, q), [a, b]).passed
    m, _ = MulAdd.apply(a, b)
    m.sum().backward()  # the second output gets no gradient: None reaches backward
    np.testing.assert_allclose(a.grad.numpy(), b.detach().numpy())


def test_backward_errors_are_reported():
    class Broken(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            raise ZeroDivisionError("on purpose")

    class WrongCount(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    x = leaf(2)
    with pytest.raises(gndet.Error, match="on purpose"):
        Broken.apply(x).sum().backward()
    with pytest.raises((gndet.Error, TypeError), match="2 gradients for 1"):
        WrongCount.apply(x).sum().backward()
    with pytest.raises(TypeError, match="Tensor"):
        class NotTensor(Function):
            @staticmethod
            def forward(ctx, x):
                return 3
        NotTensor.apply(x)


def test_no_graph_under_no_grad():
    x = leaf(2)
    with gndet.no_grad():
        y = Softplus.apply(x, 1.0)
    assert not y.requires_grad


def test_gradcheck_arguments():
    with pytest.raises(ValueError, match="float64"):
        gndet.gradcheck(lambda t: t * 2, [gndet.ones([2], requires_grad=True)])
    with pytest.raises(TypeError):
        gndet.gradcheck(lambda t: t * 2, [np.ones(2)])


def test_profile_returns_the_tables():
    x = gndet.randn([1, 4, 16, 16])
    w = gndet.randn([8, 4, 3, 3])
    with gndet.profile() as prof:
        with prof.step("step 0"):
            y = gndet.ops.conv2d(x, w, None, padding=1)
            gndet.ops.group_norm(y, 2, None, None)
    table = prof.table()
    assert "conv2d" in table and "group_norm" in table
    assert any(r["kind"] == "step" for r in prof.ranges)
    assert '"traceEvents"' in prof.chrome_trace()
