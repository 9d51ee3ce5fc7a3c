"""The chain rule as the engine applies it, seen from Python: its order and each local step.

* :func:`backward_order`: the non-leaf nodes in the order ``out.backward()`` runs their
  backward steps (the engine's dependency counting, ``cpp/graph.hpp``, replayed over
  ``.inputs``).
* :func:`local_derivatives`: ``d node / d input`` for each input of one node.
* :func:`backward_steps`: the whole sweep stepped by hand, with the gradient each node
  passes to each input.

No derivative is written here: every number comes from the node's own ``_backward()``
(micrograd's dialect, ``docs/architecture.md``), which runs the same step, defined once in
``cpp/ops.hpp``, that ``backward()`` runs. To read a local derivative the node's grad is
set to 1 and its inputs' grads to 0, the step is run, and the inputs' grads are read;
every grad touched is then put back exactly, so the user's ``.grad`` values never change.

Everything is iterative: graphs may be millions of nodes deep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Tuple

from ._core import Value

__all__ = ["backward_order", "consumers_first", "local_derivatives", "backward_steps", "BackwardStep"]


def _engine_descends(v: Value) -> bool:
    # Eager backward only walks non-leaf nodes that require grad; leaves just receive.
    return not v.is_leaf and v.requires_grad


def consumers_first(root: Value, descend: Callable[[Value], bool]) -> List[Value]:
    """``root`` and every node ``descend`` accepts below it, each after all its consumers.

    The two passes of ``cpp/graph.hpp`` (``count_consumers``, ``consumers_first``) as they
    are written there: the same stack discipline, and a node whose single ready input is
    followed directly, so the order is the engine's, not merely a valid one.
    """
    pending: Dict[Value, int] = {root: 0}
    stack = [root]
    while stack:
        n = stack.pop()
        while n is not None:
            nxt = None
            for c in n.inputs:
                if not descend(c):
                    continue
                if c in pending:
                    pending[c] += 1
                    continue
                pending[c] = 1
                if nxt is not None:
                    stack.append(nxt)
                nxt = c
            n = nxt

    order: List[Value] = []
    stack = [root]
    while stack:
        n = stack.pop()
        while n is not None:
            order.append(n)
            nxt = None
            for c in n.inputs:
                if not descend(c):
                    continue
                pending[c] -= 1
                if pending[c]:
                    continue
                if nxt is not None:
                    stack.append(nxt)
                nxt = c
            n = nxt
    return order


def backward_order(out: Value) -> List[Value]:
    """The nodes whose backward step ``out.backward()`` runs, in the order it runs them.

    Those are ``out`` and the non-leaf nodes below it that require grad, each after every
    node that consumes it (reverse topological order). Empty when ``out`` is a leaf or does
    not require grad.
    """
    if not _engine_descends(out):
        return []
    return consumers_first(out, _engine_descends)


def _distinct(values: Iterable[Value]) -> List[Value]:
    # x * x lists x twice; its step adds both contributions to the one x.
    return list(dict.fromkeys(values))


def _unit_step(node: Value, inputs: List[Value]) -> List[float]:
    """The node's step run with grad 1 onto zeroed inputs: d node / d input. Restores nothing."""
    for c in inputs:
        c.grad = 0.0
    node.grad = 1.0
    node._backward()
    return [c.grad for c in inputs]


def local_derivatives(node: Value) -> Dict[Value, float]:
    """``d node / d input`` for each distinct input of ``node``, from the engine's own step.

    An input listed twice (``x * x``) gets the sum of both (``2x``), the partial
    derivative. An input that does not require grad gets 0: the engine never writes its
    gradient. Every ``.grad`` is left as it was.
    """
    inputs = _distinct(node.inputs)
    saved = [c.grad for c in inputs]
    saved_node = node.grad
    try:
        d = _unit_step(node, inputs)
    finally:
        for c, g in zip(inputs, saved):
            c.grad = g
        node.grad = saved_node
    return dict(zip(inputs, d))


@dataclass(frozen=True)
class BackwardStep:
    """One node's backward step: what arrives at the node and what it passes on.

    Attributes:
        node: the node whose step runs.
        grad: its gradient when the step runs (``d out / d node``, complete by then).
        inputs: its distinct inputs, in ``.inputs`` order.
        local: ``d node / d input`` for each input.
        before: each input's gradient before the step.
        after: each input's gradient after it (``before + grad * local``, as the engine
            rounds it).
    """

    node: Value
    grad: float
    inputs: Tuple[Value, ...]
    local: Tuple[float, ...]
    before: Tuple[float, ...]
    after: Tuple[float, ...]


def backward_steps(out: Value) -> List[BackwardStep]:
    """``out.backward()`` stepped by hand from zero gradients, one :class:`BackwardStep` per node.

    The steps are the engine's own (each node's ``_backward()``, in :func:`backward_order`),
    so the last ``after`` of every input is the gradient ``out.backward()`` gives it from
    zeroed grads, to the bit. Every ``.grad`` in the graph is put back afterwards, also when
    a custom ``_backward`` raises.
    """
    order = backward_order(out)
    touched = _distinct([v for n in order for v in (n, *n.inputs)])
    saved = [v.grad for v in touched]
    steps: List[BackwardStep] = []
    try:
        for v in touched:
            v.grad = 0.0
        if order:
            out.grad = 1.0
        for n in order:
            g = n.grad
            inputs = _distinct(n.inputs)
            before = [c.grad for c in inputs]
            local = _unit_step(n, inputs)
            # Back to where the sweep stands, then the real step with the real gradient:
            # before + g * d, rounded as the engine rounds it (g * d may differ from the
            # engine's own product for ops such as a / b).
            for c, b in zip(inputs, before):
                c.grad = b
            n.grad = g
            n._backward()
            after = [c.grad for c in inputs]
            steps.append(BackwardStep(n, g, tuple(inputs), tuple(local), tuple(before), tuple(after)))
    finally:
        for v, g in zip(touched, saved):
            v.grad = g
    return steps
