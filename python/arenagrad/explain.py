"""``explain_grad(leaf, out)``: why is ``leaf.grad`` what it is? The chain rule, path by path.

``d out / d leaf`` is the sum, over every path from ``out`` down to ``leaf``, of the
product of the local derivatives along the path. :func:`explain_grad` lists those paths
(up to ``max_paths``) with their products, counts all of them, and sums them all; after
``out.backward()`` from zero grads the sum is ``leaf.grad`` (up to rounding: the engine
adds the same products in another order). Its repr is a table, with a finite-difference
check of the total.

The local derivatives are the engine's own (:func:`arenagrad.chain_rule.local_derivatives`,
each node's ``_backward()`` run with grad 1), so no derivative is written twice; the
user's ``.grad`` values are left as they were. Paths are counted and summed by dynamic
programming over the nodes between ``out`` and ``leaf``, so a graph with 2**1000 paths
costs what its nodes cost; listing stops at ``max_paths``. Nothing recurses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Dict, List, Optional, Tuple

from ._core import CompiledGraph, Value
from .chain_rule import consumers_first, local_derivatives

__all__ = ["explain_grad", "GradExplanation", "GradPath"]

_SHOWN_NODES = 8  # a longer path is printed with its middle elided


@dataclass(frozen=True)
class GradPath:
    """One path from ``out`` down to ``leaf``.

    Attributes:
        nodes: the nodes along it, ``out`` first and ``leaf`` last.
        factors: ``d nodes[k] / d nodes[k + 1]`` for each step (one fewer than nodes).
        product: the product of ``factors``: this path's share of the gradient.
    """

    nodes: Tuple[Value, ...]
    factors: Tuple[float, ...]
    product: float


def _name(v: Value) -> str:
    if v.label:
        return v.label
    return v.op if v.op else "leaf"


def _fmt(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.6g}"


def _close(a: float, b: float, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


class GradExplanation:
    """What :func:`explain_grad` returns: the paths, their count, their sum.

    Attributes:
        leaf, out: the two Values it was asked about.
        paths: up to ``max_paths`` :class:`GradPath`\\ s, found depth first.
        num_paths: how many paths there are in all (an exact int, however large).
        total: ``d out / d leaf``, the sum of the products over all paths.
        grad: ``leaf.grad`` when the explanation was made.
    """

    def __init__(self, leaf: Value, out: Value, paths: List[GradPath], num_paths: int, total: float) -> None:
        self.leaf = leaf
        self.out = out
        self.paths = paths
        self.num_paths = num_paths
        self.total = total
        self.grad = leaf.grad
        self._fd: Optional[Tuple[Optional[float], str]] = None

    @property
    def truncated(self) -> bool:
        """Whether some paths were counted but not listed."""
        return len(self.paths) < self.num_paths

    def finite_difference(self) -> Optional[float]:
        """``(f(x + h) - f(x - h)) / 2h`` for ``out`` as a function of ``leaf.data``, or None.

        ``out`` is recomputed by the engine's compiled replay (``ag.compile``) at the
        leaves' current data, then put back as it was. None when ``leaf`` is not a leaf,
        the graph has a custom (Python ``_backward``) node, which replay cannot run, or the
        function is undefined at ``x +- h``; :attr:`fd_note` says which.
        """
        if self._fd is None:
            self._fd = _finite_difference(self.leaf, self.out)
        return self._fd[0]

    @property
    def fd_note(self) -> str:
        """Why :meth:`finite_difference` is None (empty when it is a number)."""
        self.finite_difference()
        return self._fd[1] if self._fd else ""

    def _rows(self) -> List[Tuple[str, str, str, str]]:
        rows = []
        for k, p in enumerate(self.paths, 1):
            names = [_name(v) for v in p.nodes]
            factors = [_fmt(f) for f in p.factors]
            if len(names) > _SHOWN_NODES:
                cut = len(names) - _SHOWN_NODES
                names = names[:4] + [f"\u2026{cut} more\u2026"] + names[-4:]
                factors = factors[:4] + ["\u2026"] + factors[-3:]
            rows.append((str(k), " \u2192 ".join(names), " \u00d7 ".join(factors) or "1", _fmt(p.product)))
        return rows

    def _verdicts(self) -> Tuple[str, str]:
        grad_ok = (
            "\u2713" if _close(self.total, self.grad) else "\u2717 (differs: was out.backward() run from zero grads?)"
        )
        fd = self.finite_difference()
        if fd is None:
            fd_text = f"finite difference n/a ({self.fd_note})"
        else:
            ok = "\u2713" if _close(self.total, fd, rel=1e-4, abs_=1e-6) else "\u2717"
            fd_text = f"finite difference {_fmt(fd)} {ok}"
        return f"{_name(self.leaf)}.grad = {_fmt(self.grad)} {grad_ok}", fd_text

    def _headline(self) -> str:
        n = self.num_paths
        return (
            f"d {_name(self.out)} / d {_name(self.leaf)} = {_fmt(self.total)}: "
            f"the sum over {n:,} path{'s' if n != 1 else ''} of the product of local derivatives"
        )

    def _footer(self) -> str:
        if not self.truncated:
            return ""
        return f"showing {len(self.paths):,} of {self.num_paths:,} paths; the total counts them all"

    def __repr__(self) -> str:
        head = ("#", "path (out \u2192 leaf)", "local derivatives", "product")
        rows = [head] + self._rows()
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        lines = [self._headline(), "  ".join(self._verdicts())]
        for r in rows:
            lines.append(
                "  ".join(cell.ljust(w) if c < 3 else cell.rjust(w) for c, (cell, w) in enumerate(zip(r, widths)))
            )
        if self._footer():
            lines.append(self._footer())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        # Inline alignment: notebook stylesheets right-align every cell.
        td = '<td style="text-align:{};padding:2px 8px">{}</td>'
        cells = "".join(
            "<tr>" + "".join(td.format("left", escape(c)) for c in r[:3]) + td.format("right", escape(r[3])) + "</tr>"
            for r in self._rows()
        )
        grad, fd = self._verdicts()
        foot = f"<p>{escape(self._footer())}</p>" if self._footer() else ""
        return (
            f'<div class="arenagrad-explain"><p><b>{escape(self._headline())}</b><br>'
            f"{escape(grad)}; {escape(fd)}</p>"
            '<table style="border-collapse:collapse"><thead><tr><th style="text-align:left">#</th>'
            '<th style="text-align:left">path (out \u2192 leaf)</th><th style="text-align:left">local derivatives</th>'
            f'<th style="text-align:right">product</th></tr></thead><tbody>{cells}</tbody></table>{foot}</div>'
        )


def _finite_difference(leaf: Value, out: Value) -> Tuple[Optional[float], str]:
    if not leaf.is_leaf:
        return None, f"{_name(leaf)} is not a leaf"
    if leaf is out:
        return 1.0, ""
    if out.is_leaf:
        return 0.0, ""
    try:
        graph = CompiledGraph(out)
    except TypeError as err:  # custom nodes: replay runs only the engine's ops
        return None, str(err).split(": ", 1)[-1]
    x, y = leaf.data, out.data
    h = 1e-6 * max(1.0, abs(x))
    try:
        leaf.data = x + h
        up = graph.forward()
        leaf.data = x - h
        down = graph.forward()
    except (ValueError, ZeroDivisionError, OverflowError) as err:
        return None, f"out is undefined near {_name(leaf)} = {x:g} ({err})"
    finally:
        leaf.data = x  # exactly the number (or int) it was
        out.data = y  # forward() wrote it
    return (up - down) / ((x + h) - (x - h)), ""  # type: ignore[operator]


def explain_grad(leaf: Value, out: Value, max_paths: int = 20) -> GradExplanation:
    """Every path from ``out`` to ``leaf`` with the product of local derivatives along it.

    Args:
        leaf: the Value whose gradient to explain (usually a leaf; any node of the graph
            works, and ``total`` is then ``d out / d node``).
        out: the output the gradient is of (usually the loss).
        max_paths: list at most this many paths; all of them are counted and summed.

    Returns:
        A :class:`GradExplanation`: ``.paths``, ``.num_paths``, ``.total`` (equal to
        ``leaf.grad`` after ``out.backward()`` from zero grads), and a repr that prints
        them as a table with a finite-difference check.

    Raises:
        ValueError: ``leaf`` does not require grad (its ``.grad`` is never written).
    """
    if not isinstance(leaf, Value) or not isinstance(out, Value):
        raise TypeError("explain_grad(leaf, out) takes two Values")
    if not leaf.requires_grad:
        raise ValueError(
            "this leaf does not require grad: backward never writes its .grad, so there is nothing to explain"
        )
    if max_paths < 0:
        raise ValueError(f"max_paths must be >= 0, got {max_paths}")
    if leaf is out:
        return GradExplanation(leaf, out, [GradPath((out,), (), 1.0)][:max_paths], 1, 1.0)
    if not out.requires_grad:
        return GradExplanation(leaf, out, [], 0, 0.0)

    # The non-leaf nodes below out that require grad (a path to leaf can only pass
    # through those), not below leaf itself; each after its consumers.
    order = consumers_first(out, lambda v: v is not leaf and not v.is_leaf and v.requires_grad)
    # Inputs first: which nodes reach leaf, by how many paths, with what total derivative.
    below: Dict[Value, List[Tuple[Value, float]]] = {}
    count: Dict[Value, int] = {leaf: 1}
    total: Dict[Value, float] = {leaf: 1.0}
    for v in reversed(order):
        if v.is_leaf:  # out itself, if it is a leaf
            continue
        kids = [c for c in dict.fromkeys(v.inputs) if c in count]
        if not kids:
            continue
        d = local_derivatives(v)
        below[v] = [(c, d[c]) for c in kids]
        count[v] = sum(count[c] for c in kids)
        total[v] = math.fsum(d[c] * total[c] for c in kids)
    if out not in count:
        return GradExplanation(leaf, out, [], 0, 0.0)
    return GradExplanation(leaf, out, _first_paths(out, leaf, below, max_paths), count[out], total[out])


def _first_paths(out: Value, leaf: Value, below: Dict[Value, List[Tuple[Value, float]]], limit: int) -> List[GradPath]:
    """Up to ``limit`` paths from ``out`` to ``leaf``, depth first, with an explicit stack."""
    paths: List[GradPath] = []
    nodes: List[Value] = [out]
    factors: List[float] = []
    cursor: List[int] = [0]  # next child to try, per node on the path
    while nodes and len(paths) < limit:
        v = nodes[-1]
        if v is leaf:
            paths.append(GradPath(tuple(nodes), tuple(factors), math.prod(factors)))
            nodes.pop()
            cursor.pop()
            if factors:
                factors.pop()
            continue
        kids = below[v]
        k = cursor[-1]
        if k == len(kids):
            nodes.pop()
            cursor.pop()
            if factors:
                factors.pop()
            continue
        cursor[-1] = k + 1
        child, d = kids[k]
        nodes.append(child)
        factors.append(d)
        cursor.append(0)
    return paths
