"""optimizers"""

from collections.abc import Sequence

import gndet._core


class SGD:
    """SGD with momentum and weight decay exactly as PyTorch's (dampening 0)"""

    def __init__(self, params: Sequence[gndet._core.Tensor], lr: float, momentum: float = ..., weight_decay: float = ..., nesterov: bool = ...) -> None: ...

    def step(self) -> None:
        """one update of every parameter that has a gradient"""

    def zero_grad(self) -> None:
        """every parameter's gradient becomes None"""

    @property
    def lr(self) -> float:
        """the learning rate of the next step"""

    @lr.setter
    def lr(self, arg: float, /) -> None: ...
