"""``ag.compile``: record a graph once, replay it at C speed."""

from __future__ import annotations

from typing import Optional, Sequence, Union

from ._core import CompiledGraph, Value


def compile(
    outputs: Union[Value, Sequence[Value]],
    watch: Optional[Sequence[Value]] = None,
    inputs: Optional[Sequence[Value]] = None,
) -> CompiledGraph:
    """Capture everything reachable from ``outputs`` for replay.

    The graph must have been built eagerly once. ``forward()`` re-reads the
    leaves' current ``.data`` (change them in place, or with ``set_data``) and
    recomputes every value, writing the outputs' ``.data``; ``backward()``
    accumulates into the leaves' ``.grad`` exactly as ``Value.backward``
    would. Intermediate Values you still hold keep the data they were built
    with, except those listed in ``watch`` (Values inside the graph, such as a
    model's outputs under a loss), whose ``.data`` forward() also updates.
    Values, and gradients accumulated into zeroed ``.grad``, are
    bit-identical to the eager engine (onto nonzero grads a replay adds its
    sum in one rounding). Replays of long graphs release the GIL; two graphs
    sharing leaves may be replayed from two threads at once.

    With ``inputs`` (leaves of the graph that vary by row), the same graph
    runs over many rows at once: ``forward(X)`` takes an ``(N, len(inputs))``
    array and returns the ``N`` outputs (``(N, m)`` for ``m`` outputs), and
    the following ``backward()`` returns the ``(N, len(inputs))`` input
    gradients and adds the sum over rows into every other leaf's ``.grad``.
    Row ``i`` is bit-identical to eager with the inputs set to ``X[i]``;
    rows are split across ``set_num_threads`` threads with the GIL released,
    and the sums are the same bits for any thread count. An error in a row
    raises what eager would, naming the row, and changes nothing.

    >>> x = Value(2.0); y = (x * x).exp()
    >>> step = compile(y)
    >>> x.data = 1.0; step.forward()   # exp(1.0)
    2.718281828459045
    """
    return CompiledGraph(outputs, watch, inputs)
