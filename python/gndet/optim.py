"""Optimizers: SGD with momentum and weight decay exactly as PyTorch's."""
from ._core.optim import SGD

__all__ = ["SGD"]
