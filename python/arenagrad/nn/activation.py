"""Activation modules, elementwise over a Value or a (nested) list of Values."""

from __future__ import annotations

from typing import Any

from . import functional as F
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Identity"]


class ReLU(Module):
    """``max(x, 0)`` elementwise."""

    def forward(self, x: Any) -> Any:
        return F.relu(x)


class LeakyReLU(Module):
    """``x`` for ``x > 0``, else ``negative_slope * x``, elementwise."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Any) -> Any:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    """Hyperbolic tangent elementwise."""

    def forward(self, x: Any) -> Any:
        return F.tanh(x)


class Sigmoid(Module):
    """Logistic sigmoid elementwise."""

    def forward(self, x: Any) -> Any:
        return F.sigmoid(x)


class Identity(Module):
    """Returns its input unchanged (a placeholder, as ``torch.nn.Identity``)."""

    def forward(self, x: Any) -> Any:
        return x
