"""Weight initialisation for scalar layers: the schemes, their gains, and the defaults.

A layer draws its whole ``(fan_out, fan_in)`` weight matrix at once from one numpy
``Generator`` (a private one for an explicit ``seed=``; otherwise see
:mod:`arenagrad.random`), then wraps the numbers in leaf ``Value``\\ s. Biases start at
zero, as in micrograd.

Schemes (``init=``):

* ``"kaiming"``: He et al. (2015), normal with std ``gain / sqrt(fan_in)``; keeps the
  variance of ReLU activations constant through depth.
* ``"xavier"``: Glorot & Bengio (2010), uniform on ``+-sqrt(6 / (fan_in + fan_out))``;
  made for saturating activations (tanh, sigmoid) and for linear outputs.
* ``"uniform"``: micrograd's ``random.uniform(-1, 1)``, whatever the width.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .activation import ACTIVATIONS, check_activation

__all__ = ["ACTIVATIONS", "INITS", "calculate_gain", "default_init", "init_weights", "check_activation"]

INITS = ("kaiming", "xavier", "uniform")


def calculate_gain(activation: str, negative_slope: float = 0.01) -> float:
    """The recommended gain for an activation, with the values of ``torch.nn.init.calculate_gain``."""
    check_activation(activation)
    if activation == "relu":
        return math.sqrt(2.0)
    if activation == "leaky_relu":
        return math.sqrt(2.0 / (1.0 + negative_slope**2))
    if activation == "tanh":
        return 5.0 / 3.0
    return 1.0  # sigmoid, linear


def default_init(activation: str) -> str:
    """He init for the ReLU family, Glorot init for everything else."""
    return "kaiming" if check_activation(activation) in ("relu", "leaky_relu") else "xavier"


def init_weights(
    rng: np.random.Generator,
    fan_in: int,
    fan_out: int,
    init: Optional[str] = None,
    activation: str = "relu",
    negative_slope: float = 0.01,
    rows: Optional[int] = None,
) -> np.ndarray:
    """Draw a ``(rows, fan_in)`` float64 weight matrix, ``rows`` defaulting to ``fan_out``.

    Args:
        rng: where the numbers come from.
        fan_in: inputs per unit.
        fan_out: units in the layer (only Xavier looks at it).
        init: ``"kaiming"``, ``"xavier"``, ``"uniform"``, or ``None`` for
            :func:`default_init` of ``activation``.
        activation: the nonlinearity that follows, for the default and the He gain.
        negative_slope: slope of ``leaky_relu``, for its He gain.
        rows: how many units to draw (a single ``Neuron`` of a wider layer draws 1).
    """
    if init is None:
        init = default_init(activation)
    shape = (fan_out if rows is None else rows, fan_in)
    if init == "kaiming":
        return rng.normal(0.0, calculate_gain(activation, negative_slope) / math.sqrt(fan_in), shape)
    if init == "xavier":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-bound, bound, shape)
    if init == "uniform":
        return rng.uniform(-1.0, 1.0, shape)
    raise ValueError(f"init must be one of {INITS} or None, got {init!r}")
