"""Compiled steps: record a model (and its loss) once, then replay the recorded graph
for every batch at C speed.

The parameters are the model's own Values, so any optimizer works unchanged::

    step = nn.CompiledStep(model, "cross-entropy", batch_size=50, in_features=2, num_classes=2)
    for xb, yb in loader:               # numpy arrays or lists
        opt.zero_grad()
        loss = step(xb, yb)             # forward + backward, grads in model.parameters()
        opt.step()

With a loss from ``nn.LOSSES`` (each a mean over samples) one sample's graph is
recorded, its input and target placeholders compiled as the ``inputs`` of a
batched replay (``ag.compile(..., inputs=...)``): every batch, whatever its
size, replays that one graph over its rows, on all cores. With a loss builder
of your own (which may mix samples), the whole batch's graph is recorded per
batch size instead: a batch of another size (the last, short one) gets its own
recording, made on first use; at most ``max_recordings`` (4) are kept, the
least recently used one dropped to make room.

:class:`CompiledForward` records the model alone, to evaluate it on many samples
(a picture's grid, say) without building a graph per sample.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Dict, List, NamedTuple, Optional

import numpy as np

from .._core import Value
from ..grad_mode import enable_grad
from ..replay import compile as compile_graph
from .loss import Loss, get_loss

__all__ = ["CompiledStep", "CompiledForward", "placeholders"]

# A loss builder gets the model's outputs for the placeholder batch and the
# placeholder targets, and returns the loss Value.
LossBuilder = Callable[[List[Any], List[Any]], Any]

# How many batch sizes' output gradients a per-sample CompiledStep keeps.
_SEEDS_KEPT = 8


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


class _PerSample(NamedTuple):
    """A per-sample recording: the graph of [loss, *outputs, penalty] of one
    sample, its inputs (features, then targets) varying by row. The penalty
    (if any) reads shared leaves only: the replay computes it once per batch,
    as eager would, and it is the same in every row."""

    graph: Any  # CompiledGraph
    num_outputs: int
    penalty: bool


class CompiledStep:
    """A model plus loss, recorded once and replayed per batch.

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
        penalty: optional callable with no arguments returning a Value (or a number),
            added to the loss once per batch, e.g. an L2 penalty over the parameters.
        max_recordings: for a custom builder, how many batch sizes keep their recording
            (default 4). A batch of a new size is recorded on first use; when
            ``max_recordings`` are already kept, the least recently used one is dropped
            first, so a stream of batches of ever-changing sizes holds a bounded amount
            of memory (each recording is the whole graph of a batch). A loss from
            ``nn.LOSSES`` needs one recording of one sample for every batch size.
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
        self._per_sample: Optional[_PerSample] = None
        if isinstance(loss, Loss):
            loss.check(num_classes)
            self.loss_name = loss.name
            builder: LossBuilder = loss.function
            target_width = loss.target_width(num_classes)
            self._encode: Callable[[Any], np.ndarray] = loss.encoder(num_classes)
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
        # Batch size -> recording, least recently used first (custom builders).
        self._recordings: OrderedDict[int, _Recording] = OrderedDict()
        # Batch size -> the output gradients of a per-sample replay (read-only).
        self._seeds: Dict[int, np.ndarray] = {}
        #: The model's outputs for the last batch: Values (each a Value or a list) for a
        #: custom builder; for a loss from nn.LOSSES, an array, ``(n,)`` for one output
        #: per sample or ``(n, outputs)``.
        self.outputs: Any = []
        if isinstance(loss, Loss):
            self._per_sample = self._record_sample()
        else:
            self._record(int(batch_size))

    def _record_sample(self) -> _PerSample:
        """Record one sample's loss and outputs, to replay over the rows of each batch."""
        x = placeholders(1, self.in_features)[0]
        t = placeholders(1, self.target_width)[0]
        out = self.model(x)
        loss = self.builder([out], [t])  # a mean over one sample: that sample's loss
        outputs = _flat([out])
        inputs = x + (t if isinstance(t, list) else [t])
        penalty = [self._sample_penalty(inputs)] if self.penalty is not None else []
        graph = compile_graph([loss, *outputs, *penalty], inputs=inputs)
        return _PerSample(graph, len(outputs), bool(penalty))

    def _sample_penalty(self, inputs: List[Any]) -> Value:
        """The penalty as a Value that reads no sample: the replay computes it once per
        batch, which is eager's loss only if it is the same for every row."""
        assert self.penalty is not None
        pen = self.penalty()
        if not isinstance(pen, Value):
            return Value(float(pen), requires_grad=False)  # a number: a constant of the loss
        read = {id(v) for v in compile_graph(pen).leaves}
        if any(id(v) in read for v in inputs):
            raise ValueError(
                "penalty reads the sample (the model's inputs or outputs); CompiledStep adds it once "
                "per batch, so it may read parameters only"
            )
        return pen

    def _rows(self, xb: Any, yb: Any) -> np.ndarray:
        """The batch as rows of features then targets, the per-sample graph's inputs."""
        x = self._features(xb)
        n = x.shape[0]
        return np.concatenate((x, self._targets(yb, n).reshape(n, -1)), axis=1)

    def _run_rows(self, xb: Any, yb: Any, grad: bool) -> float:
        rec = self._per_sample
        assert rec is not None
        rows = self._rows(xb, yb)
        n = rows.shape[0]
        if n == 0:
            raise ValueError("a batch must have at least one sample")
        if grad:
            seeds = self._seeds.get(n)
            if seeds is None:
                # d(mean loss)/d(sample loss) is 1/n; the outputs are not
                # differentiated; the penalty's gradient, the sum of its
                # column over rows, is 1 (exactly: 1 + 0 + ...).
                seeds = np.zeros((n, 1 + rec.num_outputs + rec.penalty))
                seeds[:, 0] = 1.0 / n
                if rec.penalty:
                    seeds[0, -1] = 1.0
                seeds.flags.writeable = False
                if len(self._seeds) >= _SEEDS_KEPT:  # batch sizes that keep changing
                    self._seeds.clear()
                self._seeds[n] = seeds
            values, _ = rec.graph.value_and_grad(rows, seeds)
        else:
            values = rec.graph.forward(rows)
        self.outputs = values[:, 1] if rec.num_outputs == 1 else values[:, 1 : 1 + rec.num_outputs]
        loss = float(values[:, 0].sum()) / n  # np.mean's bits, without its overhead
        if rec.penalty:
            loss += float(values[0, -1])
        return loss

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

    def _features(self, xb: Any) -> np.ndarray:
        x = np.asarray(xb, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"inputs have shape {x.shape}, expected (batch, {self.in_features})")
        return x

    def _load(self, xb: Any, yb: Any) -> Any:
        x = self._features(xb)
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
        if self._per_sample is not None:
            return self._run_rows(xb, yb, grad=True)
        graph = self._load(xb, yb)
        loss = graph.forward()
        graph.backward()
        return loss

    def loss(self, xb: Any, yb: Any) -> float:
        """The loss on one batch, without a backward pass."""
        if self._per_sample is not None:
            return self._run_rows(xb, yb, grad=False)
        return self._load(xb, yb).forward()

    def __repr__(self) -> str:
        if self._per_sample is not None:
            return f"CompiledStep(loss={self.loss_name!r}, per sample: {self._per_sample.graph.num_nodes} nodes)"
        sizes = ", ".join(f"{n}: {r.graph.num_nodes} nodes" for n, r in sorted(self._recordings.items()))
        return f"CompiledStep(loss={self.loss_name!r}, recorded={{{sizes}}})"


class CompiledForward:
    """A model's outputs on many samples, recorded once for one sample and replayed
    over the rows of an array (batched replay): what evaluating a model on a dense grid
    costs in C rather than in Python, with the same numbers as calling the model.

    Args:
        model: a callable mapping one sample (``in_features`` Values) to a Value or a list.
        in_features: inputs per sample.
        batch_size: accepted for compatibility; one sample is recorded whatever it is.
    """

    def __init__(self, model: Callable[[List[Any]], Any], in_features: int, batch_size: Optional[int] = None) -> None:
        self.inputs = placeholders(in_features)
        with enable_grad():  # a graph to record, even when called under no_grad
            outputs = _flat([model(self.inputs)])
        self.num_outputs = len(outputs)
        self.graph = compile_graph(outputs, inputs=self.inputs)

    def __call__(self, X: Any) -> np.ndarray:
        """The ``(len(X), num_outputs)`` outputs for the rows of ``X``."""
        X = np.asarray(X, dtype=float)
        return self.graph.forward(X).reshape(len(X), self.num_outputs)
