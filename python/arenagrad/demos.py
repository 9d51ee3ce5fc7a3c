"""The two small demos behind ``arenagrad minimize`` and ``arenagrad graph``, usable from Python.

Each takes a config whose fields are its command's options (declared once, as for
``arenagrad train``), prints its progress to a stream, and returns the line the command
ends with::

    from arenagrad.demos import MinimizeConfig, run_minimize
    print(run_minimize(MinimizeConfig(steps=50, out="out")))
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, TextIO

from .nn.activation import ACTIVATIONS
from .options import OptionError, Range, check_options, option
from .output import check_writable, prepare_out, writing
from .training.config import LIMITS, WIDTH, check_mlp

__all__ = ["MinimizeConfig", "minimize", "run_minimize", "GraphConfig", "run_graph"]


@dataclass
class MinimizeConfig:
    """The options of ``arenagrad minimize``."""

    x: float = option(1.0, "start x", Range(float))
    y: float = option(2.0, "start y", Range(float))
    lr: float = option(0.05, "step size", Range(float, 0, above=True))
    steps: int = option(200, "iterations", Range(int, 1, 1_000_000))
    out: str = option("output", "where minimize.png goes", metavar="DIR")
    plot: bool = option(True, "draw minimize.png")
    quiet: bool = option(False, "only the final line")


def minimize(x0: float = 1.0, y0: float = 2.0, lr: float = 0.05, steps: int = 200) -> Dict[str, List[float]]:
    """Gradient descent on ``relu((x - y)**3 + exp(y)) + y`` with the engine's gradients.

    Returns:
        ``{"x": [...], "y": [...], "f": [...]}``: the ``steps + 1`` points visited, from
        the start, and ``f`` at each.
    """
    from ._core import Value

    x, y = Value(x0), Value(y0)
    xs, ys, fs = [], [], []
    for i in range(steps + 1):
        f = ((x - y) ** 3 + y.exp()).relu() + y
        xs.append(x.data)
        ys.append(y.data)
        fs.append(f.data)
        if i == steps:
            break
        x.grad = y.grad = 0.0
        f.backward()
        x.data -= lr * x.grad
        y.data -= lr * y.grad
    return {"x": xs, "y": ys, "f": fs}


def run_minimize(config: MinimizeConfig, stream: Optional[TextIO] = None) -> str:
    """``arenagrad minimize``: descend, print the path, plot f; returns the final line.

    Raises:
        OptionError: a bad setting, an output that cannot be written, or a descent that
            leaves the domain of f (overflow).
    """
    check_options(config)
    stream = stream if stream is not None else sys.stderr
    picture = prepare_out(config.out) / "minimize.png" if config.plot else None
    check_writable([picture] if picture is not None else [])
    try:
        run = minimize(config.x, config.y, config.lr, config.steps)
    except (OverflowError, ValueError, ZeroDivisionError) as err:
        raise OptionError(f"the descent left the domain of f ({err}); try a smaller --lr") from None
    xs, ys, fs = run["x"], run["y"], run["f"]
    if not config.quiet:
        for i in range(0, len(fs), max(1, config.steps // 10)):
            print(f"step {i:>5}: x = {xs[i]: .4f}  y = {ys[i]: .4f}  f = {fs[i]: .4f}", file=stream)
    if picture is not None:
        from . import plots

        with writing():
            plots.plot_minimize(fs, picture, xs=xs, ys=ys, title="gradient descent on relu((x - y)^3 + exp(y)) + y")
        if not config.quiet:
            print(f"  {picture}", file=stream)
    return (
        f"minimize: f went from {fs[0]:.4f} to {fs[-1]:.4f} in {config.steps} steps "
        f"(x = {xs[-1]:.4f}, y = {ys[-1]:.4f})"
    )


@dataclass
class GraphConfig:
    """The options of ``arenagrad graph``."""

    inputs: int = option(2, "input features", WIDTH, metavar="N")
    hidden: List[int] = option(
        [3],
        f"hidden layer widths; {LIMITS['parameters']:,} parameters at most in all",
        WIDTH,
        many=True,
        max_items=LIMITS["depth"],
        metavar="SIZE",
    )
    activation: str = option("relu", "hidden-layer activation", choices=tuple(ACTIVATIONS))
    format: str = option("png", "picture format when dot is installed", choices=("png", "svg", "pdf"))
    max_nodes: int = option(500, "draw at most N nodes, summarise the rest", Range(int, 1, 10_000), metavar="N")
    dpi: int = option(72, "resolution of a PNG picture", Range(int, 1, 1200))
    seed: int = option(0, "weight seed", Range(int, 0))
    out: str = option("output", "where the files go", metavar="DIR")
    animate: bool = option(False, "also write network_backward.gif: one frame per step of the backward sweep")


def run_graph(config: GraphConfig) -> str:
    """``arenagrad graph``: a small MLP, one sample forward, a squared error, backward, and
    the graph as graphviz text (and picture, with graphviz's ``dot``); returns the final line.

    Raises:
        OptionError: a bad setting or an output that cannot be written.
    """
    from . import nn, viz
    from ._core import Value

    check_options(config)
    sizes = [config.inputs, *config.hidden, 1]
    check_mlp(sizes)
    picture = prepare_out(config.out) / f"network_graph.{config.format}"
    gif = picture.with_name("network_backward.gif") if config.animate else None
    check_writable([picture.with_suffix(".dot"), picture] + ([gif] if gif is not None else []))
    model = nn.MLP(config.inputs, config.hidden + [1], activation=config.activation, seed=config.seed)
    sample = [Value(0.5 - 0.25 * i, requires_grad=False) for i in range(config.inputs)]
    loss = (model(sample) - 1.0) ** 2
    loss.backward()
    text = viz.to_dot(
        loss, max_nodes=config.max_nodes, title=f"MLP {'-'.join(map(str, sizes))}: (model(x) - 1)^2 after one backward"
    )
    animated = ""
    if gif is not None:
        from .animate import animate_backward

        try:
            with writing():
                animate_backward(loss, gif, max_nodes=config.max_nodes)
        except ValueError as err:  # more nodes than a frame draws
            raise OptionError(f"--animate: {err}") from None
        animated = f" and {gif}"
    with writing():
        try:
            path = viz.render(text, picture, dpi=config.dpi)
        except RuntimeError as err:  # no graphviz: the .dot is written all the same
            return f"graph: wrote {picture.with_suffix('.dot')}{animated}; {err}"
    if animated:
        return f"graph: wrote {picture.with_suffix('.dot')}, {path}{animated}"
    return f"graph: wrote {picture.with_suffix('.dot')} and {path}"
