"""A sweep's table: written as CSV, and what it says (the metric to rank by, the best run).

Rows are :func:`~arenagrad.sweep.map_runs` rows: ``run``, the run's options, its metrics,
then ``status``, ``tries``, ``seconds`` and ``error``. In the CSV a list (a run's hidden
widths) is written as the command line writes it, ``16,16``; ``None`` is an empty cell;
floats keep every digit, so two tables compare exactly.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..output import writing
from .runner import BOOKKEEPING

__all__ = ["write_csv", "columns", "cell", "ranking_metric", "best_run", "metric_title"]

Row = Dict[str, Any]

# Ranked by the first that some finished run has: held-out accuracy, then training
# accuracy, then (a regression) the errors, which are better low.
_METRICS = (("test_acc", 1), ("train_acc", 1), ("test_mse", -1), ("train_mse", -1))


def columns(table: Sequence[Row]) -> List[str]:
    """Every column of ``table`` in first-seen order, the bookkeeping ones last."""
    seen: Dict[str, None] = {}
    for row in table:
        seen.update(dict.fromkeys(k for k in row if k not in BOOKKEEPING))
    return [*seen, *BOOKKEEPING]


def cell(value: Any) -> str:
    """A value as the CSV, the pictures and the summary write it: a list as the command line
    writes it (``16,16``), ``None`` as nothing, a float with every digit (``str`` is ``repr``)."""
    if value is None:
        return ""
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def write_csv(table: Sequence[Row], path: Path) -> Path:
    """Write ``table`` to ``path`` as CSV with a header line; returns ``path``.

    Raises:
        OptionError: the file cannot be written.
    """
    names = columns(table)
    with writing(), open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(names)
        out.writerows([cell(row.get(name)) for name in names] for row in table)
    return path


def ranking_metric(table: Sequence[Row]) -> Optional[Tuple[str, int]]:
    """The metric runs are ranked by and its direction (1: higher is better), or ``None``
    when no run finished with one."""
    for name, sign in _METRICS:
        if any(row["status"] == "ok" and row.get(name) is not None for row in table):
            return name, sign
    return None


def best_run(table: Sequence[Row]) -> Optional[Tuple[Row, str]]:
    """The finished run best by :func:`ranking_metric` (the first of equals) and that metric."""
    ranking = ranking_metric(table)
    if ranking is None:
        return None
    name, sign = ranking
    ranked = [row for row in table if row["status"] == "ok" and row.get(name) is not None]
    return max(ranked, key=lambda row: (sign * row[name], -row["run"])), name


def metric_title(name: str) -> str:
    """``"train_acc"`` as words: ``"train accuracy"``; ``"test_mse"``: ``"test MSE"``."""
    split, kind = name.split("_")
    return f"{split} {'accuracy' if kind == 'acc' else kind.upper()}"
