"""gndet's C++ layers"""

from collections.abc import Sequence

import gndet._core


class Module:
    """a tree of named parameters, buffers and child modules"""

    def named_parameters(self) -> list[tuple[str, gndet._core.Tensor]]:
        """(dotted name, tensor) of every parameter"""

    def parameters(self) -> list[gndet._core.Tensor]:
        """every parameter, in registration order (depth first)"""

    def named_buffers(self) -> list[tuple[str, gndet._core.Tensor]]:
        """(dotted name, tensor) of every buffer (running statistics, ...)"""

    def named_children(self) -> list:
        """(name, module) of the direct children"""

    def state_dict(self) -> dict:
        """
        name -> numpy array (sharing memory with CPU tensors, as torch's state_dict shares)
        """

    def load_state_dict(self, state_dict: dict, strict: bool = ...) -> dict:
        """
        copies numpy arrays or tensors in by name; strict: a missing, unexpected or mis-shaped key raises, listing all
        """

    def train(self, mode: bool = ...) -> None:
        """training mode on (or off), recursively"""

    def eval(self) -> None:
        """training mode off, recursively"""

    @property
    def training(self) -> bool:
        """whether in training mode"""

    def to(self, dtype_or_device: str) -> None:
        """
        moves parameters and buffers ('cuda', 'cpu') or converts them ('float64'); handles stay valid
        """

    def zero_grad(self) -> None:
        """every parameter's gradient becomes None"""

    def freeze(self) -> None:
        """requires_grad off for every parameter, recursively"""

class UnaryModule(Module):
    """a module with one input and one output"""

    def forward(self, x: gndet._core.Tensor) -> gndet._core.Tensor:
        """the layer applied to x"""

    def __call__(self, x: gndet._core.Tensor) -> gndet._core.Tensor:
        """the layer applied to x"""

class Conv2d(UnaryModule):
    """
    2-D convolution (PyTorch's Conv2d; weight_standardization: mmcv's ConvWS2d)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: object, stride: object = ..., padding: object = ..., dilation: object = ..., groups: int = ..., bias: bool = ..., weight_standardization: bool = ..., eps: float = ...) -> None: ...

    @property
    def weight(self) -> gndet._core.Tensor: ...

    @property
    def bias(self) -> object: ...

class Linear(UnaryModule):
    """x @ weight.T + bias"""

    def __init__(self, in_features: int, out_features: int, bias: bool = ...) -> None: ...

    @property
    def weight(self) -> gndet._core.Tensor: ...

    @property
    def bias(self) -> object: ...

class GroupNorm(UnaryModule):
    """GroupNorm (Wu & He) with per-channel weight and bias"""

    def __init__(self, num_groups: int, num_channels: int, eps: float = ..., affine: bool = ...) -> None: ...

    @property
    def weight(self) -> gndet._core.Tensor: ...

    @property
    def bias(self) -> gndet._core.Tensor: ...

class FrozenBatchNorm2d(UnaryModule):
    """batch norm with fixed statistics"""

    def __init__(self, num_features: int, eps: float = ...) -> None: ...

class ReLU(UnaryModule):
    def __init__(self) -> None: ...

class MaxPool2d(UnaryModule):
    def __init__(self, kernel_size: object, stride: object | None = ..., padding: object = ..., ceil_mode: bool = ...) -> None: ...

class Sequential(UnaryModule):
    """layers applied in order; children named 0, 1, ..."""

    def __init__(self, *args) -> None: ...

class ResNet(Module):
    """
    mmdetection's ResNet / ResNeXt backbone; keyword arguments as its config (depth, norm_cfg, conv_cfg, ...)
    """

    def __init__(self, **kwargs) -> None: ...

    def forward(self, x: gndet._core.Tensor) -> list[gndet._core.Tensor]:
        """the feature maps of out_indices (strides 4, 8, 16, 32)"""

    def __call__(self, x: gndet._core.Tensor) -> list[gndet._core.Tensor]: ...

class FPN(Module):
    """mmdetection's FPN neck; keyword arguments as its config"""

    def __init__(self, **kwargs) -> None: ...

    def forward(self, inputs: Sequence[gndet._core.Tensor]) -> list[gndet._core.Tensor]: ...

    def __call__(self, inputs: Sequence[gndet._core.Tensor]) -> list[gndet._core.Tensor]: ...
