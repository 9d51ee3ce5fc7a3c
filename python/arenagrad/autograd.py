"""``ag.grad``: gradients as Values, without touching ``.grad`` (PyTorch's
``torch.autograd.grad``), and with ``create_graph=True`` gradients that are
themselves differentiable, for second derivatives and gradient penalties.

With ``create_graph=True`` each gradient is a node of the graph whose backward
step is a Hessian-vector product of the output's recorded tape
(``CompiledGraph.hvp``: forward-over-reverse over the op table's second
derivatives), so a gradient of a gradient is exact second order.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

from ._core import Value
from .replay import compile as compile_graph

__all__ = ["grad"]

Values = Union[Value, Sequence[Value]]


def _as_list(x: Values, what: str) -> List[Value]:
    items = [x] if isinstance(x, Value) else list(x)
    for i, v in enumerate(items):
        if not isinstance(v, Value):
            raise TypeError(f"grad(): {what}[{i}] must be a Value, not {type(v).__name__}")
    return items


def _graph(roots: Sequence[Value]) -> List[Value]:
    """Every Value reachable from ``roots``, without recursion."""
    seen: Dict[int, Value] = {}
    stack = list(roots)
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen[id(v)] = v
        stack.extend(v.inputs)
    return list(seen.values())


def grad(
    outputs: Values,
    inputs: Values,
    grad_outputs: Optional[Sequence[float]] = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> List[Optional[Value]]:
    """The gradients of ``outputs`` (weighted by ``grad_outputs``, default 1 each)
    with respect to each of ``inputs``, as new Values; no ``.grad`` changes.

    Args:
        outputs: a Value or a list of Values.
        inputs: the Values to differentiate with respect to (leaves or intermediate
            Values; leaves only with ``create_graph``).
        grad_outputs: one weight per output (the vector of a vector-Jacobian product).
        create_graph: make the gradients part of the graph, so that they can be
            differentiated again (``ag.grad(ag.grad(f, [x], create_graph=True)[0], [x])``
            is the second derivative) or used in a loss that is trained.
        allow_unused: give ``None`` for an input the outputs do not depend on, instead
            of raising ``RuntimeError``.

    Returns:
        One Value (or ``None``) per input.
    """
    outs = _as_list(outputs, "outputs")
    ins = _as_list(inputs, "inputs")
    if not outs:
        raise ValueError("grad(): outputs is empty")
    seeds = [1.0] * len(outs) if grad_outputs is None else [float(g) for g in grad_outputs]
    if len(seeds) != len(outs):
        raise ValueError(f"grad(): {len(seeds)} grad_outputs for {len(outs)} outputs")
    for i, v in enumerate(ins):
        if not v.requires_grad:
            raise RuntimeError(f"grad(): inputs[{i}] does not require grad")
    nodes = _graph(outs)
    reached = {id(v) for v in nodes}
    unused = [i for i, v in enumerate(ins) if id(v) not in reached]
    if unused and not allow_unused:
        raise RuntimeError(
            f"grad(): inputs[{unused[0]}] is not part of the graph of the outputs (pass allow_unused=True to get None)"
        )
    if create_graph:
        return _differentiable(outs, seeds, ins, set(unused))
    return [None if i in unused else Value(g) for i, g in enumerate(_values(outs, seeds, ins, nodes))]


def _weighted_sum(outs: List[Value], seeds: List[float]) -> Value:
    """sum_j seeds[j] * outs[j], as a (temporary) Value; outs[0] itself for one output of weight 1."""
    if len(outs) == 1 and seeds[0] == 1.0:
        return outs[0]
    total = outs[0] * seeds[0]
    for o, s in zip(outs[1:], seeds[1:]):
        total = total + o * s
    return total


def _values(outs: List[Value], seeds: List[float], ins: List[Value], nodes: List[Value]) -> List[float]:
    """The gradients as floats: eager backward from zeroed gradients, every .grad
    in the graph put back afterwards."""
    saved = [v.grad for v in nodes]
    total = _weighted_sum(outs, seeds)
    try:
        for v in nodes:
            v.grad = 0.0
        if total.requires_grad:
            total.backward()
        return [v.grad for v in ins]
    finally:
        for v, g in zip(nodes, saved):
            v.grad = g


def _differentiable(outs: List[Value], seeds: List[float], ins: List[Value], unused: set) -> List[Optional[Value]]:
    """Gradients as graph nodes whose backward step is a Hessian-vector product."""
    for i, v in enumerate(ins):
        if not v.is_leaf:
            raise ValueError(
                f"grad(create_graph=True): inputs[{i}] is not a leaf; differentiate with respect to leaves"
            )
    tape = compile_graph(_weighted_sum(outs, seeds))
    leaves = tape.leaves
    data = [v.data for v in leaves]
    position = {id(v): j for j, v in enumerate(leaves)}
    grads = list(tape.jacobian()[0])
    result: List[Optional[Value]] = []
    for i, x in enumerate(ins):
        if i in unused:
            result.append(None)
            continue
        j = position[id(x)]
        result.append(_gradient_node(tape, leaves, data, j, grads[j]))
    return result


def _gradient_node(tape: Any, leaves: List[Value], data: List[float], j: int, value: float) -> Value:
    """d(total)/d(leaves[j]) as a Value built from the leaves; its backward adds
    its gradient times row j of the Hessian (at the data it was made at)."""
    node = Value(value, tuple(leaves), "grad")

    def _backward() -> None:
        now = [v.data for v in leaves]
        tape.set_data(leaves, data)
        try:
            e = [0.0] * len(leaves)
            e[j] = 1.0
            row = tape.hvp(e)
        finally:
            tape.set_data(leaves, now)
        for v, h in zip(leaves, row):
            if v.requires_grad:
                v.grad += node.grad * float(h)

    node._backward = _backward
    return node
