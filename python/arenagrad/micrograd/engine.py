"""micrograd's ``Value`` (micrograd 0.1.0's engine.py, same semantics) on arenagrad's engine.

The engine does micrograd's part itself for the nodes of this class (flagged
``MICROGRAD`` in C): a number in an op becomes a node, ``_op`` reads as micrograd
names it (``'ReLU'``, ``'**2'``), and results come back as this class, all at the
speed of arenagrad's own ops. What stays here is what micrograd composes from other
ops (``-a`` is ``a * -1``, ``a - b`` is ``a + (-b)``, ``a / b`` is ``a * b**-1``),
so the graph has micrograd's nodes and every value micrograd's rounding, and its
``backward``, which adds into intermediate gradients.
"""

from __future__ import annotations

from typing import Any, Union

from .. import _core

_Number = Union[int, float]


class Value(_core.Value):
    """micrograd's scalar: ``Value(data, _children=(), _op='', label='')``."""

    __slots__ = ()  # arenagrad.Value's layout, which the engine allocates for this class

    def __pow__(self, other: _Number) -> Value:
        if not isinstance(other, (int, float)):
            raise TypeError("only supporting int/float powers for now")  # micrograd's words
        return _core.Value.__pow__(self, other)

    def backward(self) -> None:
        """micrograd's backward: seeds 1.0 and adds into every gradient on the way,
        intermediate ones included (a second call propagates the sums again)."""
        _core._backward_keeping_intermediate(self)

    def __neg__(self) -> Value:  # -self
        return self * -1

    def __sub__(self, other: Any) -> Value:  # self - other
        return self + (-other)

    def __rsub__(self, other: Any) -> Value:  # other - self
        return other + (-self)

    def __truediv__(self, other: Any) -> Value:  # self / other
        return self * other**-1

    def __rtruediv__(self, other: Any) -> Value:  # other / self
        return other * self**-1

    def __repr__(self) -> str:
        return f"Value(data={self.data}, grad={self.grad})"


_core._set_micrograd_class(Value)
