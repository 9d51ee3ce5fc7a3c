"""Rich display in notebooks: evaluating a ``Value`` in Jupyter (VS Code, marimo) shows its graph.

``import arenagrad`` gives ``Value`` a ``_repr_html_``: the graph under the Value, one box
per node with its label and op, data and grad, coloured by kind, inside a scrolling
frame, with a legend and a line saying how many nodes were drawn. At most
``max_nodes`` nodes (150) are drawn, those nearest the Value; the rest are counted (up
to a budget) and stand behind one dashed box, so displaying a ten-million-node loss
takes milliseconds. With graphviz's ``dot`` on PATH the layout is graphviz's; without it,
a small layered layout in Python (:mod:`arenagrad.svg_graph`) draws the same boxes.

Only ``_repr_html_`` is defined, not ``_repr_svg_`` too: Jupyter asks every formatter an
object has, so a second one would lay the graph out twice per display, and frontends
prefer the HTML anyway. ``ag.viz.to_svg`` gives the bare SVG.

This module is imported by ``import arenagrad`` and imports nothing heavy itself: the
drawing code loads on the first display.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ._core import Value

__all__ = ["set_display", "graph_html"]

_LAYOUTS = ("auto", "python", "dot")
_SETTINGS: Dict[str, Any] = {"max_nodes": 150, "layout": "auto"}
_DOT_TIMEOUT = 10.0  # seconds; a slower dot falls back to the Python layout


def set_display(max_nodes: Optional[int] = None, layout: Optional[str] = None) -> Dict[str, Any]:
    """Change how Values display in notebooks; returns the settings now in force.

    Args:
        max_nodes: draw at most this many nodes (those nearest the Value).
        layout: ``"auto"`` (graphviz's ``dot`` when installed, else Python), ``"python"``
            or ``"dot"`` (an error at display time if ``dot`` is missing).
    """
    if max_nodes is not None:
        if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
            raise ValueError(f"max_nodes must be a positive int, got {max_nodes!r}")
        _SETTINGS["max_nodes"] = max_nodes
    if layout is not None:
        if layout not in _LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(_LAYOUTS)}; got {layout!r}")
        _SETTINGS["layout"] = layout
    return dict(_SETTINGS)


def _dot_svg(dot_text: str) -> Optional[str]:
    """graphviz's SVG for ``dot_text``, without the XML prologue; None when dot is missing or fails."""
    import subprocess  # here, not at the top: it costs a millisecond of every `import arenagrad`

    from . import viz

    exe = viz._dot_program()
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "-Tsvg"], input=dot_text, capture_output=True, text=True, timeout=_DOT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    start = proc.stdout.find("<svg")
    if proc.returncode != 0 or start < 0:
        return None
    return proc.stdout[start:]


def graph_html(value: Value, max_nodes: Optional[int] = None, layout: Optional[str] = None) -> str:
    """The HTML a notebook shows for ``value``: its graph, a legend and what was left out.

    Args:
        value: the Value to draw from.
        max_nodes: nodes drawn at most (default: :func:`set_display`'s, 150).
        layout: ``"auto"``, ``"python"`` or ``"dot"`` (default: :func:`set_display`'s).
    """
    from . import viz
    from .graph_layout import collect, layered_layout
    from .svg_graph import draw_svg, kinds_of, legend_svg

    max_nodes = _SETTINGS["max_nodes"] if max_nodes is None else max_nodes
    layout = _SETTINGS["layout"] if layout is None else layout
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(_LAYOUTS)}; got {layout!r}")
    sub = collect([value], max_nodes)
    svg = None
    used = "python"
    if layout != "python" and viz._dot_program() is not None:
        svg = _dot_svg(viz.to_dot(value, max_nodes=max_nodes, count_omitted=False))
        used = "graphviz dot"
    if svg is None:
        if layout == "dot":
            raise RuntimeError("layout='dot' needs graphviz's `dot` program on PATH (or it failed on this graph)")
        svg = draw_svg(sub, layered_layout(sub))
        used = "python"
    drawn = len(sub.nodes)
    note = f"{drawn:,} node{'s' if drawn != 1 else ''} drawn"
    if sub.omitted:
        note += f"; {sub.omitted_text()} not drawn (max_nodes={max_nodes:,}; ag.viz.set_display(max_nodes=...))"
    note += f"; layout: {used}"
    return (
        '<div class="arenagrad-graph">'
        '<div style="overflow:auto;max-height:600px;max-width:100%;background:#ffffff;'
        'border:1px solid #dadce0;border-radius:4px;padding:2px">'
        f"{svg}</div>"
        '<div style="font:12px Helvetica,Arial,sans-serif;color:#5f6368;margin-top:4px;display:flex;'
        'gap:12px;align-items:center;flex-wrap:wrap">'
        f"{legend_svg(kinds_of(sub))}<span>{note}</span></div></div>"
    )


def _value_repr_html(self: Value) -> str:
    return graph_html(self)


# Value is a C type whose dict accepts new methods (micrograd's dialect): subclasses,
# micrograd.engine.Value included, inherit this one.
Value._repr_html_ = _value_repr_html  # type: ignore[attr-defined]
