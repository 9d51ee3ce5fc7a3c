"""What a layer takes: one sample as a list ``ag.dot`` reads quickly, and positive sizes."""

from __future__ import annotations

from typing import Any, List, Union

import numpy as np

from .._core import Value

__all__ = ["as_inputs", "check_width"]


def as_inputs(x: Any) -> List[Union[Value, float]]:
    """One sample as a list: a sequence, a numpy array, or a lone number or Value."""
    if isinstance(x, np.ndarray):
        # Python floats cross into the engine without a per-item numpy conversion.
        return x.tolist() if x.ndim else [float(x)]
    if isinstance(x, (Value, int, float)):
        return [x]  # a one-feature sample, or a one-neuron layer's output
    return list(x)


def check_width(what: str, n: Any) -> int:
    """``n`` as an int if it is a positive integer, else ``ValueError`` naming ``what``."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{what} must be a positive integer, got {n!r}")
    return int(n)
