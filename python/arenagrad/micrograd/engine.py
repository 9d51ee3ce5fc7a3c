"""micrograd's ``Value`` (micrograd 0.1.0's engine.py, same semantics) on arenagrad's engine.

Each operator is written as micrograd composes it (``a - b`` is ``a + (-b)``,
``a / b`` is ``a * b**-1``, ``-a`` is ``a * -1``), so the graph has micrograd's
nodes and every value micrograd's rounding; the arithmetic itself runs in C.
"""

from __future__ import annotations

from typing import Any, Union

from .. import _core

_Base = _core.Value
_Number = Union[int, float]


class Value(_Base):
    """micrograd's scalar: ``Value(data, _children=(), _op='', label='')``."""

    __slots__ = ()  # the same layout as arenagrad.Value, so results can take this class

    def __add__(self, other: Any) -> Value:
        return _mine(_Base.__add__(self, _node(other)))

    def __mul__(self, other: Any) -> Value:
        return _mine(_Base.__mul__(self, _node(other)))

    def __pow__(self, other: _Number) -> Value:
        if not isinstance(other, (int, float)):
            raise TypeError("only supporting int/float powers for now")  # micrograd's words
        return _mine(_Base.__pow__(self, other))  # _op reads '**2', as micrograd names it

    def relu(self) -> Value:
        return _mine(_Base.relu(self))  # _op reads 'ReLU'

    def backward(self) -> None:
        """micrograd's backward: seeds 1.0 and adds into every gradient on the way,
        intermediate ones included (a second call propagates the sums again)."""
        _core._backward_keeping_intermediate(self)

    def __neg__(self) -> Value:  # -self
        return self * -1

    def __radd__(self, other: Any) -> Value:  # other + self
        return self + other

    def __sub__(self, other: Any) -> Value:  # self - other
        return self + (-other)

    def __rsub__(self, other: Any) -> Value:  # other - self
        return other + (-self)

    def __rmul__(self, other: Any) -> Value:  # other * self
        return self * other

    def __truediv__(self, other: Any) -> Value:  # self / other
        return self * other**-1

    def __rtruediv__(self, other: Any) -> Value:  # other / self
        return other * self**-1

    def __repr__(self) -> str:
        return f"Value(data={self.data}, grad={self.grad})"

    # arenagrad's other ops, returning this class
    def exp(self) -> Value:
        return _mine(_Base.exp(self))

    def log(self) -> Value:
        return _mine(_Base.log(self))

    def tanh(self) -> Value:
        return _mine(_Base.tanh(self))

    def sigmoid(self) -> Value:
        return _mine(_Base.sigmoid(self))


def _node(x: Any) -> Value:
    """micrograd's ``other if isinstance(other, Value) else Value(other)``."""
    return x if isinstance(x, _Base) else Value(x)


def _mine(v: _Base) -> Value:
    """What the engine made, as micrograd's class and with micrograd's op names.

    The class lasts as long as this wrapper: a node reached again through
    ``_prev`` after its wrapper was dropped comes back as an ``arenagrad.Value``
    (with micrograd's ``_op`` still), which keeps the graph out of the cycle
    collector's way."""
    v.__class__ = Value
    return v._as_micrograd()
