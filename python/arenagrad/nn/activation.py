"""Activations: the one table of their names, and the elementwise modules.

:data:`ACTIVATIONS` is what every layer (``Neuron``, ``Layer``, ``MLP``), the weight
initialisation and ``arenagrad train --activation`` accept; the modules below apply an
activation elementwise over a Value or a (nested) list of Values, as ``torch.nn.ReLU``...
"""

from __future__ import annotations

from operator import methodcaller
from typing import Any, Callable, Dict

from .._core import Value
from . import functional as F
from .module import Module

__all__ = ["ACTIVATIONS", "check_activation", "activation_fn", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Identity"]


def _identity(v: Value) -> Value:
    return v


#: Every activation a layer can be built with: name -> the function of one Value
#: (``leaky_relu`` takes its slope as a second argument).
ACTIVATIONS: Dict[str, Callable[..., Value]] = {
    "relu": Value.relu,
    "leaky_relu": Value.leaky_relu,
    "tanh": Value.tanh,
    "sigmoid": Value.sigmoid,
    "linear": _identity,
}


def check_activation(name: str) -> str:
    """Return ``name`` if it is a key of :data:`ACTIVATIONS`, else raise ``ValueError``."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {name!r}")
    return name


def activation_fn(name: str, negative_slope: float = 0.01) -> Callable[[Value], Value]:
    """The function of one Value that ``name`` stands for, ``negative_slope`` bound for leaky_relu.

    The result is a C-level callable (an unbound method of ``Value``, or a
    ``methodcaller``), so applying it per neuron adds no Python frame.
    """
    if check_activation(name) == "leaky_relu":
        return methodcaller("leaky_relu", negative_slope)
    return ACTIVATIONS[name]


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
