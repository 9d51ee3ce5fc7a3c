"""``summary(model)``: a model as a compact table, which is also how a ``Module`` displays in notebooks.

One row for the model and one per submodule down to ``max_depth`` (the layers of an
``MLP``, the entries of a ``Sequential``): its name, type and settings (``extra_repr``),
the shapes of the parameters under it (a layer's sixteen neurons are one entry,
``16 x w (2,)``), how many parameters that is, and the norm of their gradients, blank until
a backward has written one. Each row counts everything below it; a parameter shared by
two modules is counted once per row it is under.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from html import escape
from typing import Dict, List, Optional, Tuple

from .module import Module

__all__ = ["summary", "ModelSummary", "SummaryRow"]

_INDEX = re.compile(r"\.\d+(?=\.)")


@dataclass(frozen=True)
class SummaryRow:
    """One module's line: ``name``, ``type``, ``settings``, ``shapes``, ``params``, ``grad_norm``.

    ``grad_norm`` is the 2-norm of the gradients of the parameters under the module, or
    None while every gradient of the model is zero (no backward yet, or just after
    ``zero_grad``).
    """

    name: str
    depth: int
    type: str
    settings: str
    shapes: str
    params: int
    grad_norm: Optional[float]


def _shapes(module: Module) -> str:
    """The parameter slots under ``module``, alike ones folded: ``16 x w (2,), 16 x b ()``."""
    counts: Dict[Tuple[str, Tuple[int, ...]], int] = {}
    for name, _, shape in module._named_slots():
        # neurons.3.w and neurons.4.w are the same slot of alike modules.
        key = (_INDEX.sub(".*", name).rsplit(".", 1)[-1], shape)
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(
        f"{n} \u00d7 {slot} {shape}" if n > 1 else f"{slot} {shape}" for (slot, shape), n in counts.items()
    )


def _row(name: str, depth: int, module: Module) -> SummaryRow:
    params = module.parameters()
    norm = math.sqrt(math.fsum(p.grad * p.grad for p in params))
    return SummaryRow(name, depth, type(module).__name__, module.extra_repr(), _shapes(module), len(params), norm)


class ModelSummary:
    """What :func:`summary` returns: ``rows`` (:class:`SummaryRow`), a text table as repr, HTML in notebooks."""

    def __init__(self, rows: List[SummaryRow]) -> None:
        self.rows = rows

    @property
    def total_params(self) -> int:
        """Parameters of the whole model."""
        return self.rows[0].params

    def _cells(self) -> List[Tuple[str, ...]]:
        out = []
        for r in self.rows:
            name = "  " * r.depth + (r.name or "(model)")
            grad = "" if r.grad_norm is None else f"{r.grad_norm:.4g}"
            out.append((name, r.type, r.settings, r.shapes, f"{r.params:,}", grad))
        return out

    def __repr__(self) -> str:
        head = ("name", "type", "settings", "parameters", "count", "grad norm")
        rows = [head] + self._cells()
        widths = [max(len(r[c]) for r in rows) for c in range(len(head))]
        lines = [
            "  ".join(cell.rjust(w) if c >= 4 else cell.ljust(w) for c, (cell, w) in enumerate(zip(r, widths)))
            for r in rows
        ]
        return "\n".join(line.rstrip() for line in lines)

    def _repr_html_(self) -> str:
        rows = []
        for r, cells in zip(self.rows, self._cells()):
            indent = f"padding:2px 8px 2px {0.5 + 1.2 * r.depth:.1f}em"
            name = f'<td style="text-align:left;{indent}">{escape(r.name or "(model)")}</td>'
            rest = "".join(
                f'<td style="text-align:{"right" if c >= 4 else "left"};padding:2px 8px">{escape(v)}</td>'
                for c, v in enumerate(cells[1:], 1)
            )
            style = ' style="font-weight:bold"' if r.depth == 0 else ""
            rows.append(f"<tr{style}>{name}{rest}</tr>")
        rule = "padding:2px 8px;border-bottom:1px solid #999"
        heads = "".join(
            f'<th style="text-align:{"right" if c >= 4 else "left"};{rule}">{h}</th>'
            for c, h in enumerate(("name", "type", "settings", "parameters", "count", "grad norm"))
        )
        note = (
            "grad norm: blank until a backward has written gradients"
            if all(r.grad_norm is None for r in self.rows)
            else "grad norm: the 2-norm of the gradients of the parameters under each row"
        )
        return (
            '<div class="arenagrad-summary">'
            '<table style="border-collapse:collapse;font:13px Helvetica,Arial,sans-serif">'
            f"<thead><tr>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f'<div style="font-size:smaller;color:#5f6368">{self.total_params:,} parameters; {note}</div></div>'
        )


def summary(model: Module, max_depth: int = 1) -> ModelSummary:
    """A table of ``model`` and its submodules down to ``max_depth`` levels.

    Args:
        model: any :class:`Module`.
        max_depth: 0 for the model alone, 1 for its children (an MLP's layers), ...

    Returns:
        A :class:`ModelSummary` (``.rows``, ``.total_params``), printed as a text table and
        shown as an HTML table in notebooks.
    """
    rows: List[SummaryRow] = []
    stack: List[Tuple[str, int, Module]] = [("", 0, model)]
    seen = set()
    while stack:  # depth first, children in order, no recursion
        name, depth, m = stack.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        rows.append(_row(name, depth, m))
        if depth < max_depth:
            kids = [(f"{name}.{n}" if name else n, depth + 1, c) for n, c in m.named_children()]
            stack.extend(reversed(kids))
    if not rows[0].grad_norm:
        # No gradient anywhere: no backward yet (or just zero_grad), not a model of dead units.
        rows = [dataclasses.replace(r, grad_norm=None) for r in rows]
    return ModelSummary(rows)
