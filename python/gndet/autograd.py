"""Autograd from Python: Functions with a hand-written backward that join gndet's C++ graph, and
gradcheck, which compares any function's backward with finite differences in float64."""
from __future__ import annotations

import contextlib

from . import _core
from ._core import GradcheckResult, Tensor

__all__ = ["Function", "FunctionCtx", "gradcheck", "GradcheckResult", "no_grad", "enable_grad"]


class _GradMode(contextlib.ContextDecorator):
    _enabled = True

    def __enter__(self):
        self._prev = _core.is_grad_enabled()
        _core.set_grad_enabled(self._enabled)

    def __exit__(self, *exc):
        _core.set_grad_enabled(self._prev)
        return False


class no_grad(_GradMode):
    """Context manager (and decorator) in which ops record no autograd graph."""
    _enabled = False


class enable_grad(_GradMode):
    """Context manager (and decorator) that turns graph recording back on inside no_grad."""
    _enabled = True


class FunctionCtx:
    """What forward leaves for backward (torch.autograd.Function's ctx)."""

    def __init__(self):
        self._saved: tuple = ()
        self._versions: tuple = ()
        self.needs_input_grad: tuple = ()

    def save_for_backward(self, *tensors):
        # Detached: the saved tensors share storage but hold no graph, so an output saved here
        # does not keep its own node alive in a cycle.
        self._saved = tuple(t.detach() if isinstance(t, Tensor) else t for t in tensors)

    @property
    def saved_tensors(self) -> tuple:
        return self._saved


class Function:
    """A differentiable function written in Python, as torch.autograd.Function::

        class Square(gndet.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x
            @staticmethod
            def backward(ctx, grad):
                (x,) = ctx.saved_tensors
                return 2 * x * grad

        y = Square.apply(x)

    forward runs without recording a graph; backward gets one gradient per output (None where
    none arrived) and returns one per input of forward (None for inputs that are not tensors or
    need no gradient). The node joins the C++ graph like any op: backward() through it, gradcheck
    and the profiler see it.
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function needs a forward(ctx, ...) staticmethod")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("a Function needs a backward(ctx, *grads) staticmethod")

    @classmethod
    def apply(cls, *args):
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        recording = _core.is_grad_enabled()
        with no_grad():
            result = cls.forward(ctx, *args)
        single = isinstance(result, Tensor)
        outputs = (result,) if single else tuple(result) if isinstance(result, (tuple, list)) else (result,)
        if not all(isinstance(o, Tensor) for o in outputs):
            raise TypeError(f"{cls.__name__}.forward must return a Tensor or a tuple of Tensors")
        # An output that is an input itself gets a handle of its own, so that the graph records it.
        outputs = tuple(o.detach() if any(o is a for a in args) else o for o in outputs)
        inputs = [a for a in args if isinstance(a, Tensor)]
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        n_args = len(args)

        def backward(*grads):
            result = cls.backward(ctx, *grads)
            result = (result,) if not isinstance(result, (tuple, list)) else tuple(result)
            if len(result) != n_args:
                raise TypeError(f"{cls.__name__}.backward returned {len(result)} gradients for {n_args} inputs")
            return tuple(result[i] for i in positions)

        if recording:
            _core._record_function(cls.__name__, inputs, list(outputs), backward)
        return outputs[0] if single else outputs


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, seed: int = 1234,
              raise_exception: bool = False) -> GradcheckResult:
    """Checks fn's backward against central finite differences, in float64 on the CPU.

    `fn(*inputs)` returns a Tensor or a tuple of them; inputs that require grad must be float64.
    The check projects the outputs on fixed random weights (PyTorch's fast mode), so one backward
    pass tests every input element. The result is true when every element satisfies
    |analytic - numeric| <= atol + rtol * |numeric|; `worst` names the worst element with both
    values. raise_exception: raise gndet.Error instead of returning a failed result.
    """
    inputs = list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"gradcheck: input {i} is a {type(t).__name__}, not a gndet.Tensor")
        if t.requires_grad and t.dtype != "float64":
            raise ValueError(f"gradcheck: input {i} requires grad and is {t.dtype}; use float64")
    result = _core._gradcheck(fn, inputs, eps, atol, rtol, seed)
    if raise_exception and not result.passed:
        raise _core.Error(f"gradcheck failed: {result!r}")
    return result
