"""gndet's ops as functions: gndet.ops.group_norm, conv2d, conv_ws2d, roi_align, nms, ... One
function per op of the C++ op table (python/src/op_table.h); differentiable where the op is."""
from ._core.ops import *  # noqa: F401,F403
from ._core import ops as _ops

__all__ = [name for name in dir(_ops) if not name.startswith("_")]
