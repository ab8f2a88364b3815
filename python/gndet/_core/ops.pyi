"""gndet's ops as functions (differentiable where the C++ op is)"""

from collections.abc import Sequence
from typing import overload

import gndet._core


@overload
def add(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor:
    """a + b, broadcast"""

@overload
def add(a: gndet._core.Tensor, b: float) -> gndet._core.Tensor:
    """a + b for a number b"""

def sub(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor:
    """a - b, broadcast"""

@overload
def mul(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor:
    """a * b, broadcast"""

@overload
def mul(a: gndet._core.Tensor, b: float) -> gndet._core.Tensor:
    """a * b for a number b"""

@overload
def div(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor:
    """a / b, broadcast"""

@overload
def div(a: gndet._core.Tensor, b: float) -> gndet._core.Tensor:
    """a / b for a number b"""

@overload
def pow(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor:
    """a ** b, broadcast"""

@overload
def pow(a: gndet._core.Tensor, exponent: float) -> gndet._core.Tensor:
    """a ** exponent"""

def maximum(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor:
    """elementwise max; ties split the gradient"""

def minimum(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor:
    """elementwise min; ties split the gradient"""

@overload
def eq(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor: ...

@overload
def eq(a: gndet._core.Tensor, b: float) -> gndet._core.Tensor:
    """a == b (bool)"""

def ne(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor:
    """a != b (bool)"""

@overload
def lt(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor: ...

@overload
def lt(a: gndet._core.Tensor, b: float) -> gndet._core.Tensor:
    """a < b (bool)"""

def le(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor:
    """a <= b (bool)"""

@overload
def gt(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor: ...

@overload
def gt(a: gndet._core.Tensor, b: float) -> gndet._core.Tensor:
    """a > b (bool)"""

def ge(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor:
    """a >= b (bool)"""

def logical_and(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor:
    """a and b (bool tensors)"""

def logical_or(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor:
    """a or b (bool tensors)"""

@overload
def where(cond: gndet._core.Tensor, a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor:
    """a where cond, else b"""

@overload
def where(cond: gndet._core.Tensor, a: gndet._core.Tensor, b: float) -> gndet._core.Tensor:
    """a where cond, else the number b"""

def neg(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """-x"""

def exp(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """e ** x"""

def log(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """natural logarithm"""

def sqrt(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """square root"""

def rsqrt(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """1 / sqrt(x)"""

def abs(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """|x|; gradient sign(x), 0 at 0"""

def relu(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """max(x, 0); gradient 0 at 0"""

def add_relu(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor:
    """relu(a + b) in one pass, broadcast"""

def sigmoid(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """1 / (1 + e ** -x)"""

def tanh(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """hyperbolic tangent"""

def clamp(x: gndet._core.Tensor, min: float, max: float) -> gndet._core.Tensor:
    """x limited to [min, max]"""

def clamp_min(x: gndet._core.Tensor, min: float) -> gndet._core.Tensor:
    """max(x, min)"""

def clamp_max(x: gndet._core.Tensor, max: float) -> gndet._core.Tensor:
    """min(x, max)"""

def sign(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """-1, 0 or 1"""

def floor(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """rounded down"""

def ceil(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """rounded up"""

def logical_not(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """not x (bool tensors)"""

def cat(tensors: Sequence[gndet._core.Tensor], dim: int = ...) -> gndet._core.Tensor:
    """concatenation along dim"""

def stack(tensors: Sequence[gndet._core.Tensor], dim: int = ...) -> gndet._core.Tensor:
    """stacked along a new dim"""

@overload
def split(x: gndet._core.Tensor, size: int, dim: int = ...) -> list[gndet._core.Tensor]:
    """pieces of `size` along dim (the last may be smaller)"""

@overload
def split(x: gndet._core.Tensor, sizes: Sequence[int], dim: int = ...) -> list[gndet._core.Tensor]:
    """pieces of the given sizes along dim"""

def index_select(x: gndet._core.Tensor, dim: int, index: gndet._core.Tensor) -> gndet._core.Tensor:
    """the entries of x at the int64 `index` along dim"""

def index_add(x: gndet._core.Tensor, dim: int, index: gndet._core.Tensor, source: gndet._core.Tensor) -> gndet._core.Tensor:
    """x with source added at `index` along dim"""

def gather(x: gndet._core.Tensor, dim: int, index: gndet._core.Tensor) -> gndet._core.Tensor:
    """out[i][j] = x[index[i][j]][j] (dim 0), as torch.gather"""

def scatter_add(x: gndet._core.Tensor, dim: int, index: gndet._core.Tensor, source: gndet._core.Tensor) -> gndet._core.Tensor:
    """the inverse of gather, summing collisions"""

def masked_fill(x: gndet._core.Tensor, mask: gndet._core.Tensor, value: float) -> gndet._core.Tensor:
    """x with `value` where the bool mask is true"""

def nonzero(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """(K, ndim) int64 coordinates of the nonzero entries"""

@overload
def sum(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """sum of all elements (0-d)"""

@overload
def sum(x: gndet._core.Tensor, dim: Sequence[int], keepdim: bool = ...) -> gndet._core.Tensor:
    """sum over the dims"""

@overload
def mean(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """mean of all elements (0-d)"""

@overload
def mean(x: gndet._core.Tensor, dim: Sequence[int], keepdim: bool = ...) -> gndet._core.Tensor:
    """mean over the dims"""

@overload
def var(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """unbiased variance of all elements"""

@overload
def var(x: gndet._core.Tensor, dim: Sequence[int], unbiased: bool = ..., keepdim: bool = ...) -> gndet._core.Tensor:
    """variance over the dims"""

@overload
def max(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """the largest element (0-d)"""

@overload
def max(x: gndet._core.Tensor, dim: int, keepdim: bool = ...) -> tuple[gndet._core.Tensor, gndet._core.Tensor]:
    """(values, indices) of the largest along dim"""

@overload
def min(x: gndet._core.Tensor) -> gndet._core.Tensor:
    """the smallest element (0-d)"""

@overload
def min(x: gndet._core.Tensor, dim: int, keepdim: bool = ...) -> tuple[gndet._core.Tensor, gndet._core.Tensor]:
    """(values, indices) of the smallest along dim"""

def argmax(x: gndet._core.Tensor, dim: int, keepdim: bool = ...) -> gndet._core.Tensor:
    """index of the largest"""

def argmin(x: gndet._core.Tensor, dim: int, keepdim: bool = ...) -> gndet._core.Tensor:
    """index of the smallest"""

def sort(x: gndet._core.Tensor, dim: int = ..., descending: bool = ...) -> tuple[gndet._core.Tensor, gndet._core.Tensor]:
    """(values, indices), stable"""

def topk(x: gndet._core.Tensor, k: int, dim: int = ..., largest: bool = ...) -> tuple[gndet._core.Tensor, gndet._core.Tensor]:
    """(values, indices) of the k largest (or smallest)"""

def argsort(x: gndet._core.Tensor, dim: int = ..., descending: bool = ...) -> gndet._core.Tensor:
    """the indices that sort x, stable"""

def softmax(x: gndet._core.Tensor, dim: int = ...) -> gndet._core.Tensor:
    """softmax along dim"""

def log_softmax(x: gndet._core.Tensor, dim: int = ...) -> gndet._core.Tensor:
    """log of the softmax along dim"""

def matmul(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor:
    """matrix product (batched, broadcast)"""

def bmm(a: gndet._core.Tensor, b: gndet._core.Tensor) -> gndet._core.Tensor:
    """(B, n, k) x (B, k, m) -> (B, n, m)"""

def linear(x: gndet._core.Tensor, weight: gndet._core.Tensor, bias: gndet._core.Tensor | None = ...) -> gndet._core.Tensor:
    """x @ weight.T + bias"""

def conv2d(x: gndet._core.Tensor, weight: gndet._core.Tensor, bias: gndet._core.Tensor | None = ..., stride: int | Sequence[int] = ..., padding: int | Sequence[int] = ..., dilation: int | Sequence[int] = ..., groups: int = ...) -> gndet._core.Tensor:
    """2-D convolution, NCHW; weight (out, in / groups, kh, kw)"""

def conv_transpose2d(x: gndet._core.Tensor, weight: gndet._core.Tensor, bias: gndet._core.Tensor | None = ..., stride: int | Sequence[int] = ..., padding: int | Sequence[int] = ..., output_padding: int | Sequence[int] = ..., dilation: int | Sequence[int] = ..., groups: int = ...) -> gndet._core.Tensor:
    """transposed 2-D convolution; weight (in, out / groups, kh, kw)"""

def weight_standardization(weight: gndet._core.Tensor, eps: float = ...) -> gndet._core.Tensor:
    """
    each output filter standardised to mean 0, std 1 (Qiao et al.; mmcv's ConvWS2d)
    """

def group_norm(x: gndet._core.Tensor, num_groups: int, weight: gndet._core.Tensor | None = ..., bias: gndet._core.Tensor | None = ..., eps: float = ...) -> gndet._core.Tensor:
    """
    GroupNorm (Wu & He): per sample, per group of channels, normalised; then weight and bias per channel
    """

def group_norm_relu(x: gndet._core.Tensor, num_groups: int, weight: gndet._core.Tensor | None = ..., bias: gndet._core.Tensor | None = ..., eps: float = ...) -> gndet._core.Tensor:
    """
    relu(group_norm(...)) in one op: on the CPU the ReLU is applied as GroupNorm writes its output
    """

def frozen_batch_norm(x: gndet._core.Tensor, weight: gndet._core.Tensor, bias: gndet._core.Tensor, running_mean: gndet._core.Tensor, running_var: gndet._core.Tensor, eps: float = ...) -> gndet._core.Tensor:
    """batch norm with fixed statistics (Detectron's frozen BN)"""

def max_pool2d(x: gndet._core.Tensor, kernel: int | Sequence[int], stride: int | Sequence[int], padding: int | Sequence[int] = ..., ceil_mode: bool = ...) -> gndet._core.Tensor:
    """2-D max pooling"""

@overload
def upsample_nearest(x: gndet._core.Tensor, out_h: int, out_w: int) -> gndet._core.Tensor:
    """nearest-neighbour resize to (out_h, out_w)"""

@overload
def upsample_nearest(x: gndet._core.Tensor, scale: int) -> gndet._core.Tensor:
    """nearest-neighbour, integer factor"""

def interpolate_bilinear(x: gndet._core.Tensor, out_h: int, out_w: int, align_corners: bool = ...) -> gndet._core.Tensor:
    """bilinear resize"""

def nms(boxes: gndet._core.Tensor, scores: gndet._core.Tensor, iou_threshold: float) -> gndet._core.Tensor:
    """
    indices of the boxes kept by non-maximum suppression, by decreasing score
    """

def batched_nms(boxes: gndet._core.Tensor, scores: gndet._core.Tensor, idxs: gndet._core.Tensor, iou_threshold: float) -> gndet._core.Tensor:
    """nms within each class of idxs"""

def paste_masks(probs: gndet._core.Tensor, boxes: gndet._core.Tensor, height: int, width: int, threshold: float = ...) -> gndet._core.Tensor:
    """
    (N, h, w) mask probabilities pasted into their boxes of a (height, width) image, thresholded (uint8)
    """

def conv_ws2d(x: gndet._core.Tensor, weight: gndet._core.Tensor, bias: gndet._core.Tensor | None = ..., stride: int | Sequence[int] = ..., padding: int | Sequence[int] = ..., dilation: int | Sequence[int] = ..., groups: int = ..., eps: float = ...) -> gndet._core.Tensor:
    """conv2d with a weight-standardised weight (mmcv's ConvWS2d)"""

def roi_align(x: gndet._core.Tensor, rois: gndet._core.Tensor, out_h: int = ..., out_w: int = ..., spatial_scale: float = ..., sampling_ratio: int = ..., aligned: bool = ...) -> gndet._core.Tensor:
    """
    RoIAlign of (K, 5) rois (batch index, x1, y1, x2, y2) into (K, C, out_h, out_w), as mmcv's
    """

def box_iou(a: gndet._core.Tensor, b: gndet._core.Tensor, mode: str = ...) -> gndet._core.Tensor:
    """
    (N, M) overlaps of x1y1x2y2 boxes: 'iou' or 'iof' (over the first box's area)
    """

def cross_entropy(logits: gndet._core.Tensor, target: gndet._core.Tensor, class_weight: gndet._core.Tensor | None = ..., ignore_index: int = ..., reduction: str = ...) -> gndet._core.Tensor:
    """softmax cross-entropy of (N, C) logits and int64 targets"""

def binary_cross_entropy_with_logits(logits: gndet._core.Tensor, target: gndet._core.Tensor, weight: gndet._core.Tensor | None = ..., reduction: str = ...) -> gndet._core.Tensor:
    """sigmoid cross-entropy"""

def l1_loss(pred: gndet._core.Tensor, target: gndet._core.Tensor, reduction: str = ...) -> gndet._core.Tensor:
    """|pred - target|"""

def smooth_l1_loss(pred: gndet._core.Tensor, target: gndet._core.Tensor, beta: float = ..., reduction: str = ...) -> gndet._core.Tensor:
    """Huber-like loss with knee beta"""
