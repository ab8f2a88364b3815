"""Layers: gndet's C++ modules (Conv2d, ConvWS2d, GroupNorm, Linear, ReLU, MaxPool2d, Sequential,
FrozenBatchNorm2d, ResNet, FPN) and `Module`, the base class for modules written in Python from
them and from tensors of their own."""
from __future__ import annotations

from collections import OrderedDict

import numpy as _np

from . import _core
from ._core import Tensor
from .autograd import no_grad
from ._core.nn import (FPN, Conv2d, FrozenBatchNorm2d, GroupNorm, Linear, MaxPool2d, ReLU, ResNet, Sequential,
                       UnaryModule)

__all__ = ["Module", "Parameter", "Conv2d", "ConvWS2d", "GroupNorm", "Linear", "ReLU", "MaxPool2d", "Sequential",
           "FrozenBatchNorm2d", "ResNet", "FPN", "UnaryModule"]

_CppModule = _core.nn.Module


def ConvWS2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
             eps=1e-5) -> Conv2d:
    """mmcv's ConvWS2d: a Conv2d whose forward standardises each filter (Qiao et al.); the parameter stays 'weight'."""
    return Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                  weight_standardization=True, eps=eps)


def Parameter(data) -> Tensor:
    """A leaf tensor that requires grad (torch.nn.Parameter): assigned to a Module, it is registered."""
    t = data.detach() if isinstance(data, Tensor) else _core.from_numpy(_np.array(data, copy=True))
    t.requires_grad = True
    return t


class Module:
    """Base class of modules written in Python, as torch.nn.Module.

    Assigning a Parameter (a leaf tensor that requires grad), a Python Module or a C++ module
    (gndet.nn.Conv2d, ...) to an attribute registers it under that name, so parameters(),
    state_dict() and load_state_dict() see it with dotted names ("block.conv.weight").
    Subclasses define forward(); calling the module calls it.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name}")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Tensor) and value.requires_grad and value.is_leaf:
            self._parameters[name] = value
        elif isinstance(value, (Module, _CppModule)):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def named_parameters(self) -> list[tuple[str, Tensor]]:
        out = list(self._parameters.items())
        for prefix, m in self._modules.items():
            out += [(f"{prefix}.{n}", p) for n, p in m.named_parameters()]
        return out

    def parameters(self) -> list[Tensor]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> list[tuple[str, Tensor]]:
        out = []
        for prefix, m in self._modules.items():
            out += [(f"{prefix}.{n}", b) for n, b in m.named_buffers()]
        return out

    def state_dict(self) -> dict:
        """name -> numpy array of every parameter and buffer (sharing memory with CPU tensors)."""
        out = {n: p.detach().cpu().numpy() for n, p in self._parameters.items()}
        for prefix, m in self._modules.items():
            out.update({f"{prefix}.{n}": v for n, v in m.state_dict().items()})
        return out

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> dict:
        """Copies arrays (or tensors) in by name. strict: a missing, unexpected or mis-shaped key
        raises gndet.Error listing all of them, and nothing is loaded."""
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = [k for k in own if k in state_dict and tuple(_np.shape(state_dict[k])) != own[k].shape]
        if strict and (missing or unexpected or mismatched):
            raise _core.Error(f"load_state_dict: missing keys: {missing}; unexpected keys: {unexpected}; "
                              f"shape mismatches: {mismatched}")
        for name, p in self._parameters.items():
            if name in state_dict and name not in mismatched:
                with no_grad():
                    p.copy_(_as_tensor(state_dict[name]))
        for prefix, m in self._modules.items():
            sub = {k[len(prefix) + 1:]: v for k, v in state_dict.items()
                   if k.startswith(prefix + ".") and k not in mismatched}
            m.load_state_dict(sub, strict=False)
        return {"missing_keys": missing, "unexpected_keys": unexpected, "mismatched_keys": mismatched}

    def train(self, mode: bool = True):
        object.__setattr__(self, "training", mode)
        for m in self._modules.values():
            m.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def to(self, dtype_or_device: str):
        for name, p in list(self._parameters.items()):
            moved = p.detach().to(dtype_or_device)
            moved.requires_grad = True
            setattr(self, name, moved)
        for m in self._modules.values():
            m.to(dtype_or_device)
        return self

    def __repr__(self):
        inner = "".join(f"\n  ({n}): {type(m).__name__}" for n, m in self._modules.items())
        return f"{type(self).__name__}({inner}\n)" if inner else f"{type(self).__name__}()"


def _as_tensor(value) -> Tensor:
    return value if isinstance(value, Tensor) else _core.from_numpy(_np.ascontiguousarray(value))
