"""Compiled steps: record a model (and its loss) once for a fixed batch size, then replay
the recorded graph for every batch at C speed.

Inputs and targets become placeholder leaves (``requires_grad=False``) whose
``.data`` is overwritten per batch; the parameters are the model's own
Values, so any optimizer works unchanged::

    step = nn.CompiledStep(model, "cross-entropy", batch_size=50, in_features=2, num_classes=2)
    for xb, yb in loader:               # numpy arrays or lists
        opt.zero_grad()
        loss = step(xb, yb)             # forward + backward, grads in model.parameters()
        opt.step()

A batch of another size (the last, short one) gets its own recording, made on
first use and kept; at most ``max_recordings`` (4) are kept, the least recently
used one is dropped to make room for a new size.

:class:`CompiledForward` records the model alone, to evaluate it on many samples
(a picture's grid, say) without building a graph per sample.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, List, NamedTuple, Optional

import numpy as np

from .._core import Value
from ..grad_mode import enable_grad
from ..replay import compile as compile_graph
from .loss import Loss, get_loss

__all__ = ["CompiledStep", "CompiledForward", "placeholders"]

# A loss builder gets the model's outputs for the placeholder batch and the
# placeholder targets, and returns the loss Value.
LossBuilder = Callable[[List[Any], List[Any]], Any]


def placeholders(n: int, width: Optional[int] = None) -> List[Any]:
    """``n`` leaves without gradient (or ``n`` rows of ``width``) whose data a replay sets."""
    if width is None:
        return [Value(0.0, requires_grad=False) for _ in range(n)]
    return [[Value(0.0, requires_grad=False) for _ in range(width)] for _ in range(n)]


def _flat(outputs: List[Any]) -> List[Value]:
    """The Values of a batch of model outputs (each a Value or a list of them)."""
    return [o for out in outputs for o in (out if isinstance(out, list) else [out])]


class _Recording(NamedTuple):
    """One batch size's recording: placeholders, the compiled graph, the outputs."""

    inputs: List[List[Any]]
    targets: List[Any]
    graph: Any  # CompiledGraph
    outputs: List[Any]


class CompiledStep:
    """A model plus loss, recorded per batch size and replayed.

    Args:
        model: any callable mapping one sample (a list of ``in_features``
            Values) to an output Value or a list of them, e.g. an ``nn.MLP``.
        loss: a name from ``nn.LOSSES`` (or its entry): ``"cross-entropy"`` and
            ``"softmax-mse"`` take integer class labels, ``"hinge"`` 0/1 or -1/+1 labels,
            ``"mse"`` class labels with ``num_classes`` or float targets without; or a
            builder ``loss(outputs, targets) -> Value`` over placeholder targets.
        batch_size: the batch size recorded up front.
        in_features: inputs per sample.
        num_classes: classes, for the one-hot targets of the classification losses
            (``None``: the labels are numbers, or -1/+1 for ``"hinge"``).
        target_width: for a custom builder, Values per target (None: one Value).
        penalty: optional ``params -> Value`` added to the loss (e.g. L2).
        max_recordings: how many batch sizes keep their recording (default 4). A batch
            of a new size is recorded on first use; when ``max_recordings`` are already
            kept, the least recently used one is dropped first, so a stream of batches
            of ever-changing sizes holds a bounded amount of memory (each recording is
            the whole graph of a batch).
    """

    def __init__(
        self,
        model: Callable[[List[Any]], Any],
        loss: Any,
        batch_size: int,
        in_features: int,
        num_classes: Optional[int] = None,
        target_width: Optional[int] = None,
        penalty: Optional[Callable[[], Any]] = None,
        max_recordings: int = 4,
    ) -> None:
        if isinstance(loss, str):
            loss = get_loss(loss)
        if isinstance(loss, Loss):
            loss.check(num_classes)
            self.loss_name = loss.name
            builder: LossBuilder = loss.function
            target_width = loss.target_width(num_classes)
            self._encode: Callable[[Any], np.ndarray] = lambda y: loss.targets(y, num_classes)
        elif callable(loss):
            self.loss_name = getattr(loss, "__name__", "custom")
            builder = loss
            self._encode = lambda y: np.asarray(y, dtype=float)
        else:
            raise TypeError(f"loss must be a name, an nn.LOSSES entry or a callable, not {type(loss).__name__}")
        if batch_size < 1 or in_features < 1:
            raise ValueError(f"batch_size and in_features must be positive, got {batch_size}, {in_features}")
        if isinstance(max_recordings, bool) or not isinstance(max_recordings, int) or max_recordings < 1:
            raise ValueError(f"max_recordings must be a positive integer, got {max_recordings!r}")
        self.max_recordings = max_recordings
        self.model = model
        self.builder = builder
        self.in_features = int(in_features)
        self.num_classes = num_classes
        self.target_width = target_width
        self.penalty = penalty
        # Batch size -> recording, least recently used first.
        self._recordings: OrderedDict[int, _Recording] = OrderedDict()
        self._record(int(batch_size))
        #: The model's outputs (Values) for the last batch, refreshed by each call.
        self.outputs: List[Any] = []

    def _record(self, n: int) -> _Recording:
        """Build the graph once for batches of n samples and compile it."""
        # Make room first, so no more than max_recordings graphs are ever alive at once.
        while len(self._recordings) >= self.max_recordings:
            _, dropped = self._recordings.popitem(last=False)  # the least recently used
            if getattr(self, "outputs", None) is dropped.outputs:
                self.outputs = []  # nothing may keep the dropped graph alive
        xs = placeholders(n, self.in_features)
        ts = placeholders(n, self.target_width)
        outs = [self.model(x) for x in xs]
        loss = self.builder(outs, ts)
        if self.penalty is not None:
            loss = loss + self.penalty()
        # The model's outputs are watched so that forward() refreshes them too:
        # callers read them for accuracy without a second pass.
        rec = _Recording(xs, ts, compile_graph(loss, watch=_flat(outs)), outs)
        self._recordings[n] = rec
        return rec

    def _targets(self, yb: Any, n: int) -> np.ndarray:
        y = self._encode(yb)
        if y.shape[:1] != (n,):
            raise ValueError(f"targets have shape {y.shape}, expected {n} entries for a batch of {n}")
        return y

    def _load(self, xb: Any, yb: Any) -> Any:
        x = np.asarray(xb, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"inputs have shape {x.shape}, expected (batch, {self.in_features})")
        n = x.shape[0]
        rec = self._recordings.get(n)
        if rec is None:
            rec = self._record(n)
        else:
            self._recordings.move_to_end(n)
        rec.graph.set_data(rec.inputs, x)
        rec.graph.set_data(rec.targets, self._targets(yb, n))
        self.outputs = rec.outputs
        return rec.graph

    def __call__(self, xb: Any, yb: Any) -> float:
        """Forward and backward on one batch; gradients accumulate into the parameters."""
        graph = self._load(xb, yb)
        loss = graph.forward()
        graph.backward()
        return loss

    def loss(self, xb: Any, yb: Any) -> float:
        """The loss on one batch, without a backward pass."""
        return self._load(xb, yb).forward()

    def __repr__(self) -> str:
        sizes = ", ".join(f"{n}: {r.graph.num_nodes} nodes" for n, r in sorted(self._recordings.items()))
        return f"CompiledStep(loss={self.loss_name!r}, recorded={{{sizes}}})"


class CompiledForward:
    """A model's outputs on many samples, recorded once for ``batch_size`` samples and
    replayed per chunk of rows: what evaluating a model on a dense grid costs in C
    rather than in Python, with the same numbers as calling the model.

    Args:
        model: a callable mapping one sample (``in_features`` Values) to a Value or a list.
        in_features: inputs per sample.
        batch_size: samples per replay; the recorded graph grows with it.
    """

    def __init__(self, model: Callable[[List[Any]], Any], in_features: int, batch_size: int) -> None:
        self.inputs = placeholders(batch_size, in_features)
        with enable_grad():  # a graph to record, even when called under no_grad
            outputs = _flat([model(x) for x in self.inputs])
        self.num_outputs = len(outputs) // batch_size
        self.graph = compile_graph(outputs)

    def __call__(self, X: Any) -> np.ndarray:
        """The ``(len(X), num_outputs)`` outputs for the rows of ``X``."""
        X = np.asarray(X, dtype=float)
        size = len(self.inputs)
        out = np.empty((len(X), self.num_outputs))
        chunk = np.zeros((size, X.shape[1]))
        for start in range(0, len(X), size):
            rows = X[start : start + size]
            chunk[: len(rows)] = rows  # a short last chunk replays the rows before it too
            self.graph.set_data(self.inputs, chunk)
            values = np.reshape(self.graph.forward(), (size, self.num_outputs))
            out[start : start + len(rows)] = values[: len(rows)]
        return out
