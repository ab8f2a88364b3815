"""The package on a CUDA device: a GPU, or the emulated CUDA device of a -Dcuda=emulate build
(docs/emulator.md). Skipped where the package was built without CUDA."""
import numpy as np
import pytest

import gndet
from gndet import _core

pytestmark = pytest.mark.skipif(not _core.with_cuda, reason="the package was built without CUDA (-Dcuda=disabled)")


def test_tensors_and_ops_on_the_device_equal_the_cpu():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 4, 6, 6)), rng.standard_normal((8, 4, 3, 3))
    xc = gndet.tensor(x, device="cuda", requires_grad=True)
    assert xc.device == "cuda:0"
    with pytest.raises(TypeError, match="cpu"):
        xc.detach().numpy()
    y = gndet.ops.group_norm(gndet.ops.conv_ws2d(xc, gndet.tensor(w, device="cuda"), None, padding=1), 2)
    ref = gndet.ops.group_norm(gndet.ops.conv_ws2d(gndet.tensor(x), gndet.tensor(w), None, padding=1), 2)
    # float64 on both devices; the device's reductions sum in another order: ulps of O(1) values.
    np.testing.assert_allclose(y.detach().cpu().numpy(), ref.numpy(), atol=1e-10)
    (y * y).sum().backward()
    assert xc.grad.device == "cuda:0"


def test_gradcheck_through_the_device():
    x = gndet.tensor(np.random.default_rng(4).standard_normal((1, 4, 3, 3)), requires_grad=True)
    r = gndet.gradcheck(lambda t: gndet.ops.group_norm(t.to("cuda"), 2).to("cpu"), [x])
    assert r.passed, repr(r)
