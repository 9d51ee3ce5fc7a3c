"""``Linear``: ``y = W x + b`` for one sample, a fused dot per output."""

from __future__ import annotations

from typing import Any, List, Optional

from .._core import Value, dot
from ..random import SeedLike, rng_from
from .init import init_weights
from .inputs import as_inputs, check_width
from .module import Module

__all__ = ["Linear"]


class Linear(Module):
    """An affine map from ``in_features`` inputs to ``out_features`` outputs, as ``torch.nn.Linear``.

    Called on one sample (a list of ``in_features`` floats or Values) it returns a list of
    ``out_features`` Values, always a list, even of one. Follow it with an activation
    module (``ReLU()``...) or use :class:`~arenagrad.nn.MLP` for the micrograd layout.

    Args:
        in_features: inputs per sample.
        out_features: outputs per sample.
        bias: learn an additive bias (starts at 0).
        seed: an int (or numpy ``Generator``) for a private stream; ``None`` follows
            ``random.seed``, or ``arenagrad.manual_seed`` once called (see
            :mod:`arenagrad.random`).
        init: ``"kaiming"`` (default: He init, for a ReLU that usually follows),
            ``"xavier"`` or ``"uniform"``; see :mod:`arenagrad.nn.init`.

    Attributes:
        weight: ``out_features`` rows of ``in_features`` Values (state_dict shape
            ``(out_features, in_features)``, torch's layout).
        bias: ``out_features`` Values, or ``None``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        seed: SeedLike = None,
        init: Optional[str] = "kaiming",
    ) -> None:
        super().__init__()
        self.in_features: int = check_width("in_features", in_features)
        self.out_features: int = check_width("out_features", out_features)
        w = init_weights(rng_from(seed), self.in_features, self.out_features, init, "relu")
        self.weight: List[List[Value]] = [[Value(x) for x in row] for row in w.tolist()]
        self.bias: Optional[List[Value]] = [Value(0.0) for _ in range(self.out_features)] if bias else None

    def forward(self, x: Any) -> List[Value]:
        if type(x) is not list:
            x = as_inputs(x)
        if len(x) != self.in_features:
            raise ValueError(f"{self!r} expects {self.in_features} inputs, got {len(x)}")
        if self.bias is None:
            return [dot(row, x) for row in self.weight]
        return [dot(row, x) + b for row, b in zip(self.weight, self.bias)]

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
