"""gndet's C++ core (tensors, autograd, ops, layers, the detector)"""

from collections.abc import Sequence
from typing import overload

from gndet._core import (
    detection as detection,
    nn as nn,
    ops as ops,
    optim as optim
)


with_cuda: bool = ...

cuda_emulated: bool = ...

class Error(ValueError):
    pass

class Tensor:
    """
    An n-dimensional array with autograd: a handle to shared storage (copying the handle aliases).
    """

    @property
    def shape(self) -> tuple:
        """sizes, as a tuple"""

    @property
    def dtype(self) -> str:
        """
        'float32', 'float64', 'int64', 'int32', 'uint8', 'bool', 'bfloat16' or 'float16'
        """

    @property
    def device(self) -> str:
        """'cpu' or 'cuda:N'"""

    @property
    def ndim(self) -> int:
        """number of dimensions"""

    @property
    def requires_grad(self) -> bool:
        """whether backward() accumulates into .grad"""

    @requires_grad.setter
    def requires_grad(self, arg: bool, /) -> None: ...

    @property
    def grad(self) -> Tensor | None:
        """the gradient accumulated by backward(), or None"""

    @grad.setter
    def grad(self, arg: Tensor | None, /) -> None: ...

    @property
    def grad_fn(self) -> str | None:
        """the name of the op that made this tensor (None for leaves)"""

    @property
    def is_leaf(self) -> bool:
        """made by the user, not by an op of the graph"""

    def dim(self) -> int:
        """number of dimensions"""

    def numel(self) -> int:
        """number of elements"""

    def size(self, dim: int | None = ...) -> object:
        """the size of one dim, or all sizes as a tuple"""

    def stride(self) -> tuple:
        """strides in elements"""

    def is_contiguous(self) -> bool:
        """row-major without gaps"""

    def item(self) -> object:
        """the single element as a Python number"""

    def numpy(self) -> object:
        """a numpy array sharing this tensor's memory (CPU tensors)"""

    def tolist(self) -> object:
        """nested Python lists"""

    def __dlpack__(self, **kwargs) -> object:
        """DLPack export (numpy.from_dlpack, torch.from_dlpack); shares memory"""

    def __dlpack_device__(self) -> tuple:
        """(device type, index) as DLPack numbers it"""

    def to(self, dtype_or_device: str) -> Tensor:
        """
        a copy in another dtype ('float64') or on another device ('cuda'); itself when nothing changes (differentiable)
        """

    def cpu(self) -> Tensor:
        """a copy on the CPU (itself when there)"""

    def cuda(self) -> Tensor:
        """a copy on cuda:0"""

    def float(self) -> Tensor:
        """as float32"""

    def double(self) -> Tensor:
        """as float64"""

    def long(self) -> Tensor:
        """as int64"""

    def detach(self) -> Tensor:
        """the same storage without autograd history"""

    def clone(self) -> Tensor:
        """a copy with its own storage (differentiable)"""

    def contiguous(self) -> Tensor:
        """itself when contiguous, else a contiguous copy"""

    def backward(self, gradient: Tensor | None = ..., retain_graph: bool = ...) -> None:
        """
        backpropagates into the .grad of every leaf that requires grad (gradient: 1 for a one-element tensor)
        """

    def reshape(self, *args) -> Tensor:
        """a view when the strides allow, else a copy; -1 infers one size"""

    def view(self, *args) -> Tensor:
        """a view with another shape (no copy)"""

    def permute(self, *args) -> Tensor:
        """a view with the dims reordered"""

    def expand(self, *args) -> Tensor:
        """a view broadcast to the shape (-1 keeps a size)"""

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """a view with two dims swapped"""

    def t(self) -> Tensor:
        """2-D transpose (a view)"""

    def flatten(self, start_dim: int = ..., end_dim: int = ...) -> Tensor:
        """dims start..end merged into one"""

    def narrow(self, dim: int, start: int, length: int) -> Tensor:
        """a view of `length` entries from `start` along dim"""

    def select(self, dim: int, index: int) -> Tensor:
        """a view at `index` along dim, which goes away"""

    def unsqueeze(self, dim: int) -> Tensor:
        """a view with a new dim of size 1"""

    def squeeze(self, dim: int | None = ...) -> Tensor:
        """a view without dims of size 1 (or only `dim`)"""

    def sum(self, dim: Sequence[int] | None = ..., keepdim: bool = ...) -> Tensor:
        """sum of all elements, or over the dims"""

    def mean(self, dim: Sequence[int] | None = ..., keepdim: bool = ...) -> Tensor:
        """mean of all elements, or over the dims"""

    def __getitem__(self, key: object) -> Tensor:
        """numpy-style: ints, slices, None, ..., 1-D int64 tensors"""

    def __len__(self) -> int: ...

    def __bool__(self) -> bool: ...

    def __float__(self) -> float: ...

    def __int__(self) -> int: ...

    def __hash__(self) -> int: ...

    def __repr__(self) -> str: ...

    def __matmul__(self, arg: Tensor, /) -> Tensor: ...

    def __neg__(self) -> Tensor: ...

    def __abs__(self) -> Tensor: ...

    def __invert__(self) -> Tensor: ...

    def __and__(self, arg: Tensor, /) -> Tensor: ...

    def __or__(self, arg: Tensor, /) -> Tensor: ...

    @overload
    def __add__(self, arg: Tensor, /) -> Tensor: ...

    @overload
    def __add__(self, arg: float, /) -> Tensor: ...

    def __radd__(self, arg: float, /) -> Tensor: ...

    @overload
    def __sub__(self, arg: Tensor, /) -> Tensor: ...

    @overload
    def __sub__(self, arg: float, /) -> Tensor: ...

    def __rsub__(self, arg: float, /) -> Tensor: ...

    @overload
    def __mul__(self, arg: Tensor, /) -> Tensor: ...

    @overload
    def __mul__(self, arg: float, /) -> Tensor: ...

    def __rmul__(self, arg: float, /) -> Tensor: ...

    @overload
    def __truediv__(self, arg: Tensor, /) -> Tensor: ...

    @overload
    def __truediv__(self, arg: float, /) -> Tensor: ...

    def __rtruediv__(self, arg: float, /) -> Tensor: ...

    @overload
    def __pow__(self, arg: Tensor, /) -> Tensor: ...

    @overload
    def __pow__(self, arg: float, /) -> Tensor: ...

    def __rpow__(self, arg: float, /) -> Tensor: ...

    @overload
    def __eq__(self, arg: Tensor, /) -> Tensor: ...

    @overload
    def __eq__(self, arg: float, /) -> Tensor: ...

    @overload
    def __ne__(self, arg: Tensor, /) -> Tensor: ...

    @overload
    def __ne__(self, arg: float, /) -> Tensor: ...

    @overload
    def __lt__(self, arg: Tensor, /) -> Tensor: ...

    @overload
    def __lt__(self, arg: float, /) -> Tensor: ...

    @overload
    def __le__(self, arg: Tensor, /) -> Tensor: ...

    @overload
    def __le__(self, arg: float, /) -> Tensor: ...

    @overload
    def __gt__(self, arg: Tensor, /) -> Tensor: ...

    @overload
    def __gt__(self, arg: float, /) -> Tensor: ...

    @overload
    def __ge__(self, arg: Tensor, /) -> Tensor: ...

    @overload
    def __ge__(self, arg: float, /) -> Tensor: ...

def from_numpy(array: object) -> Tensor:
    """
    a tensor sharing the array's memory (either side sees the other's writes; the array lives as long as the tensor)
    """

def zeros(shape: Sequence[int], dtype: str = ..., device: str = ..., requires_grad: bool = ...) -> Tensor: ...

def ones(shape: Sequence[int], dtype: str = ..., device: str = ..., requires_grad: bool = ...) -> Tensor: ...

def full(shape: Sequence[int], fill_value: float, dtype: str = ..., device: str = ..., requires_grad: bool = ...) -> Tensor: ...

def arange(start: float, end: float | None = ..., step: float = ..., dtype: str = ..., device: str = ...) -> Tensor:
    """arange(end) or arange(start, end, step), as numpy"""

def randn(shape: Sequence[int], dtype: str = ..., device: str = ..., requires_grad: bool = ...) -> Tensor:
    """N(0, 1) from gndet's default generator (manual_seed)"""

def rand(shape: Sequence[int], dtype: str = ..., device: str = ..., requires_grad: bool = ...) -> Tensor: ...

def manual_seed(seed: int) -> None:
    """reseeds gndet's default generator"""

def is_grad_enabled() -> bool: ...

def set_grad_enabled(enabled: bool) -> None: ...

def registered_ops() -> list[str]:
    """
    names of the differentiable ops the library registers (autograd::OpDef)
    """

class GradcheckResult:
    """what gradcheck found"""

    @property
    def passed(self) -> bool: ...

    @property
    def max_abs_error(self) -> float:
        """max |analytic - numeric|"""

    @property
    def max_rel_error(self) -> float: ...

    @property
    def elements(self) -> int:
        """input elements checked"""

    @property
    def worst(self) -> str:
        """where the worst element is, analytic vs numeric"""

    @property
    def error(self) -> str:
        """why the check could not run ('' when it ran)"""

    def __bool__(self) -> bool: ...

    def __repr__(self) -> str: ...

class TwoStageDetector(nn.Module):
    """Faster / Mask R-CNN (mmdetection's TwoStageDetector)"""

    @property
    def num_classes(self) -> int: ...

    @property
    def with_mask(self) -> bool: ...

def read_image(path: str) -> Tensor:
    """a JPEG or PNG as an (H, W, 3) uint8 RGB tensor"""

def save(tensors: dict, path: str) -> None:
    """
    writes name -> tensor (or numpy array) as a safetensors file, atomically (gndet infer / Detector load it)
    """

def load(path: str) -> dict:
    """
    name -> tensor of a safetensors file, a gndet checkpoint, a PyTorch .pth or a Detectron .pkl (never executing what the file asks)
    """
