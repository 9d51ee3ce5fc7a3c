"""The sweep's heatmap: the ranking metric over the two options that vary most, each cell
the mean and spread (sample standard deviation) of the runs that share those two values
(over seeds, and over any other option that varies). The best run's decision boundary is
``train``'s own picture of it (see :func:`arenagrad.sweep.training.run_sweep`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..plots import DPI, _save_figure
from .table import cell, metric_title, ranking_metric

__all__ = ["plot_heatmap", "cell_statistics"]

Row = Dict[str, Any]


def _key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def cell_statistics(
    table: Sequence[Row], axes: Sequence[str], metric: str
) -> Dict[Tuple[Any, ...], Tuple[float, float, int]]:
    """``(mean, sd, n)`` of ``metric`` over the finished runs sharing each value of ``axes``
    (``sd`` is 0 for a single run)."""
    groups: Dict[Tuple[Any, ...], List[float]] = {}
    for row in table:
        if row["status"] == "ok" and row.get(metric) is not None:
            groups.setdefault(tuple(_key(row[a]) for a in axes), []).append(row[metric])
    return {
        key: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v)) for key, v in groups.items()
    }


def plot_heatmap(table: Sequence[Row], axes: Sequence[str], over: Sequence[str], path: Path) -> Path:
    """Draw the ranking metric over ``axes`` (at most two option names; rows, then columns),
    each cell the mean ± sd over the runs that differ only in ``over`` (the seed, the other
    options given several values). Cells with no finished run that has the metric are
    grey, marked n/a.
    """
    ranking = ranking_metric(table)
    metric = ranking[0] if ranking else "train_acc"
    percent, scale = metric.endswith("acc"), 100 if metric.endswith("acc") else 1
    rows_of = axes[0] if len(axes) > 0 else None
    cols_of = axes[1] if len(axes) > 1 else None

    def values(name: Optional[str]) -> List[Any]:
        return list(dict.fromkeys(_key(row[name]) for row in table)) if name else [None]

    def key(y: Any, x: Any) -> Tuple[Any, ...]:
        return tuple(v for v, name in ((y, rows_of), (x, cols_of)) if name)

    ys, xs = values(rows_of), values(cols_of)
    stats = cell_statistics(table, [name for name in (rows_of, cols_of) if name], metric)
    grid = np.array([[stats[key(y, x)][0] * scale if key(y, x) in stats else np.nan for x in xs] for y in ys])

    def draw(ax_list: List[Any]) -> None:
        ax = ax_list[0]
        shown = np.ma.masked_invalid(grid)
        image = ax.imshow(shown, cmap="viridis" if percent else "viridis_r", aspect="auto")
        ax.set_facecolor("#cccccc")
        for i, y in enumerate(ys):
            for j, x in enumerate(xs):
                if key(y, x) not in stats:  # every run failed, or (a regression among classifiers) has no such metric
                    ax.text(j, i, "n/a", ha="center", va="center", fontsize=8)
                    continue
                mean, sd, n = stats[key(y, x)]
                text = f"{scale * mean:.1f}" if percent else f"{mean:.3g}"
                if n > 1:
                    text += f"\n± {scale * sd:.1f}" if percent else f"\n± {sd:.2g}"
                color = "white" if _dark(image, shown[i, j]) else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
        ax.set_xticks(range(len(xs)), [cell(x) for x in xs] if cols_of else [""])
        ax.set_yticks(range(len(ys)), [cell(y) for y in ys] if rows_of else [""])
        ax.set_xlabel(cols_of or "")
        ax.set_ylabel(rows_of or "")
        ax.figure.colorbar(image, ax=ax, label=metric_title(metric) + (" (%)" if percent else ""))

    spread = ", ".join("seeds" if name == "seed" else name for name in over)
    title = metric_title(metric) + (f": mean ± sd over {spread}" if over else "")
    size = (max(4.0, 1.3 * len(xs) + 2.5), max(3.0, 0.8 * len(ys) + 1.8))
    return _save_figure(draw, path, title, DPI, size)


def _dark(image: Any, value: Any) -> bool:
    """Whether the colour under a cell's text is dark (white text reads better)."""
    if np.ma.is_masked(value):
        return False
    r, g, b, _ = image.cmap(image.norm(value))
    return 0.299 * r + 0.587 * g + 0.114 * b < 0.5
