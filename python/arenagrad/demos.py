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

import numpy as np

from ._core import Value
from .descent import FUNCTIONS, METHODS, Function, descend
from .nn.activation import ACTIVATIONS
from .options import OptionError, Range, check_options, option
from .output import check_writable, prepare_out, writing
from .training.config import LIMITS, WIDTH, check_mlp

__all__ = ["MinimizeConfig", "minimize", "run_minimize", "GraphConfig", "run_graph"]


@dataclass
class MinimizeConfig:
    """The options of ``arenagrad minimize``."""

    function: str = option(
        "cubic",
        "the function of (x, y) to minimise: relu((x - y)^3 + exp(y)) + y or Rosenbrock's",
        choices=tuple(FUNCTIONS),
    )
    method: List[str] = option(
        ["gd"],
        "one or more optimisers, drawn on one contour plot: gradient descent, momentum (0.9), "
        "L-BFGS (scipy) or Newton's method (exact Hessian)",
        choices=METHODS,
        many=True,
        max_items=len(METHODS),
        metavar="METHOD",
    )
    x: Optional[float] = option(None, "start x", Range(float), default_text="the function's")
    y: Optional[float] = option(None, "start y", Range(float), default_text="the function's")
    lr: Optional[float] = option(
        None, "step size of gd and momentum", Range(float, 0, above=True), default_text="0.05, rosenbrock 0.001"
    )
    steps: int = option(200, "iterations (at most, for lbfgs and newton)", Range(int, 1, 1_000_000))
    out: str = option("output", "where minimize.png goes", metavar="DIR")
    plot: bool = option(True, "draw minimize.png")
    quiet: bool = option(False, "only the final line")


def minimize(x0: float = 1.0, y0: float = 2.0, lr: float = 0.05, steps: int = 200) -> Dict[str, List[float]]:
    """Gradient descent on ``relu((x - y)**3 + exp(y)) + y`` with the engine's gradients.

    Returns:
        ``{"x": [...], "y": [...], "f": [...]}``: the ``steps + 1`` points visited, from
        the start, and ``f`` at each.

    Raises:
        OverflowError: the descent left the domain of f.
    """
    path = descend("gd", FUNCTIONS["cubic"], (x0, y0), lr, steps)
    if path.status.startswith("left the domain"):
        raise OverflowError(path.status)
    return {"x": path.xs, "y": path.ys, "f": path.fs}


def run_minimize(config: MinimizeConfig, stream: Optional[TextIO] = None) -> str:
    """``arenagrad minimize``: run each method, print its path, draw the paths over f's
    contours; returns the final line.

    Raises:
        OptionError: a bad setting, an output that cannot be written, a start where f
            cannot be evaluated, or (with one method) a descent that leaves f's domain.
    """
    check_options(config)
    stream = stream if stream is not None else sys.stderr
    fn = FUNCTIONS[config.function]
    start = (fn.start[0] if config.x is None else config.x, fn.start[1] if config.y is None else config.y)
    picture = prepare_out(config.out) / "minimize.png" if config.plot else None
    check_writable([picture] if picture is not None else [])
    methods = list(dict.fromkeys(config.method))
    if "lbfgs" in methods:
        try:
            import scipy  # noqa: F401
        except ImportError:
            raise OptionError("--method lbfgs needs scipy: pip install 'arenagrad[scipy]'") from None
    runs = []
    for method in methods:
        try:
            run = descend(method, fn, start, config.lr, config.steps)
        except OverflowError as err:
            raise OptionError(f"the descent left the domain of f ({err})") from None
        if len(methods) == 1 and run.status.startswith("left the domain"):
            raise OptionError(f"the descent {run.status}; try a smaller --lr")
        runs.append(run)
        if not config.quiet:
            print(f"{method}: {run.status}, {run.evaluations} evaluations of f", file=stream)
            for i in range(0, len(run.fs), max(1, (len(run.fs) - 1) // 10)):
                print(f"  step {i:>5}: x = {run.xs[i]: .4f}  y = {run.ys[i]: .4f}  f = {run.fs[i]: .4g}", file=stream)
    if picture is not None:
        from . import plots

        with writing():
            plots.plot_minimize(
                {r.method: (r.xs, r.ys, r.fs) for r in runs},
                picture,
                f=lambda X, Y: f_on_grid(fn, X, Y),
                title=f"{', '.join(methods)} on f(x, y) = {fn.formula}",
                minimum=fn.minimum,
            )
        if not config.quiet:
            print(f"  {picture}", file=stream)
    if len(runs) == 1:
        r = runs[0]
        return (
            f"minimize: f went from {r.fs[0]:.4f} to {r.fs[-1]:.4f} in {len(r.fs) - 1} steps "
            f"(x = {r.xs[-1]:.4f}, y = {r.ys[-1]:.4f})"
        )
    ends = "; ".join(f"{r.method} {r.fs[-1]:.4g} in {len(r.fs) - 1} steps" for r in runs)
    return f"minimize: from f = {runs[0].fs[0]:.4f}, {ends}"


def f_on_grid(fn: Function, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """fn over a grid of points, by replaying its graph over the rows (NaN where it is
    undefined)."""
    from .replay import compile as compile_graph

    x, y = Value(0.0, requires_grad=False), Value(0.0, requires_grad=False)
    graph = compile_graph(fn.f(x, y), inputs=[x, y])
    rows = np.column_stack([X.ravel(), Y.ravel()])
    try:
        return graph.forward(rows).reshape(X.shape)
    except (OverflowError, ValueError, ZeroDivisionError):  # somewhere off f's domain: point by point
        Z = np.empty(len(rows))
        for i, row in enumerate(rows):
            try:
                Z[i] = graph.forward(row[None, :])[0]
            except (OverflowError, ValueError, ZeroDivisionError):
                Z[i] = np.nan
        return Z.reshape(X.shape)


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
