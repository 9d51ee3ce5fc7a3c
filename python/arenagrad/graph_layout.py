"""Which nodes of a graph to draw, and where: a capped walk and a small layered layout.

:func:`collect` takes the nodes nearest the output, breadth first, up to ``max_nodes``,
and counts what it left out (exactly, or as a lower bound once a visit budget is spent,
so that a ten-million-node graph costs no more than a hundred-thousand-node one).

:func:`layered_layout` places them as graphviz's ``dot -Grankdir=LR`` would in spirit:
each node in the column of its longest distance from the output (the output on the
right, leaves on the left), the nodes of a column ordered by the mean height of their
neighbours (a few barycenter sweeps), then pulled towards their consumers. Pure Python,
no recursion, linear in the edges drawn per sweep; the SVG writer (:mod:`.svg_graph`)
and the animation (:mod:`.animate`) both draw from it.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ._core import Value

__all__ = ["Subgraph", "Layout", "collect", "layered_layout"]

# Nodes visited to count what a capped drawing leaves out: about 30 ms of walking.
COUNT_BUDGET = 100_000
# Inputs drawn per node: a wide sum or dot shows its first 16, and counts the rest.
MAX_INPUTS = 16


@dataclass
class Subgraph:
    """The part of a graph that is drawn.

    Attributes:
        nodes: the drawn nodes, breadth first from the roots (roots first).
        roots: indices of the roots in ``nodes``.
        edges: ``(input, consumer, multiplicity)`` index triples among drawn nodes
            (``x * x`` is one edge of multiplicity 2).
        cut: consumer index -> how many of its input edges lead to nodes left out.
        omitted: how many nodes were left out; a lower bound unless ``omitted_exact``.
        omitted_exact: whether ``omitted`` is the exact count.
    """

    nodes: List[Value]
    roots: List[int]
    edges: List[Tuple[int, int, int]]
    cut: Dict[int, int] = field(default_factory=dict)
    omitted: int = 0
    omitted_exact: bool = True

    def omitted_text(self) -> str:
        """``"1,234 more nodes"`` or ``"at least 99,999 more nodes"``; empty when none."""
        if not self.omitted:
            return ""
        noun = "node" if self.omitted == 1 else "nodes"
        return f"{'' if self.omitted_exact else 'at least '}{self.omitted:,} more {noun}"


def collect(
    roots: Sequence[Value], max_nodes: int, max_inputs: int = MAX_INPUTS, count_budget: int = COUNT_BUDGET
) -> Subgraph:
    """The ``max_nodes`` nodes nearest ``roots`` (breadth first) and what was left out.

    Of a node with more than ``max_inputs`` distinct inputs (a wide sum or dot) only the
    first ``max_inputs`` are drawn; the others are counted with the rest.
    """
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be at least 1, got {max_nodes}")
    seen: Dict[Value, int] = {}  # every node met -> the order it was met in (keeps it alive)
    queue: deque = deque()  # to draw, nearest first
    spill: deque = deque()  # wide nodes' extra inputs: counted, never drawn
    for r in roots:
        if r not in seen:
            seen[r] = len(seen)
            queue.append(r)
    nodes: List[Value] = []
    drawn: Dict[int, int] = {}  # order met -> index in nodes
    pairs: List[Tuple[int, int, int]] = []
    while queue and len(nodes) < max_nodes:
        v = queue.popleft()
        i = len(nodes)
        drawn[seen[v]] = i
        nodes.append(v)
        for n, (w, k) in enumerate(Counter(v.inputs).items()):
            j = seen.get(w)
            if j is None:
                j = seen[w] = len(seen)
                (queue if n < max_inputs else spill).append(w)
            pairs.append((j, i, k))
    edges: List[Tuple[int, int, int]] = []
    cut: Dict[int, int] = {}
    for j, i, k in pairs:
        if j in drawn:
            edges.append((drawn[j], i, k))
        else:
            cut[i] = cut.get(i, 0) + k
    # Count the rest with a budget: a huge graph is reported as "at least N more".
    visits = 0
    for rest in (queue, spill):
        while rest and visits < count_budget:
            v = rest.popleft()  # never a drawn node: those were all popped above
            visits += 1
            for w in v.inputs:
                if w not in seen:
                    seen[w] = len(seen)
                    rest.append(w)
    root_ids = [drawn[seen[r]] for r in dict.fromkeys(roots) if seen[r] in drawn]
    omitted = len(seen) - len(nodes)
    return Subgraph(nodes, root_ids, edges, cut, omitted, not queue and not spill)


@dataclass
class Layout:
    """Where each node of a :class:`Subgraph` goes, in pixels (y grows downwards).

    ``x[i], y[i]`` is the top-left corner of node ``i``'s box of ``node_w x node_h``;
    ``summary`` the top-left of the "more nodes" box when nodes were left out.
    """

    x: List[float]
    y: List[float]
    width: float
    height: float
    node_w: float
    node_h: float
    summary: Optional[Tuple[float, float]] = None


def _ranks(n: int, edges: List[Tuple[int, int, int]]) -> List[int]:
    """Longest distance from a root along consumer -> input edges (Kahn's order, no recursion)."""
    inputs: List[List[int]] = [[] for _ in range(n)]
    pending = [0] * n
    for j, i, _ in edges:
        inputs[i].append(j)
        pending[j] += 1
    rank = [0] * n
    ready = [i for i in range(n) if pending[i] == 0]
    while ready:
        i = ready.pop()
        for j in inputs[i]:
            if rank[i] + 1 > rank[j]:
                rank[j] = rank[i] + 1
            pending[j] -= 1
            if pending[j] == 0:
                ready.append(j)
    return rank


def layered_layout(
    sub: Subgraph,
    node_w: float = 132.0,
    node_h: float = 50.0,
    col_gap: float = 54.0,
    row_gap: float = 14.0,
    margin: float = 10.0,
    sweeps: int = 3,
) -> Layout:
    """Columns by longest distance from the roots, rows by barycenters (see the module docstring)."""
    n = len(sub.nodes)
    rank = _ranks(n, sub.edges)
    depth = max(rank) if n else 0
    extra = 1 if sub.omitted else 0  # a column on the left for the "more nodes" box
    columns: List[List[int]] = [[] for _ in range(depth + 1)]
    for i in range(n):
        columns[rank[i]].append(i)
    consumers: List[List[int]] = [[] for _ in range(n)]
    inputs: List[List[int]] = [[] for _ in range(n)]
    for j, i, _ in sub.edges:
        consumers[j].append(i)
        inputs[i].append(j)

    pitch = node_h + row_gap
    y = [0.0] * n

    def stack(col: List[int]) -> None:
        # Centred on 0, so columns of different heights compare by their middles.
        top = -(len(col) - 1) * pitch / 2
        for k, i in enumerate(col):
            y[i] = top + k * pitch

    def mean_y(ids: List[int], fallback: float) -> float:
        return sum(y[k] for k in ids) / len(ids) if ids else fallback

    for col in columns:
        stack(col)
    for _ in range(sweeps):
        for r in range(1, depth + 1):  # outward from the root: follow the consumers
            columns[r].sort(key=lambda i: mean_y(consumers[i], y[i]))
            stack(columns[r])
        for r in range(depth - 1, -1, -1):  # back towards the root: follow the inputs
            columns[r].sort(key=lambda i: mean_y(inputs[i], y[i]))
            stack(columns[r])
    # Pull each column towards its consumers (straight chains), keeping order and spacing.
    for r in range(1, depth + 1):
        col = columns[r]
        want = [mean_y(consumers[i], y[i]) for i in col]
        placed: List[float] = []
        for w in want:
            placed.append(w if not placed else max(w, placed[-1] + pitch))
        shift = sum(w - p for w, p in zip(want, placed)) / len(col)
        for i, p in zip(col, placed):
            y[i] = p + shift

    top = min(y) if n else 0.0
    bottom = max(y) if n else 0.0
    summary = None
    if extra:
        summary = (margin, (top + bottom) / 2 - top + margin)
    x = [margin + (extra + depth - rank[i]) * (node_w + col_gap) for i in range(n)]
    y = [v - top + margin for v in y]
    width = 2 * margin + (depth + 1 + extra) * node_w + (depth + extra) * col_gap
    height = 2 * margin + (bottom - top) + node_h
    return Layout(x, y, width, height, node_w, node_h, summary)
