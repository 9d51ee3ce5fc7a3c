"""Watching backprop: one frame per backward step, as a GIF or as an HTML slider.

``animate_backward(out, "backprop.gif")`` draws the graph under ``out`` once per node
whose backward step the engine runs, in the order it runs them
(:func:`arenagrad.chain_rule.backward_order`: reverse topological, as ``out.backward()``
sweeps). Each frame outlines the node being stepped in red, writes on each edge to its
inputs the local derivative used (``x3`` for ``d node / d input = 3``), prints in orange
the gradients that just arrived, and says in words above the graph what the chain rule
did: ``a.grad += 2 x 3 = 6``. Every other node shows the gradient it holds at that moment.

``animate_backward_html(out)`` makes the same frames as inline SVG inside one
self-contained HTML block with a slider, step buttons and a play button, for notebooks
(``_repr_html_``) or a file (``.save("backprop.html")``).

The numbers are the engine's: the sweep is replayed from zero gradients with each
node's own ``_backward()`` (:func:`arenagrad.chain_rule.backward_steps`), and every
``.grad`` in the graph is restored afterwards, so animating never changes the user's
gradients, and the last frame shows what ``out.backward()`` from zero grads gives.

The GIF is drawn with matplotlib (Agg, no window) and written with Pillow, which
matplotlib depends on; neither is imported until a GIF is made.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

from ._core import Value
from .chain_rule import BackwardStep, backward_steps
from .graph_layout import Layout, Subgraph, collect, layered_layout
from .svg_graph import HIGHLIGHT, SENT, draw_svg, node_text
from .viz import KIND_COLORS, _fmt, node_kind

__all__ = ["animate_backward", "animate_backward_html", "BackwardAnimation", "MAX_NODES"]

# A frame per step and every node drawn in each: beyond this a picture is unreadable.
MAX_NODES = 120
_INPUT_LINES = 4  # inputs described under a frame's title; the rest are counted

PathLike = Union[str, Path]
_ids = itertools.count()


@dataclass
class _Frame:
    """What one frame shows: the gradients after the step, and the step itself."""

    grads: List[float]
    highlight: int
    notes: Dict[Tuple[int, int], str]
    changed: List[int]
    caption: List[str]


def _name(v: Value) -> str:
    return v.label or node_text(v)


def _signed(x: float) -> str:
    return f"({_fmt(x)})" if x < 0 else _fmt(x)


def _caption(k: int, n: int, step: BackwardStep, root: bool) -> List[str]:
    node = _name(step.node)
    head = f"step {k} of {n}: {node}"
    head += " (the output: its gradient is seeded with 1)" if root else f" has its whole gradient, {_fmt(step.grad)}"
    lines = [head]
    for c, d, b, a in list(zip(step.inputs, step.local, step.before, step.after))[:_INPUT_LINES]:
        if not c.requires_grad:
            lines.append(f"{_name(c)} does not require grad: nothing arrives")
            continue
        lines.append(
            f"{_name(c)}.grad += {_fmt(step.grad)} \u00d7 {_fmt(d)} (d {node} / d {_name(c)})  \u2192  "
            f"{_fmt(b)} + {_signed(step.grad * d)} = {_fmt(a)}"
        )
    if len(step.inputs) > _INPUT_LINES:
        lines.append(f"\u2026 and {len(step.inputs) - _INPUT_LINES} more inputs")
    return lines


def _frames(out: Value, max_nodes: int) -> Tuple[Subgraph, Layout, List[_Frame]]:
    if not isinstance(out, Value):
        raise TypeError(f"animate_backward expects a Value, got {type(out).__name__}")
    steps = backward_steps(out)
    if not steps:
        raise ValueError("nothing to animate: this Value is a leaf or does not require grad, so backward runs no step")
    sub = collect([out], max_nodes, max_inputs=max_nodes)
    if sub.omitted:
        raise ValueError(
            f"the graph has {sub.omitted_text()} than max_nodes={max_nodes} lets a frame draw; "
            "animate a smaller graph or pass a larger max_nodes"
        )
    index = {v: i for i, v in enumerate(sub.nodes)}
    grads = [0.0] * len(sub.nodes)
    grads[index[out]] = 1.0
    frames = []
    for k, s in enumerate(steps, 1):
        i = index[s.node]
        changed = [index[c] for c in s.inputs if c.requires_grad]
        for c, a in zip(s.inputs, s.after):
            grads[index[c]] = a
        notes = {(index[c], i): f"\u00d7{_fmt(d)}" for c, d in zip(s.inputs, s.local) if c.requires_grad}
        frames.append(_Frame(list(grads), i, notes, changed, _caption(k, len(steps), s, s.node is out)))
    return sub, layered_layout(sub), frames


def _pad(frames: List[_Frame]) -> None:
    # Every frame gets as many caption lines, so the pictures keep one size.
    most = max(len(f.caption) for f in frames)
    for f in frames:
        f.caption += [""] * (most - len(f.caption))


class BackwardAnimation:
    """The backward sweep as HTML frames with a slider (see :func:`animate_backward_html`).

    Attributes:
        frames: one SVG document (text) per step.
        captions: the title line of each frame.
    """

    def __init__(self, frames: List[str], captions: List[str]) -> None:
        self.frames = frames
        self.captions = captions

    def __len__(self) -> int:
        return len(self.frames)

    def __repr__(self) -> str:
        return f"<BackwardAnimation: {len(self.frames)} steps; display it in a notebook or .save('backprop.html')>"

    def _repr_html_(self) -> str:
        uid = f"agbp{next(_ids)}"
        n = len(self.frames)
        frames = "".join(
            f'<div class="ag-frame" style="display:{"block" if k == 0 else "none"}">{svg}</div>'
            for k, svg in enumerate(self.frames)
        )
        # Plain DOM calls, no library: notebook frontends run an output's script once.
        script = (
            "(function(){var r=document.getElementById('" + uid + "');if(!r)return;"
            "var f=r.querySelectorAll('.ag-frame'),s=r.querySelector('input'),p=r.querySelector('.ag-pos'),t=null;"
            "function show(k){k=Math.max(0,Math.min(f.length-1,k));for(var i=0;i<f.length;i++)"
            "f[i].style.display=i==k?'block':'none';s.value=k;p.textContent='step '+(k+1)+' of '+f.length;}"
            "s.addEventListener('input',function(){show(+s.value);});"
            "r.querySelector('.ag-prev').onclick=function(){show(+s.value-1);};"
            "r.querySelector('.ag-next').onclick=function(){show(+s.value+1);};"
            "r.querySelector('.ag-play').onclick=function(){var b=this;if(t){clearInterval(t);t=null;"
            "b.textContent='play';return;}b.textContent='pause';if(+s.value==f.length-1)show(0);"
            "t=setInterval(function(){if(+s.value>=f.length-1){clearInterval(t);t=null;b.textContent='play';}"
            "else show(+s.value+1);},900);};})();"
        )
        return (
            f'<div id="{uid}" class="arenagrad-backprop">'
            '<div style="font:13px Helvetica,Arial,sans-serif;margin:4px 0;display:flex;gap:6px;align-items:center">'
            '<button class="ag-prev" title="previous step">\u25c0</button>'
            f'<input type="range" min="0" max="{n - 1}" value="0" step="1" style="width:320px" '
            'aria-label="backward step">'
            '<button class="ag-next" title="next step">\u25b6</button>'
            '<button class="ag-play">play</button>'
            f'<span class="ag-pos">step 1 of {n}</span></div>'
            '<div style="overflow:auto;max-height:640px;background:#ffffff;border:1px solid #dadce0;'
            f'border-radius:4px;padding:2px">{frames}</div>'
            f"<script>{script}</script></div>"
        )

    def save(self, path: PathLike) -> Path:
        """Write a standalone HTML page with the slider; returns the path."""
        path = Path(path)
        path.write_text(
            '<!DOCTYPE html><html><head><meta charset="utf-8"><title>arenagrad: backprop, step by step</title>'
            f"</head><body>{self._repr_html_()}</body></html>",
            encoding="utf-8",
        )
        return path


def animate_backward_html(out: Value, max_nodes: int = MAX_NODES) -> BackwardAnimation:
    """The backward sweep from ``out`` as HTML frames with a slider, for notebooks.

    Args:
        out: the output to differentiate (usually a loss); its graph must have at most
            ``max_nodes`` nodes.
        max_nodes: the most nodes a frame draws.

    Returns:
        A :class:`BackwardAnimation`: one inline SVG per step (``.frames``), shown with a
        slider and buttons when displayed (``_repr_html_``); ``.save(path)`` writes a page.

    Raises:
        ValueError: ``out`` is a leaf or does not require grad, or the graph is larger than
            ``max_nodes``.
    """
    sub, layout, frames = _frames(out, max_nodes)
    _pad(frames)
    svgs = [
        draw_svg(
            sub, layout, grads=f.grads, highlight=f.highlight, edge_notes=f.notes, changed=f.changed, caption=f.caption
        )
        for f in frames
    ]
    return BackwardAnimation(svgs, [f.caption[0] for f in frames])


def animate_backward(out: Value, path: PathLike, fps: float = 1.0, max_nodes: int = MAX_NODES, dpi: int = 100) -> Path:
    """Write a GIF of the backward sweep from ``out``, one frame per step (see the module docstring).

    Args:
        out: the output to differentiate (usually a loss); its graph must have at most
            ``max_nodes`` nodes.
        path: the GIF to write.
        fps: frames per second (the last frame is held three times as long).
        max_nodes: the most nodes a frame draws.
        dpi: pixels per inch of the frames (100 draws the layout at its size in pixels).

    Returns:
        The path written. The GIF has exactly one frame per node whose backward step runs:
        ``len(ag.viz.backward_order(out))``, the non-leaf nodes that require grad.

    Raises:
        ValueError: ``out`` is a leaf or does not require grad, or the graph is larger than
            ``max_nodes``.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    sub, layout, frames = _frames(out, max_nodes)
    _pad(frames)
    images = _draw_frames(sub, layout, frames, dpi)
    path = Path(path)
    ms = int(round(1000 / fps))
    images[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=[ms] * (len(images) - 1) + [3 * ms],
        loop=0,
    )
    return path


def _draw_frames(sub: Subgraph, layout: Layout, frames: Sequence[_Frame], dpi: int) -> List:
    """Each frame drawn with matplotlib's Agg canvas, as a PIL image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path as MPath
    from PIL import Image

    line_h = 16.0
    top = len(frames[0].caption) * line_h + 8.0
    width, height = layout.width, layout.height + top
    pt = 72.0 / 100  # the layout is in 100-dpi pixels; fonts are sized in points
    fig = Figure(figsize=(width / 100, height / 100), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    x, w, h = layout.x, layout.node_w, layout.node_h
    y = [v + top for v in layout.y]

    edges = {}
    edge_labels = {}
    for j, i, _ in sub.edges:
        x1, y1, x2, y2 = x[j] + w, y[j] + h / 2, x[i], y[i] + h / 2
        dx = max(20.0, (x2 - x1) / 2)
        curve = MPath(
            [(x1, y1), (x1 + dx, y1), (x2 - dx, y2), (x2, y2)], [MPath.MOVETO, MPath.CURVE4, MPath.CURVE4, MPath.CURVE4]
        )
        edges[(j, i)] = ax.add_patch(
            FancyArrowPatch(path=curve, arrowstyle="-|>", mutation_scale=10, color="#80868b", linewidth=1.0)
        )
        edge_labels[(j, i)] = ax.text(
            x1 + 3, y1 - 4, "", ha="left", va="baseline", fontsize=11 * pt, color=SENT,
            fontweight="bold", bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8),
        )  # fmt: skip
    boxes, grad_texts = [], []
    roots = set(sub.roots)
    for i, v in enumerate(sub.nodes):
        kind = node_kind(v, root=i in roots)
        boxes.append(
            ax.add_patch(
                FancyBboxPatch(
                    (x[i], y[i]), w, h, boxstyle="round,pad=0,rounding_size=6", fc=KIND_COLORS[kind], ec="#5f6368"
                )
            )
        )
        cx = x[i] + w / 2
        ax.text(cx, y[i] + 14, node_text(v)[:21], ha="center", va="baseline", fontsize=11 * pt, fontweight="bold")
        ax.text(cx, y[i] + 29, f"data {_fmt(v.data)}", ha="center", va="baseline", fontsize=11 * pt)
        grad_texts.append(ax.text(cx, y[i] + 43, "", ha="center", va="baseline", fontsize=11 * pt))
    captions = [
        ax.text(10, (k + 1) * line_h, "", fontsize=12 * pt, fontweight="bold" if k == 0 else "normal", va="baseline")
        for k in range(len(frames[0].caption))
    ]

    images = []
    for f in frames:
        for key, patch in edges.items():
            on = key in f.notes
            patch.set_color(SENT if on else "#80868b")
            patch.set_linewidth(2.2 if on else 1.0)
            edge_labels[key].set_text(f.notes.get(key, ""))
            edge_labels[key].set_visible(on)
        changed = set(f.changed)
        for i, box in enumerate(boxes):
            box.set_edgecolor(HIGHLIGHT if i == f.highlight else "#5f6368")
            box.set_linewidth(3.0 if i == f.highlight else 1.0)
            grad_texts[i].set_text(f"grad {_fmt(f.grads[i])}")
            grad_texts[i].set_color(SENT if i in changed else "black")
            grad_texts[i].set_fontweight("bold" if i in changed else "normal")
        for t, line in zip(captions, f.caption):
            t.set_text(line)
        fig.canvas.draw()
        buf = fig.canvas.buffer_rgba()
        images.append(Image.frombuffer("RGBA", fig.canvas.get_width_height(), buf, "raw", "RGBA", 0, 1).convert("RGB"))
    return images
