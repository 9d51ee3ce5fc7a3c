"""The graph under a Value as SVG text, laid out in Python (no graphviz needed).

``to_svg(loss)`` draws one box per node (label and op, data, grad), coloured by kind as
:mod:`arenagrad.viz` colours its graphviz output, with edges from each input to the op
that consumes it. Beyond ``max_nodes`` the nodes nearest the output are kept and one
dashed box says how many were left out, so drawing never takes long, whatever the size
of the graph (:mod:`.graph_layout` does the walking and placing).

:func:`draw_svg` is the low-level writer behind it; the backprop animation
(:mod:`.animate`) calls it once per frame with the gradients of that moment, the node
being stepped, and notes on the edges it sends gradient along.
"""

from __future__ import annotations

import itertools
from html import escape
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ._core import Value
from .graph_layout import Layout, Subgraph, collect, layered_layout
from .viz import KIND_COLORS, _fmt, _folded_constant, _roots, node_kind

__all__ = ["to_svg", "draw_svg", "node_text", "MAX_NODES"]

# Drawn at most by default: a few screens of boxes, laid out in a few milliseconds.
MAX_NODES = 150

HIGHLIGHT = "#d93025"  # the node being stepped
SENT = "#e8710a"  # the edges it sends gradient along, and the gradients they change
_EDGE = "#80868b"
_FONT = "Helvetica, Arial, sans-serif"
_CHARS = 21  # what fits on a line of a box at 11 px

_ids = itertools.count()


def _short(text: str, limit: int = _CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def node_text(v: Value) -> str:
    """The first line of a node's box: its label and op (``"L = *"``, ``"tanh"``, ``"a"``)."""
    op = v.op
    if not op:
        return v.label or ("param" if v.requires_grad else "input")
    const = _folded_constant(v, v.inputs)
    head = f"{op} {const}" if const is not None else op
    return f"{v.label} = {head}" if v.label else head


def _edge_path(x1: float, y1: float, x2: float, y2: float) -> str:
    dx = max(20.0, (x2 - x1) / 2)
    return f"M{x1:.1f},{y1:.1f} C{x1 + dx:.1f},{y1:.1f} {x2 - dx:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"


def draw_svg(
    sub: Subgraph,
    layout: Layout,
    *,
    grads: Optional[Sequence[float]] = None,
    highlight: Optional[int] = None,
    edge_notes: Optional[Mapping[Tuple[int, int], str]] = None,
    changed: Iterable[int] = (),
    caption: Sequence[str] = (),
) -> str:
    """SVG text of a laid-out subgraph.

    Args:
        sub, layout: from :func:`.graph_layout.collect` and :func:`.graph_layout.layered_layout`.
        grads: the gradient to print on each node (default: each node's ``.grad``).
        highlight: index of a node to outline in red.
        edge_notes: ``(input, consumer) -> text`` written on those edges, drawn in orange.
        changed: indices of nodes whose gradient is printed in orange.
        caption: lines of text above the graph.
    """
    uid = f"ag{next(_ids)}"  # marker ids must not collide between SVGs on one page
    notes = dict(edge_notes or {})
    changed = set(changed)
    line_h = 16.0
    top = len(caption) * line_h + (8.0 if caption else 0.0)
    width, height = layout.width, layout.height + top
    x, w, h = layout.x, layout.node_w, layout.node_h
    y = [v + top for v in layout.y]
    out: List[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="{_FONT}" font-size="11">',
        "<defs>",
    ]
    for name, colour in (("e", _EDGE), ("s", SENT)):
        out.append(
            f'<marker id="{uid}{name}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
            f'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        )
    out.append("</defs>")
    for k, line in enumerate(caption):
        weight = ' font-weight="bold"' if k == 0 else ""
        out.append(f'<text x="10" y="{(k + 1) * line_h:.0f}" font-size="12"{weight}>{escape(line)}</text>')

    # Edges first, so boxes sit on top of them.
    labels: List[str] = []
    for j, i, mult in sub.edges:
        x1, y1 = x[j] + w, y[j] + h / 2
        x2, y2 = x[i], y[i] + h / 2
        note = notes.get((j, i))
        colour, marker, stroke = (SENT, "s", 2.2) if note is not None else (_EDGE, "e", 1.1)
        out.append(
            f'<path d="{_edge_path(x1, y1, x2, y2)}" fill="none" stroke="{colour}" '
            f'stroke-width="{stroke}" marker-end="url(#{uid}{marker})"/>'
        )
        text = note if note is not None else (f"\u00d7{mult}" if mult > 1 else None)
        if text:
            # At the input's end, where the edge leaves it level: clear of the arrowhead.
            labels.append(
                f'<text x="{x1 + 3:.1f}" y="{y1 - 4:.1f}" fill="{colour}" font-weight="bold" '
                f'stroke="#ffffff" stroke-width="3" paint-order="stroke">{escape(text)}</text>'
            )
    if layout.summary is not None:
        sx, sy = layout.summary[0], layout.summary[1] + top
        for i, count in sub.cut.items():
            out.append(
                f'<path d="{_edge_path(sx + w, sy + h / 2, x[i], y[i] + h / 2)}" fill="none" stroke="{_EDGE}" '
                f'stroke-dasharray="4 3" marker-end="url(#{uid}e)"/>'
            )
            # How many of this node's inputs the dashed edge stands for.
            labels.append(
                f'<text x="{x[i] - 6:.1f}" y="{y[i] + h / 2 + 14:.1f}" text-anchor="end" fill="#5f6368" '
                f'stroke="#ffffff" stroke-width="3" paint-order="stroke">'
                f"+{count:,} input{'s' if count != 1 else ''}</text>"
            )
        out.append(
            f'<rect x="{sx:.1f}" y="{sy:.1f}" width="{w:.0f}" height="{h:.0f}" rx="6" fill="#ffffff" '
            f'stroke="{_EDGE}" stroke-dasharray="4 3"/>'
        )
        out.append(
            f'<text x="{sx + w / 2:.1f}" y="{sy + h / 2 - 3:.1f}" text-anchor="middle">'
            f"{escape(_short(sub.omitted_text()))}</text>"
        )
        out.append(
            f'<text x="{sx + w / 2:.1f}" y="{sy + h / 2 + 11:.1f}" text-anchor="middle" fill="#5f6368">not drawn</text>'
        )

    roots = set(sub.roots)
    for i, v in enumerate(sub.nodes):
        kind = node_kind(v, root=i in roots)
        g = grads[i] if grads is not None else v.grad
        stroke, sw = (HIGHLIGHT, 3.0) if i == highlight else ("#5f6368", 1.0)
        gcolour = f' fill="{SENT}" font-weight="bold"' if i in changed else ""
        cx = x[i] + w / 2
        out.append(
            f"<g><title>{escape(kind)}: {escape(node_text(v))}</title>"
            f'<rect x="{x[i]:.1f}" y="{y[i]:.1f}" width="{w:.0f}" height="{h:.0f}" rx="6" '
            f'fill="{KIND_COLORS[kind]}" stroke="{stroke}" stroke-width="{sw}"/>'
            f'<text x="{cx:.1f}" y="{y[i] + 14:.1f}" text-anchor="middle" font-weight="bold">'
            f"{escape(_short(node_text(v)))}</text>"
            f'<text x="{cx:.1f}" y="{y[i] + 29:.1f}" text-anchor="middle">data {escape(_fmt(v.data))}</text>'
            f'<text x="{cx:.1f}" y="{y[i] + 43:.1f}" text-anchor="middle"{gcolour}>grad {escape(_fmt(g))}</text>'
            "</g>"
        )
    out.extend(labels)
    out.append("</svg>")
    return "\n".join(out)


def to_svg(value: Union[Value, Iterable[Value]], max_nodes: int = MAX_NODES) -> str:
    """SVG text of the graph under ``value`` (one output or several), laid out in Python.

    Args:
        value: the output to draw from (usually the loss), or several outputs.
        max_nodes: at most this many nodes are drawn, those nearest the outputs (breadth
            first); a dashed box stands for the rest and says how many there are.

    Returns:
        An ``<svg>`` element: one box per node with its label and op, data and grad,
        coloured by kind (:data:`arenagrad.viz.KIND_COLORS`), inputs on the left.
    """
    sub = collect(_roots(value, "to_svg"), max_nodes)
    return draw_svg(sub, layered_layout(sub))


def legend_svg(kinds: Iterable[str]) -> str:
    """A one-row SVG legend of the given kinds' colours."""
    items = list(dict.fromkeys(kinds))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{len(items) * 92}" height="18" '
        f'font-family="{_FONT}" font-size="11">'
    ]
    for k, kind in enumerate(items):
        out.append(
            f'<rect x="{k * 92 + 1}" y="2" width="14" height="14" rx="3" fill="{KIND_COLORS[kind]}" stroke="#5f6368"/>'
            f'<text x="{k * 92 + 20}" y="13">{escape("output" if kind == "loss" else kind)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def kinds_of(sub: Subgraph) -> Dict[str, int]:
    """How many drawn nodes there are of each kind, in the order of :data:`KIND_COLORS`."""
    roots = set(sub.roots)
    counts: Dict[str, int] = {}
    for i, v in enumerate(sub.nodes):
        kind = node_kind(v, root=i in roots)
        counts[kind] = counts.get(kind, 0) + 1
    return {k: counts[k] for k in KIND_COLORS if k in counts}
