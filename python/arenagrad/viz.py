"""Graphviz export of the graph under a Value: ``to_dot`` writes the text, ``render`` the picture.

``to_dot(loss)`` walks the graph from ``loss`` towards its leaves with an explicit queue
(no recursion: a graph can have ten million nodes) and writes one graphviz node per
engine node, labelled with its op, data and grad, coloured by kind:

==============  =====================================================  ==========
kind            what                                                   colour
==============  =====================================================  ==========
``loss``        the root the graph was drawn from                      red
``parameter``   leaf with ``requires_grad=True`` (weights, biases)     blue
``input``       leaf without gradient (data, results of ``no_grad``)   grey
``constant``    a number folded into an op (``x * 2``: the ``2``)      white
``arithmetic``  ops of that kind in the engine's op table (``+ * sum``)  yellow
``activation``  ops of that kind (``relu tanh sigmoid``)               green
``exp_log``     ops of that kind (``exp log softmax logsumexp``)       orange
``custom``      a node with a Python ``_backward`` (micrograd's way)   purple
==============  =====================================================  ==========

An op's kind is declared beside its definition in the engine (``_core.ops()``), so a
new op is coloured without a change here.

Beyond ``max_nodes`` the nodes nearest the root are kept and one summary node says how
many were left out, so the file stays something graphviz can lay out.

``render(loss, "graph.png")`` writes ``graph.dot`` and runs graphviz's ``dot`` program on
it; without ``dot`` on PATH it keeps the ``.dot`` and raises a ``RuntimeError`` that says so.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ._core import Value, ops

__all__ = ["to_dot", "render", "node_kind", "KIND_COLORS"]

# fill colours per kind (graphviz accepts #rrggbb)
KIND_COLORS: Dict[str, str] = {
    "loss": "#f28b82",
    "parameter": "#aecbfa",
    "input": "#dadce0",
    "constant": "#ffffff",
    "arithmetic": "#fdf6b2",
    "activation": "#ccff90",
    "exp_log": "#fbbc77",
    "custom": "#e1c6f5",
}

# Each op's kind, as the engine's op table declares it.
_OP_KINDS: Dict[str, str] = {op["name"]: op["kind"] for op in ops()}
# Binary ops whose folded number is recoverable from the node's data and its one input.
_BINARY = frozenset({"+", "-", "*", "/", "**"})


def node_kind(v: Value, root: bool = False) -> str:
    """The kind ``to_dot`` colours ``v`` by (see the module docstring)."""
    if root:
        return "loss"
    op = v.op
    if not op:
        return "parameter" if v.requires_grad else "input"
    # An op the table does not know was made in Python: Value(data, children, op).
    return _OP_KINDS.get(op, "custom")


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _more_nodes(n: int) -> str:
    return f"{n} more node" if n == 1 else f"{n} more nodes"


def _escape(s: str) -> str:
    # Characters with a meaning inside a graphviz record label.
    for ch in ("\\", "{", "}", "|", "<", ">", '"'):
        s = s.replace(ch, "\\" + ch)
    return s


def _folded_constant(v: Value, inputs: Tuple[Value, ...]) -> Optional[str]:
    """Label for the number folded into binary op ``v``, or None if it has none.

    The engine keeps such a number inside the node and does not expose it; for ``+`` and
    ``*`` it follows from the node's value and its input; for the others (``-``, ``/``,
    ``**``, where the number may be on either side) the node is labelled ``const``.
    """
    op = v.op
    if op not in _BINARY or len(inputs) != 1:
        return None
    x, y = inputs[0].data, v.data
    if op == "+":
        return _fmt(y - x)
    if op == "*" and x != 0:
        return _fmt(y / x)
    return "const"


def _roots(value: Union[Value, Iterable[Value]], caller: str = "to_dot") -> List[Value]:
    """The outputs a drawing starts from; TypeError naming ``caller`` otherwise."""
    if isinstance(value, Value):
        return [value]
    roots = list(value)
    if not roots or not all(isinstance(r, Value) for r in roots):
        raise TypeError(f"{caller} expects a Value or a non-empty iterable of Values")
    return roots


def to_dot(
    value: Union[Value, Iterable[Value]],
    max_nodes: int = 500,
    rankdir: str = "LR",
    count_omitted: bool = True,
    title: Optional[str] = None,
) -> str:
    """Graphviz (``dot``) text of the graph under ``value``.

    Args:
        value: the output to draw from (usually the loss), or several outputs.
        max_nodes: at most this many engine nodes are written, the ones nearest the root
            (breadth first); one summary node stands for the rest.
        rankdir: graphviz layout direction, ``"LR"`` (inputs on the left) or ``"TB"``.
        count_omitted: count the nodes left out exactly (visits the whole graph, about a
            microsecond per node); with False the summary only says that nodes were left out.
        title: optional graph label.

    Returns:
        The text of a ``digraph``; edges point from an input to the op that consumes it.
        Numbers folded into an op are drawn as small ``constant`` nodes.
    """
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be at least 1, got {max_nodes}")
    roots = _roots(value)
    root_set = {r for r in roots}

    index: Dict[Value, int] = {}  # every node seen so far -> its number (keeps it alive)
    queue: deque = deque()
    for r in roots:
        if r not in index:
            index[r] = len(index)
            queue.append(r)

    node_lines: List[str] = []
    const_edges: List[str] = []
    edge_pairs: List[Tuple[int, int]] = []  # (input number, consumer number)
    kept: set = set()

    while queue and len(kept) < max_nodes:
        v = queue.popleft()
        i = index[v]
        kept.add(i)
        kind = node_kind(v, root=v in root_set)
        op = v.op
        head = op if op else ("param" if v.requires_grad else "input")
        if kind == "loss":
            head = f"loss: {head}" if op else "loss"
        label = f"{{{_escape(head)} | data {_fmt(v.data)} | grad {_fmt(v.grad)}}}"
        node_lines.append(f'  n{i} [label="{label}", fillcolor="{KIND_COLORS[kind]}"];')
        inputs = v.inputs
        const = _folded_constant(v, inputs)
        if const is not None:
            node_lines.append(
                f'  c{i} [label="{_escape(const)}", shape=ellipse, fillcolor="{KIND_COLORS["constant"]}", fontsize=9];'
            )
            const_edges.append(f"  c{i} -> n{i};")
        for w in inputs:
            j = index.get(w)
            if j is None:
                j = index[w] = len(index)
                queue.append(w)
            edge_pairs.append((j, i))

    # Edges from nodes that were discovered but not written go to one summary node.
    edge_lines = list(const_edges)
    cut_inputs: Dict[int, int] = {}
    for j, i in edge_pairs:
        if j in kept:
            edge_lines.append(f"  n{j} -> n{i};")
        else:
            cut_inputs[i] = cut_inputs.get(i, 0) + 1
    edges = len(edge_lines) - len(const_edges)
    omitted: Optional[int] = 0
    if queue:
        if count_omitted:
            # Walk the rest of the graph only to count it.
            while queue:
                v = queue.popleft()
                for w in v.inputs:
                    if w not in index:
                        index[w] = len(index)
                        queue.append(w)
            omitted = len(index) - len(kept)
            summary = f"... {_more_nodes(omitted)} left out (max_nodes={max_nodes})"
        else:
            omitted = None
            summary = f"... at least {_more_nodes(len(queue))} left out (max_nodes={max_nodes})"
        node_lines.append(f'  omitted [label="{_escape(summary)}", shape=note, fillcolor="#ffffff"];')
        for i in sorted(cut_inputs):
            edge_lines.append(f"  omitted -> n{i} [style=dashed];")
    kept_count = len(kept)
    del index  # drop the Values before building the text

    header = [
        "digraph arenagrad {",
        f"  // {kept_count} nodes, {edges} edges, {len(const_edges)} folded constants"
        + (f", {omitted} nodes left out" if omitted else (", more nodes left out" if omitted is None else "")),
        f"  rankdir={rankdir};",
        '  node [shape=record, style="filled,rounded", fontname="Helvetica", fontsize=10];',
        '  edge [color="#5f6368"];',
    ]
    if title:
        header.append(f'  label="{_escape(title)}"; labelloc=t;')
    return "\n".join(header + node_lines + edge_lines + ["}"]) + "\n"


def _dot_program() -> Optional[str]:
    return shutil.which("dot")


def render(
    value_or_dot: Union[Value, Sequence[Value], str],
    path: Union[str, Path],
    format: Optional[str] = None,
    max_nodes: int = 500,
    dpi: Optional[int] = None,
) -> Path:
    """Write ``<path stem>.dot`` and render it with graphviz's ``dot`` program.

    Args:
        value_or_dot: a Value (drawn with :func:`to_dot`) or dot text already made.
        path: the picture to write, e.g. ``"graph.png"``; the ``.dot`` goes next to it.
        format: ``"png"``, ``"svg"``, ``"pdf"``...; defaults to the suffix of ``path``,
            else ``"png"``.
        max_nodes: passed to :func:`to_dot`.
        dpi: resolution of bitmap formats (graphviz's default is 96).

    Returns:
        The path of the picture.

    Raises:
        RuntimeError: graphviz's ``dot`` is not installed (the ``.dot`` file is still
            written), or it failed on the file.
    """
    path = Path(path)
    if format is None:
        format = path.suffix[1:] if path.suffix and path.suffix != ".dot" else "png"
    text = value_or_dot if isinstance(value_or_dot, str) else to_dot(value_or_dot, max_nodes)
    dot_path = path.with_suffix(".dot")
    out_path = path.with_suffix("." + format)
    dot_path.parent.mkdir(parents=True, exist_ok=True)
    dot_path.write_text(text)
    exe = _dot_program()
    if exe is None:
        raise RuntimeError(
            f"graphviz's `dot` program is not installed (not on PATH), so only {dot_path} "
            f"was written; install graphviz (e.g. `apt-get install graphviz` or "
            f"`brew install graphviz`) and run: dot -T{format} {dot_path} -o {out_path}"
        )
    cmd = [exe, f"-T{format}", str(dot_path), "-o", str(out_path)]
    if dpi is not None:
        cmd.insert(1, f"-Gdpi={int(dpi)}")
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"graphviz's `dot` failed on {dot_path} (exit {proc.returncode}): {proc.stderr.strip()}")
    return out_path


# The notebook helpers are viz's API too, but live in modules of their own that load on
# first use (and that import this one, so they cannot be imported at its top).
_LAZY = {
    "to_svg": "svg_graph",
    "set_display": "display",
    "graph_html": "display",
    "explain_grad": "explain",
    "animate_backward": "animate",
    "animate_backward_html": "animate",
    "backward_order": "chain_rule",
}
__all__ += list(_LAZY)

if TYPE_CHECKING:
    pass


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_LAZY))
