"""Losses and elementwise activations as plain functions, as ``torch.nn.functional``.

A batch is a Python list (one entry per sample), the scalar-engine counterpart of a
tensor's first dimension: ``preds`` is a list of ``Value``\\ s (or of rows of them for
several outputs per sample), ``logits`` for classification a list of rows. Targets are
numbers (lists, tuples or numpy arrays).

Every loss takes ``reduction="mean" | "sum" | "none"`` as in torch: one ``Value``, or the
per-element losses in the shape of the input. Reductions and the per-sample cross
entropy are fused engine ops (``ag.mean``, ``ag.sum``, ``ag.dot``, ``ag.logsumexp``), so a
loss over ``n`` samples adds about ``n`` nodes to the graph plus one, rather than the
``3n`` of a micrograd-style ``sum(...)``. Bad lengths, labels or class indices raise
``ValueError`` naming the offending argument and index.

Also importable as ``arenagrad.losses``. The losses by name, with the targets each reads
from a dataset's labels, are ``nn.LOSSES`` (:mod:`arenagrad.nn.loss`).
"""

from __future__ import annotations

import operator
from typing import Any, Iterable, List, Optional, Tuple, Union

import numpy as np

from .._core import Value, dot, logsumexp, softmax
from .._core import mean as _mean
from .._core import sum as _sum

__all__ = [
    "relu",
    "leaky_relu",
    "tanh",
    "sigmoid",
    "mse_loss",
    "hinge_loss",
    "cross_entropy",
    "softmax_mse_loss",
    "binary_cross_entropy_with_logits",
    "l2_penalty",
    "accuracy",
]

Scalar = Union[Value, float, int]
Loss = Union[Value, List[Any]]

_REDUCTIONS = ("mean", "sum", "none")


# --------------------------------------------------------------------- helpers


def _is_scalar(x: Any) -> bool:
    return isinstance(x, (Value, int, float, np.number))


def _seq(x: Any) -> list:
    """A list view of a sequence or numpy array (numpy scalars become Python numbers)."""
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (str, bytes)) or not isinstance(x, Iterable):
        raise TypeError(f"expected a sequence, got {type(x).__name__}")
    return list(x)


def _as_value(x: Scalar) -> Value:
    """``x`` itself if it is a Value, else a constant that needs no gradient."""
    return x if type(x) is Value else Value(float(x), requires_grad=False)


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _flatten_pair(preds: Any, targets: Any, pname: str, tname: str) -> Tuple[List[Any], List[Any], Optional[List[int]]]:
    """Flatten matching ``preds``/``targets`` for an elementwise loss.

    Returns the flat lists and the layout: ``None`` for a scalar pair, ``[]`` for a flat
    batch, else the width of every row (a batch of several outputs per sample).
    """
    if _is_scalar(preds):
        if not _is_scalar(targets):
            raise ValueError(f"{pname} is a single value but {tname} is not")
        return [preds], [targets], None
    p, t = _seq(preds), _seq(targets)
    if len(p) != len(t):
        raise ValueError(f"{pname} has {len(p)} entries but {tname} has {len(t)}")
    if not p:
        raise ValueError(f"{pname} is empty")
    if all(_is_scalar(v) for v in p):
        for i, y in enumerate(t):
            if not _is_scalar(y):
                raise ValueError(f"{tname}[{i}] is {type(y).__name__}, expected a number")
        return p, t, []
    flat_p: List[Any] = []
    flat_t: List[Any] = []
    widths: List[int] = []
    for i, (row_p, row_t) in enumerate(zip(p, t)):
        if _is_scalar(row_p) or _is_scalar(row_t):
            raise ValueError(f"{pname}[{i}] and {tname}[{i}] must both be rows when {pname} holds rows")
        rp, rt = _seq(row_p), _seq(row_t)
        if len(rp) != len(rt):
            raise ValueError(f"{pname}[{i}] has {len(rp)} entries but {tname}[{i}] has {len(rt)}")
        for j, (a, b) in enumerate(zip(rp, rt)):
            if not _is_scalar(a) or not _is_scalar(b):
                raise ValueError(f"{pname}[{i}][{j}] and {tname}[{i}][{j}] must be numbers or Values")
        flat_p.extend(rp)
        flat_t.extend(rt)
        widths.append(len(rp))
    if not flat_p:
        raise ValueError(f"{pname} is empty")
    return flat_p, flat_t, widths


def _reduce(losses: List[Any], layout: Optional[List[int]], reduction: str) -> Loss:
    """Apply ``reduction`` to flat per-element losses laid out as :func:`_flatten_pair` says."""
    if reduction == "mean":
        return _mean(losses)
    if reduction == "sum":
        return _sum(losses)
    if layout is None:
        return losses[0]
    if not layout:
        return losses
    rows, k = [], 0
    for w in layout:
        rows.append(losses[k : k + w])
        k += w
    return rows


def _elementwise(x: Any, fn: Any) -> Any:
    if type(x) is Value:
        return fn(x)
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_elementwise(v, fn) for v in x]
    return fn(_as_value(x))


# ----------------------------------------------------------------- activations


def relu(x: Any) -> Any:
    """``max(x, 0)`` of a Value, or elementwise over a (nested) list."""
    return _elementwise(x, Value.relu)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    """``x if x > 0 else negative_slope * x``, elementwise."""
    return _elementwise(x, lambda v: v.leaky_relu(negative_slope))


def tanh(x: Any) -> Any:
    """Hyperbolic tangent, elementwise."""
    return _elementwise(x, Value.tanh)


def sigmoid(x: Any) -> Any:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, elementwise."""
    return _elementwise(x, Value.sigmoid)


# ---------------------------------------------------------------------- losses


def mse_loss(preds: Any, targets: Any, reduction: str = "mean") -> Loss:
    """Mean squared error ``(pred - target)**2``, as ``torch.nn.functional.mse_loss``.

    Args:
        preds: a Value, a list of Values, or a list of rows of Values.
        targets: numbers (or Values) of the same layout.
        reduction: ``"mean"`` (over every element), ``"sum"`` or ``"none"``.
    """
    _check_reduction(reduction)
    p, t, layout = _flatten_pair(preds, targets, "preds", "targets")
    diffs = [a - b for a, b in zip(p, t)]
    if reduction == "none":
        return _reduce([_as_value(d) * d for d in diffs], layout, "none")
    # The sum of squares is one fused node: dot(d, d).
    total = dot(diffs, diffs)
    return total / len(diffs) if reduction == "mean" else total


def hinge_loss(scores: Any, labels: Any, reduction: str = "mean") -> Loss:
    """micrograd's max-margin loss ``relu(1 - y * score)`` with labels ``y`` in {-1, +1}.

    Args:
        scores: a Value or a list of Values (one score per sample).
        labels: -1 or +1 per sample (``arenagrad.data.to_pm1`` converts 0/1 labels). A
            label may also be a Value holding -1 or +1, read as data (the placeholder
            of a recorded step); its value is not checked.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    _check_reduction(reduction)
    s, y, layout = _flatten_pair(scores, labels, "scores", "labels")
    losses = []
    for i, (si, yi) in enumerate(zip(s, y)):
        # A label known now makes 1 - y*s into 1 - s or 1 + s: two nodes per sample instead
        # of three. A Value label is data that changes between replays: 1 - y*s it stays.
        if type(yi) is Value:
            margin = 1 - yi * si
        elif yi == 1:
            margin = 1 - _as_value(si)
        elif yi == -1:
            margin = 1 + _as_value(si)
        else:
            raise ValueError(
                f"labels[{i}] is {yi!r}; hinge_loss needs labels -1 or +1 (arenagrad.data.to_pm1 maps 0/1 labels)"
            )
        losses.append(margin.relu())
    return _reduce(losses, layout, reduction)


def binary_cross_entropy_with_logits(logits: Any, targets: Any, reduction: str = "mean") -> Loss:
    """Binary cross entropy of ``sigmoid(logit)`` against targets in [0, 1], computed stably.

    Uses ``softplus(x) - y * x`` (equal to ``-y log sigmoid(x) - (1 - y) log(1 - sigmoid(x))``),
    and ``softplus(x)`` / ``softplus(-x)`` for hard 0/1 targets: nothing overflows, a
    confidently wrong logit costs ``|x|``, and a confidently right one keeps its tiny
    loss to full relative precision (torch's formula rounds those off).

    Args:
        logits: a Value, a list of Values, or a list of rows.
        targets: numbers in [0, 1] (probabilities or 0/1 labels), same layout.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    _check_reduction(reduction)
    x, y, layout = _flatten_pair(logits, targets, "logits", "targets")
    losses = []
    for i, (xi, yi) in enumerate(zip(x, y)):
        if type(yi) is Value or not 0.0 <= yi <= 1.0:
            raise ValueError(f"targets[{i}] is {yi!r}; binary cross entropy needs numbers in [0, 1]")
        xv = _as_value(xi)
        # Hard labels get the exact one-sided forms: softplus(x) - x would cancel to 0
        # for a confidently right logit (x = 35) where the loss is still 6e-16.
        if yi == 0:
            losses.append(xv.softplus())
        elif yi == 1:
            losses.append((-xv).softplus())
        else:
            losses.append(xv.softplus() - yi * xv)
    return _reduce(losses, layout, reduction)


def cross_entropy(logits: Any, targets: Any, reduction: str = "mean") -> Loss:
    """Softmax cross entropy from unnormalised scores, as ``torch.nn.functional.cross_entropy``.

    With class indices the loss per sample is ``logsumexp(row) - row[target]``: one fused,
    max-shifted node and one subtraction, stable for any logits. With a row of class
    probabilities per sample (one-hot rows from ``arenagrad.data.one_hot``, say) it is
    torch's ``-sum(p * log_softmax(row))``, computed as ``logsumexp(row) * sum(p) - dot(p,
    row)``; probabilities may be Values, read as data (the placeholders of a recorded step).

    Args:
        logits: a batch, a list of ``n`` rows of ``C`` Values (or numbers); a single row is
            also accepted (with a single target) and gives that sample's loss.
        targets: ``n`` integer class indices in ``0 .. C-1``, or ``n`` rows of ``C``
            class probabilities.
        reduction: ``"mean"`` over samples, ``"sum"`` or ``"none"`` (a list of ``n`` Values).
    """
    _check_reduction(reduction)
    if isinstance(logits, np.ndarray):
        logits = logits.tolist()
    rows = _seq(logits)
    if not rows:
        raise ValueError("logits is empty")
    single = _is_scalar(rows[0])
    if single:
        rows, targets = [rows], [targets]
    elif _is_scalar(targets):
        raise ValueError("logits is a batch of rows but targets is a single index")
    targets = _seq(targets)
    if len(rows) != len(targets):
        raise ValueError(f"logits has {len(rows)} rows but targets has {len(targets)} entries")
    for i, r in enumerate(rows):
        if _is_scalar(r):
            raise ValueError(f"logits[{i}] is a single value; a batch needs a row of scores per sample")
    rows = [r if type(r) is list else _seq(r) for r in rows]
    n_classes = len(rows[0])
    if n_classes == 0:
        raise ValueError("logits rows are empty")
    per_row = _probability_loss if isinstance(targets[0], (list, tuple, np.ndarray)) else _index_loss
    losses = []
    for i, (row, t) in enumerate(zip(rows, targets)):
        if len(row) != n_classes:
            raise ValueError(f"logits[{i}] has {len(row)} entries, logits[0] has {n_classes}")
        losses.append(per_row(i, row, t))
    if single:
        return losses[0]
    return _reduce(losses, [], reduction)


def _index_loss(i: int, row: List[Any], t: Any) -> Value:
    """``logsumexp(row) - row[t]`` for the class index ``t`` of sample ``i``."""
    try:
        if isinstance(t, (bool, float)):
            raise TypeError
        k = operator.index(t)
    except TypeError:
        raise ValueError(f"targets[{i}] is {t!r}, not an integer class index") from None
    if not 0 <= k < len(row):
        raise ValueError(f"targets[{i}] is {k}, outside the {len(row)} classes 0..{len(row) - 1}")
    return logsumexp(row) - row[k]


def _probability_loss(i: int, row: List[Any], t: Any) -> Value:
    """``-sum(p * log_softmax(row))`` for the class probabilities ``p`` of sample ``i``."""
    p = _seq(t)
    if len(p) != len(row) or not all(_is_scalar(v) for v in p):
        raise ValueError(f"targets[{i}] must be {len(row)} class probabilities, as logits[{i}] has")
    if any(type(v) is Value for v in p):
        mass: Any = _sum(p)  # data, known only when the graph runs
    else:
        mass = sum(p)
        if mass == 1:  # one-hot and most probability rows: no multiplication needed
            return logsumexp(row) - dot(p, row)
    return logsumexp(row) * mass - dot(p, row)


def softmax_mse_loss(logits: Any, targets: Any, reduction: str = "mean") -> Loss:
    """Squared error between the softmax of each row of ``logits`` and a row of targets.

    ``mse_loss([softmax(row) for row in logits], targets)``: with one-hot targets
    (``arenagrad.data.one_hot``) this is the loss the first arenagrad trainer used; it
    bounds every error to [0, 1] where cross entropy grows without limit.

    Args:
        logits: ``n`` rows of ``C`` Values (or numbers), or a single row.
        targets: rows of ``C`` target probabilities (numbers or Values) of the same layout.
        reduction: ``"mean"`` (over every element), ``"sum"`` or ``"none"``.
    """
    rows = logits.tolist() if isinstance(logits, np.ndarray) else _seq(logits)
    if rows and _is_scalar(rows[0]):
        return mse_loss(softmax(rows), targets, reduction)
    return mse_loss([softmax(_seq(r)) for r in rows], targets, reduction)


def l2_penalty(params: Any, alpha: float = 1e-4) -> Value:
    """micrograd's L2 regularisation ``alpha * sum(p * p)``, as one fused ``dot(params, params)``.

    Args:
        params: the parameters (a list of Values), or a ``Module`` (its ``parameters()``).
        alpha: the coefficient; micrograd's demo uses 1e-4.
    """
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    params = params if type(params) is list else list(params)
    if not params:
        # A model with nothing to regularise: a constant zero, not an error.
        return Value(0.0, requires_grad=False)
    return alpha * dot(params, params)


def accuracy(scores: Any, labels: Any) -> float:
    """Fraction of correct predictions, a plain float (no graph).

    * Rows of class scores (``cross_entropy``'s logits): correct when the argmax equals
      the integer label.
    * One score per sample: correct when ``score > 0`` agrees with ``label > 0``, which
      fits -1/+1 labels (hinge loss) and 0/1 labels (logits for BCE) alike.
    """
    s, y = _seq(scores), _seq(labels)
    if len(s) != len(y):
        raise ValueError(f"scores has {len(s)} entries but labels has {len(y)}")
    if not s:
        raise ValueError("scores is empty")
    correct = 0
    for si, yi in zip(s, y):
        if _is_scalar(si):
            correct += (float(si) > 0) == (float(yi) > 0)
        else:
            row = [float(v) for v in si]
            correct += max(range(len(row)), key=row.__getitem__) == int(yi)
    return correct / len(s)
