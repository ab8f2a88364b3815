"""gndet: a from-scratch deep-learning framework for the GN / GN+WS Mask R-CNN zoo, from Python.

The C++ core computes everything; this package is a front over it, with PyTorch's names where
PyTorch has one::

    import numpy as np, gndet
    x = gndet.tensor(np.random.randn(2, 8, 5, 5), requires_grad=True)
    w = gndet.randn([8], dtype="float64", requires_grad=True)
    y = gndet.ops.group_norm(x, 4, w, None)
    (y * y).sum().backward()
    print(x.grad.numpy().shape, w.grad)

    det = gndet.Detector("configs/shapes/mask-rcnn_r18_fpn_gn-all_shapes.json", "latest.safetensors")
    out = det.predict("image.png")   # boxes, scores, labels, masks: numpy arrays
"""
from __future__ import annotations

import contextlib as _contextlib
import os as _os

import numpy as _np

try:
    from . import _core
except ImportError as e:  # pragma: no cover - depends on how the library was built
    if "static TLS" in str(e):
        # The emulated CUDA device (-Dcuda=emulate) keeps each kernel's __shared__ memory in
        # thread-local storage that must exist when a thread starts, which a library loaded later
        # by dlopen cannot get unless the process reserved room for it at its start.
        raise ImportError(f"{e}: this gndet was built with the emulated CUDA device; start Python with "
                          "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=262144 (or LD_PRELOAD=libgndet.so)") from e
    raise
from ._core import (Error, Tensor, arange, from_numpy, full, is_grad_enabled, load, manual_seed, ones, rand, randn,
                    read_image, registered_ops, save, set_grad_enabled, zeros)
from . import autograd, nn, ops, optim
from .autograd import enable_grad, gradcheck, no_grad

__version__ = _core.__version__
__all__ = ["Error", "Tensor", "tensor", "from_numpy", "from_dlpack", "zeros", "ones", "full", "arange", "randn",
           "rand", "manual_seed", "no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled", "gradcheck",
           "profile", "Detector", "train", "read_image", "save", "load", "config_path", "ops", "nn", "optim", "autograd"]

_PY_FLOAT_DEFAULT = "float32"  # as torch.tensor: Python floats become float32, numpy arrays keep their dtype


def tensor(data, dtype: str | None = None, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (a numpy array, nested lists, a number or a Tensor)."""
    if isinstance(data, Tensor):
        t = data.detach().clone()
    else:
        is_array = isinstance(data, _np.ndarray)
        arr = _np.array(data, copy=True)
        if not is_array and arr.dtype == _np.float64:
            arr = arr.astype(_np.float32)
        if arr.dtype == _np.int32 and not is_array:
            arr = arr.astype(_np.int64)
        t = from_numpy(_np.ascontiguousarray(arr))
    if dtype is not None:
        t = t.to(dtype)
    if device != "cpu":
        t = t.to(device)
    if requires_grad:
        t.requires_grad = True
    return t


def from_dlpack(obj) -> Tensor:
    """A tensor sharing the memory of any DLPack producer (numpy arrays, torch tensors, ...)."""
    return _core._from_dlpack(obj)


class Profile:
    """What `gndet.profile()` recorded: the profiler's tables (per op, per module, per phase), its
    ranges and a Chrome trace (chrome://tracing, Perfetto). Filled when the `with` block ends."""

    def __init__(self, sync_cuda: bool):
        self._profiler = _core._Profiler(sync_cuda)
        self._table = ""
        self.ranges: list[dict] = []
        self._trace = ""

    def step(self, name: str):
        """A context marking one iteration (a 'step' range in the tables and the trace)."""
        prof = self._profiler

        @_contextlib.contextmanager
        def _step():
            prof.step_begin(name)
            try:
                yield
            finally:
                prof.step_end()
        return _step()

    def table(self) -> str:
        return self._table

    def chrome_trace(self) -> str:
        return self._trace

    def _finish(self):
        self._table = self._profiler.table()
        self.ranges = self._profiler.ranges()
        self._trace = self._profiler.chrome_trace()
        self._profiler = None  # stops recording

    def __str__(self):
        return self._table


@_contextlib.contextmanager
def profile(sync_cuda: bool = True):
    """Profiles the ops run inside the block (gndet profile's profiler)::

        with gndet.profile() as prof:
            y = model(x)
        print(prof.table())
    """
    p = Profile(sync_cuda)
    try:
        yield p
    finally:
        p._finish()


def config_path(config: str | _os.PathLike) -> str:
    """The config file: as given when it exists, else the one of that name shipped in the package
    (gndet/configs, e.g. "shapes/mask-rcnn_r18_fpn_gn-all_shapes.json")."""
    config = _os.fspath(config)
    if _os.path.exists(config):
        return config
    shipped = _os.path.join(_os.path.dirname(__file__), "configs", config.removeprefix("configs/"))
    if _os.path.exists(shipped):
        return shipped
    raise FileNotFoundError(f"config '{config}' not found (nor in the package's configs folder)")


def _cfg_options(cfg_options) -> list[str]:
    if cfg_options is None:
        return []
    if not isinstance(cfg_options, dict):
        raise TypeError("cfg_options must be a dict of 'key.path': value")
    import json
    return [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in cfg_options.items()]


class Detector:
    """A trained (or fresh) Faster / Mask R-CNN: the same configs and checkpoints as the CLI.

    ``predict`` gives the numbers ``gndet infer`` gives for the same checkpoint and image.
    """

    def __init__(self, config, checkpoint=None, device: str = "cpu", cfg_options: dict | None = None):
        if checkpoint is not None and not isinstance(checkpoint, (str, _os.PathLike)):
            raise TypeError("checkpoint must be a path or None")
        self._p = _core._Predictor(config_path(config), "" if checkpoint is None else _os.fspath(checkpoint),
                                   device, _cfg_options(cfg_options))

    @property
    def model(self) -> _core.TwoStageDetector:
        """The model itself (an nn.Module: parameters(), state_dict(), ...)."""
        return self._p.model

    @property
    def class_names(self) -> list[str]:
        return self._p.class_names

    @property
    def device(self) -> str:
        return self._p.device

    def predict(self, image) -> dict:
        """Detections of one image (a path, or an H x W x 3 uint8 RGB array) as numpy arrays:
        boxes (N, 4) x1 y1 x2 y2 in the image's own pixels, scores (N), labels (N, 0-based) and, for
        Mask R-CNN, masks (N, H, W) bool."""
        return self._p.predict(_os.fspath(image) if isinstance(image, _os.PathLike) else image)

    def loss(self, image, boxes, labels, masks=None, seed: int = 0) -> dict:
        """The model's losses (Tensors with autograd) for one image and its annotations in the image's
        own pixels: boxes (K, 4) x1 y1 x2 y2, labels (K) 0-based, masks (K, H, W) for Mask R-CNN. The
        test pipeline's resizing (no random flip); `seed` drives the samplers."""
        return self._p.loss(_os.fspath(image) if isinstance(image, _os.PathLike) else image, boxes, labels, masks, seed)


def train(config, work_dir: str | None = None, cfg_options: dict | None = None, device: str = "auto",
          seed: int | None = None, evaluate: bool = True, amp: str = "") -> int:
    """Runs ``gndet train`` on `config` in this process (its log lines, checkpoints and evaluations
    in work_dir). Returns 0 on success, 1 when training stopped on a non-finite loss."""
    return _core._train(config_path(config), "" if work_dir is None else _os.fspath(work_dir),
                        _cfg_options(cfg_options), device, seed, evaluate, amp)
