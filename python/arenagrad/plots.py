"""Pictures of training: decision boundaries, their animation, curves, a regression fit.

Everything here draws with matplotlib's Agg backend (selected inside each function, before
pyplot is imported), so nothing ever opens a window and the functions work on a machine
without a display. matplotlib is imported only when a picture is drawn, so ``arenagrad -h``
and the trainer's Python API start fast.

The functions take numbers, not models: the trainer evaluates its model on the grid from
:func:`make_grid` (under ``ag.no_grad()``) and passes the class probabilities in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "make_grid",
    "plot_decision_boundary",
    "save_boundary_gif",
    "save_regression_gif",
    "plot_history",
    "plot_regression",
    "plot_minimize",
]

PathLike = Union[str, Path]

# Small pictures: README images stay well under 100 KB each.
DPI = 80
_CLASS_COLORS = [
    "#d62728",
    "#1f77b4",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


def _pyplot() -> Any:
    """pyplot on the Agg backend (never a window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def make_grid(X: np.ndarray, steps: int = 60, margin: float = 0.25) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``steps x steps`` grid covering the 2-D points ``X`` plus a margin.

    Returns:
        ``xs`` (steps,), ``ys`` (steps,) and the grid points as a ``(steps*steps, 2)``
        array in row-major order (``ys`` outer, ``xs`` inner), ready to be fed to a model
        and reshaped to ``(steps, steps, ...)``.
    """
    X = np.asarray(X, dtype=np.float64)
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = margin * np.maximum(hi - lo, 1e-9)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], steps)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], steps)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, np.column_stack([gx.ravel(), gy.ravel()])


def _draw_boundary(ax: Any, X: np.ndarray, y: np.ndarray, xs: np.ndarray, ys: np.ndarray, probs: np.ndarray) -> None:
    """Fill the grid by class, shade by confidence, and scatter the data on top."""
    from matplotlib.colors import ListedColormap

    probs = np.asarray(probs, dtype=np.float64)
    k = probs.shape[-1]
    gx, gy = np.meshgrid(xs, ys)
    if k == 2:
        # P(class 1) as a gradient from red to blue, the 0.5 line as the boundary.
        ax.contourf(gx, gy, probs[..., 1], levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.45, vmin=0, vmax=1)
        ax.contour(gx, gy, probs[..., 1], levels=[0.5], colors="k", linewidths=1.2)
    else:
        cmap = ListedColormap(_CLASS_COLORS[:k])
        ax.contourf(gx, gy, probs.argmax(axis=-1), levels=np.arange(k + 1) - 0.5, cmap=cmap, alpha=0.3)
    cmap = ListedColormap(["#b2182b", "#2166ac"] if k == 2 else _CLASS_COLORS[:k])
    ax.scatter(
        X[:, 0], X[:, 1], c=np.asarray(y), cmap=cmap, vmin=-0.5, vmax=k - 0.5, s=16, edgecolors="w", linewidths=0.5
    )
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_xticks([])
    ax.set_yticks([])


def plot_decision_boundary(
    X: np.ndarray,
    y: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    probs: np.ndarray,
    path: PathLike,
    title: Optional[str] = None,
    dpi: int = DPI,
) -> Path:
    """Save the decision boundary of a 2-D classifier with its data points.

    Args:
        X, y: the points ``(n, 2)`` and their integer labels.
        xs, ys, probs: grid axes from :func:`make_grid` and the model's class
            probabilities on it, shape ``(len(ys), len(xs), k)``.
        path: the PNG to write.
    """
    return _save_figure(lambda axes: _draw_boundary(axes[0], X, y, xs, ys, probs), path, title, dpi, (4.2, 4.2))


def _save_figure(
    draw: Any,
    path: PathLike,
    title: Optional[str],
    dpi: int,
    figsize: Tuple[float, float],
    panels: int = 1,
    over_figure: bool = False,
) -> Path:
    """A row of ``panels`` axes: draw(axes), a title (on the first axes, or
    over the whole figure), saved and closed."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, panels, figsize=figsize, squeeze=False)
    try:
        draw(list(axes[0]))
        if title and over_figure:
            fig.suptitle(title, fontsize=10)
        elif title:
            axes[0][0].set_title(title, fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
    return Path(path)


def _save_gif(
    frames: Sequence[Tuple[str, Any]], draw: Any, path: PathLike, fps: int, dpi: int, figsize: Tuple[float, float]
) -> Path:
    """Draw every ``(title, state)`` frame with ``draw(ax, state)`` into a GIF."""
    plt = _pyplot()
    from matplotlib.animation import PillowWriter

    if not frames:
        raise ValueError("a GIF needs at least one frame")
    fig, ax = plt.subplots(figsize=figsize)
    writer = PillowWriter(fps=fps)
    try:
        with writer.saving(fig, str(path), dpi):
            held = [frames[-1]] * max(1, fps)  # pause on the result before looping
            for title, state in list(frames) + held:
                ax.clear()
                draw(ax, state)
                ax.set_title(title, fontsize=10)
                fig.tight_layout()
                writer.grab_frame()
    finally:
        plt.close(fig)
    return Path(path)


def save_boundary_gif(
    frames: Sequence[Tuple[str, np.ndarray]],
    X: np.ndarray,
    y: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    path: PathLike,
    fps: int = 6,
    dpi: int = 70,
) -> Path:
    """Save an animated GIF of the decision boundary over training.

    Args:
        frames: ``(title, probs)`` pairs in order, ``probs`` as in
            :func:`plot_decision_boundary`.
        path: the GIF to write (matplotlib's ``PillowWriter``; the last frame is held
            for a second before the loop restarts).
    """
    return _save_gif(frames, lambda ax, probs: _draw_boundary(ax, X, y, xs, ys, probs), path, fps, dpi, (4.0, 4.0))


def save_regression_gif(
    frames: Sequence[Tuple[str, np.ndarray]],
    X: np.ndarray,
    y: np.ndarray,
    xs: np.ndarray,
    path: PathLike,
    truth: Optional[np.ndarray] = None,
    fps: int = 6,
    dpi: int = 60,
) -> Path:
    """Save an animated GIF of a 1-D fit over training; frames are ``(title, ys_pred)``."""
    lo = min(np.min(y), min(np.min(f) for _, f in frames))
    hi = max(np.max(y), max(np.max(f) for _, f in frames))
    pad = 0.05 * (hi - lo + 1e-9)

    def draw(ax: Any, ys_pred: np.ndarray) -> None:
        _draw_fit(ax, X, y, xs, ys_pred, truth)
        ax.set_ylim(lo - pad, hi + pad)

    return _save_gif(frames, draw, path, fps, dpi, (5.0, 3.4))


def plot_history(
    history: Dict[str, List[float]],
    path: PathLike,
    title: Optional[str] = None,
    metric: str = "accuracy",
    dpi: int = DPI,
) -> Path:
    """Save the loss and metric curves over epochs.

    Args:
        history: ``epoch`` plus any of ``loss``, ``test_loss``, ``train_acc``,
            ``test_acc`` (accuracy in [0, 1]) or ``train_mse``, ``test_mse``.
        metric: ``"accuracy"`` (two panels: loss and accuracy) or ``"mse"`` (one panel).
    """
    from matplotlib.ticker import MaxNLocator

    epochs = history["epoch"]
    panels = 2 if metric == "accuracy" else 1

    def draw(axes: List[Any]) -> None:
        ax = axes[0]
        ax.plot(epochs, history["loss"], label="train loss", color="#1f77b4")
        if history.get("test_loss"):
            ax.plot(epochs, history["test_loss"], label="test loss", color="#ff7f0e")
        if metric == "mse":
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if metric == "accuracy":
            ax = axes[1]
            ax.plot(epochs, [100 * a for a in history["train_acc"]], label="train", color="#1f77b4")
            if history.get("test_acc"):
                ax.plot(epochs, [100 * a for a in history["test_acc"]], label="test", color="#ff7f0e")
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel("accuracy (%)")
            ax.set_ylim(top=101)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)

    return _save_figure(draw, path, title, dpi, (4.0 * panels, 3.2), panels, over_figure=True)


def _draw_fit(
    ax: Any, X: np.ndarray, y: np.ndarray, xs: np.ndarray, ys_pred: np.ndarray, truth: Optional[np.ndarray]
) -> None:
    ax.scatter(np.asarray(X).ravel(), y, s=10, color="#7f7f7f", label="data")
    if truth is not None:
        ax.plot(xs, truth, "--", color="#2ca02c", linewidth=1, label="truth")
    ax.plot(xs, ys_pred, color="#d62728", linewidth=2, label="model")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")


def plot_regression(
    X: np.ndarray,
    y: np.ndarray,
    xs: np.ndarray,
    ys_pred: np.ndarray,
    path: PathLike,
    title: Optional[str] = None,
    truth: Optional[np.ndarray] = None,
    dpi: int = DPI,
) -> Path:
    """Save a 1-D regression fit: the data points and the model's curve.

    Args:
        X, y: training inputs ``(n, 1)`` or ``(n,)`` and targets ``(n,)``.
        xs, ys_pred: a dense sorted set of inputs and the model's predictions there.
        truth: optionally the noise-free target on ``xs`` (drawn dashed).
    """
    return _save_figure(lambda axes: _draw_fit(axes[0], X, y, xs, ys_pred, truth), path, title, dpi, (5.0, 3.4))


#: One colour per optimiser in ``plot_minimize``, in arenagrad minimize's order.
PATH_COLOURS = ("#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf")


def plot_minimize(
    paths: Mapping[str, Tuple[Sequence[float], Sequence[float], Sequence[float]]],
    path: PathLike,
    f: Optional[Callable[[np.ndarray, np.ndarray], np.ndarray]] = None,
    title: Optional[str] = None,
    minimum: Optional[Tuple[float, float]] = None,
    dpi: int = DPI,
) -> Path:
    """Save f over the iterations of each optimiser and, with ``f``, their paths over
    its contour plot.

    Args:
        paths: ``{name: (xs, ys, fs)}``, the points each optimiser visited and f there.
        f: f over a grid, ``f(X, Y) -> Z`` (NaN where undefined); ``None``: no contours.
        minimum: where f's minimum is, marked on the contours.
    """

    def draw(axes: List[Any]) -> None:
        ax = axes[0]
        values = np.concatenate([np.asarray(fs, dtype=float) for _, _, fs in paths.values()])
        # f >= 0 everywhere (a sum of squares): a log scale, with an exact 0 drawn at 1e-16
        logged = bool(values.size) and bool(np.all(values[np.isfinite(values)] >= 0))
        for colour, (name, (_, _, fs)) in zip(PATH_COLOURS, paths.items()):
            shown = np.maximum(np.asarray(fs, dtype=float), 1e-16) if logged else fs
            ax.plot(range(len(fs)), shown, color=colour, label=name, linewidth=1.2)
        if logged:
            ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("f (log scale)" if logged else "f")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax = axes[1]
        xs = np.concatenate([np.asarray(p[0], dtype=float) for p in paths.values()])
        ys = np.concatenate([np.asarray(p[1], dtype=float) for p in paths.values()])
        ok = np.isfinite(xs) & np.isfinite(ys)
        (x0, x1), (y0, y1) = _padded(xs[ok]), _padded(ys[ok])
        if f is not None:
            X, Y = np.meshgrid(np.linspace(x0, x1, 160), np.linspace(y0, y1, 160))
            Z = np.asarray(f(X, Y), dtype=float)
            finite = Z[np.isfinite(Z)]
            if finite.size and finite.max() > finite.min():
                if finite.min() > 0:
                    levels = np.geomspace(finite.min(), finite.max(), 24)
                else:
                    levels = np.linspace(finite.min(), finite.max(), 24)
                ax.contour(X, Y, Z, levels=levels, colors="0.55", linewidths=0.6)
        for colour, (name, (px, py, _)) in zip(PATH_COLOURS, paths.items()):
            ax.plot(px, py, ".-", color=colour, markersize=2.5, linewidth=0.9, label=name)
            ax.plot(px[-1], py[-1], "*", color=colour, markersize=9)
        ax.plot(xs[0], ys[0], "o", color="k", markersize=4, label="start")
        if minimum is not None:
            ax.plot(*minimum, "+", color="k", markersize=10, label="minimum")
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.legend(fontsize=8)

    return _save_figure(draw, path, title, dpi, (9.0, 3.8), 2, over_figure=True)


def _padded(values: np.ndarray) -> Tuple[float, float]:
    """The range of values with a margin (at least 0.5 wide): a plot's limits."""
    if not values.size:
        return -1.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    pad = max(0.1 * (hi - lo), 0.25)
    return lo - pad, hi + pad
