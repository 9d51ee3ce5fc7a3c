"""The training loop behind ``arenagrad train``, usable from Python.

::

    from arenagrad.train import TrainConfig, train
    result = train(TrainConfig(dataset="xor", epochs=30, out="out/xor"))
    print(result.train_acc, result.files)

A run builds a dataset, an :class:`~arenagrad.nn.MLP`, a loss and an optimizer from a
:class:`TrainConfig`, trains for ``epochs`` epochs of shuffled minibatches (a tqdm bar per
epoch showing the running loss and accuracy), evaluates the whole training set (and the
test split, where there is one) after every epoch under ``ag.no_grad()``, and writes the
pictures: the decision boundary every ``plot_every`` epochs and at the end, an animated
GIF of it, the loss/accuracy curves, the fitted curve for regression, and optionally the
graphviz graph of one sample's loss.

Settings left at ``None`` take the dataset's own default (:data:`DATASET_DEFAULTS`), so
every dataset trains well without tuning. Bad settings raise :class:`TrainError` (a
``ValueError``) with a one-line message, before any work is done.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, TextIO, Tuple

import numpy as np

from . import _core as ag
from .grad_mode import no_grad

__all__ = [
    "DATASETS",
    "LOSSES",
    "OPTIMIZERS",
    "ACTIVATIONS",
    "DATASET_DEFAULTS",
    "TrainConfig",
    "TrainResult",
    "TrainError",
    "LIMITS",
    "resolve_config",
    "load_dataset",
    "train",
]

DATASETS = ("linear", "xor", "moons", "circles", "spiral", "sine", "digits")
LOSSES = ("cross-entropy", "mse", "hinge")
OPTIMIZERS = ("sgd", "adam")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "linear")  # as arenagrad.nn.init

# Per-dataset defaults for every setting left at None. The four 2-D toy sets share the
# seed trainer's recipe (a small MLP, SGD with momentum 0.9, minibatches); the numbers
# were checked to reach >= 95% training accuracy with seed 0 well before the last epoch.
_TOY = dict(samples=200, hidden=[16, 16], epochs=50, lr=0.1, momentum=0.9,
            batch_size=25, loss="cross-entropy", optimizer="sgd", test_split=0.0)
DATASET_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "linear": dict(_TOY, noise=0.1),
    "xor": dict(_TOY, noise=0.1),
    "moons": dict(_TOY, noise=0.1),
    "circles": dict(_TOY, noise=0.05),
    "spiral": dict(_TOY, samples=300, noise=0.2, hidden=[32, 32], epochs=100,
                   lr=0.01, optimizer="adam"),
    "sine": dict(_TOY, samples=100, noise=0.1, hidden=[30], epochs=200, lr=0.01,
                 batch_size=10, loss="mse"),
    "digits": dict(_TOY, samples=None, noise=None, hidden=[32], epochs=15, lr=0.05,
                   batch_size=16, test_split=0.2),
}


# What a run may ask for. Beyond these a run cannot fit in memory or finish in any
# reasonable time, so the settings are refused up front (one line from the CLI) rather
# than failing, or swapping, half-way through.
LIMITS: Dict[str, Any] = dict(
    samples=1_000_000,        # generated samples
    noise=10.0,               # ten times the scale of every toy dataset
    width=4096,               # units in one hidden layer
    depth=16,                 # hidden layers
    parameters=1_000_000,     # weights and biases of the whole MLP
    epochs=100_000,
    weight_decay=1.0,
    step_megabytes=1024,      # estimated graph of one training step (batch x network)
)
DIGITS_SAMPLES = 1797
# Features and classes of each dataset, for the size checks before any data is made.
_SHAPES: Dict[str, Tuple[int, int]] = {
    "linear": (2, 2), "xor": (2, 2), "moons": (2, 2), "circles": (2, 2),
    "spiral": (2, 3), "sine": (1, 1), "digits": (64, 10),
}


def count_parameters(sizes: Sequence[int]) -> int:
    """Weights and biases of an MLP with layer sizes ``[inputs, hidden..., outputs]``."""
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


def step_bytes(batch: int, sizes: Sequence[int]) -> int:
    """Rough size of the graph one training step builds: per sample and weighted sum, one
    fused node holding two 8-byte slots per input, plus a few 64-byte nodes per unit."""
    return batch * (16 * count_parameters(sizes) + 200 * sum(sizes[1:]))


def check_writable(paths: Sequence[Path]) -> None:
    """Refuse, before any work, files that exist and cannot be written over.

    Raises:
        TrainError: one of ``paths`` is a directory, or an existing file without write
            permission.
    """
    for path in paths:
        if path.is_dir():
            raise TrainError(f"cannot write {str(path)!r}: it is a directory")
        if path.exists() and not os.access(path, os.W_OK):
            raise TrainError(f"cannot write {str(path)!r}: permission denied")


def _write_error(err: OSError) -> "TrainError":
    where = f" {str(err.filename)!r}" if err.filename else ""
    return TrainError(f"cannot write{where}: {err.strerror or err}")


class TrainError(ValueError):
    """A setting the trainer cannot use; the message is one line meant for the user."""


@dataclass
class TrainConfig:
    """Everything ``arenagrad train`` takes; ``None`` means the dataset's default."""

    dataset: str = "moons"
    samples: Optional[int] = None
    noise: Optional[float] = None
    hidden: Optional[List[int]] = None
    activation: str = "relu"
    epochs: Optional[int] = None
    lr: Optional[float] = None
    momentum: Optional[float] = None
    weight_decay: float = 0.0
    optimizer: Optional[str] = None
    batch_size: Optional[int] = None
    loss: Optional[str] = None
    test_split: Optional[float] = None
    seed: int = 0
    out: str = "output"
    plot_every: Optional[int] = None
    gif: bool = True
    plots: bool = True
    graphviz: bool = False
    compile: bool = False  # record the step once per batch size and replay it (nn.CompiledStep)
    quiet: bool = False
    grid: int = 60


@dataclass
class TrainResult:
    """What a run produced: final metrics, per-epoch history, written files, the model."""

    config: TrainConfig
    task: str  # "classification" or "regression"
    train_acc: Optional[float] = None
    test_acc: Optional[float] = None
    train_mse: Optional[float] = None
    test_mse: Optional[float] = None
    final_loss: float = float("nan")
    # time spent in the minibatch steps only (not the per-epoch evaluation or the pictures)
    seconds: float = 0.0
    seconds_per_epoch: float = 0.0
    history: Dict[str, List[float]] = field(default_factory=dict)
    files: List[Path] = field(default_factory=list)
    model: Any = None

    def epochs_to(self, accuracy: float) -> Optional[int]:
        """First epoch whose training accuracy reached ``accuracy`` (a fraction), or None."""
        for epoch, acc in zip(self.history.get("epoch", []), self.history.get("train_acc", [])):
            if acc >= accuracy:
                return int(epoch)
        return None

    def summary(self) -> str:
        """The one-line verdict the CLI prints last."""
        c = self.config
        if self.task == "regression":
            line = f"final train MSE {self.train_mse:.4f}"
            if self.test_mse is not None:
                line += f", test MSE {self.test_mse:.4f}"
        else:
            line = f"final train accuracy {100 * self.train_acc:.1f}%"
            if self.test_acc is not None:
                line += f", test accuracy {100 * self.test_acc:.1f}%"
        return (
            f"{c.dataset}: {line} after {c.epochs} epochs "
            f"({self.seconds:.1f} s, {self.seconds_per_epoch:.3f} s/epoch)"
        )


# ------------------------------------------------------------------------- configuration


def resolve_config(config: TrainConfig) -> TrainConfig:
    """Fill the ``None`` settings from :data:`DATASET_DEFAULTS` and check them all.

    Raises:
        TrainError: an unknown dataset, loss, optimizer or activation, a non-positive
            size, a negative learning rate, a loss that does not fit the dataset, a
            setting beyond :data:`LIMITS` (samples, noise, hidden widths and depth,
            parameters, epochs, weight decay, the graph of one step), a test split that
            leaves nothing to train on...
    """
    if config.dataset not in DATASETS:
        raise TrainError(
            f"unknown dataset {config.dataset!r} (choose from {', '.join(DATASETS)})"
        )
    defaults = DATASET_DEFAULTS[config.dataset]
    filled = {k: (defaults[k] if getattr(config, k) is None and k in defaults else getattr(config, k))
              for k in asdict(config)}
    c = replace(config, **filled)
    c.hidden = list(c.hidden)
    if c.plot_every is None:
        c.plot_every = max(1, (c.epochs or 1) // 5)

    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise TrainError(msg)

    L = LIMITS

    need(c.loss in LOSSES, f"unknown loss {c.loss!r} (choose from {', '.join(LOSSES)})")
    need(c.optimizer in OPTIMIZERS,
         f"unknown optimizer {c.optimizer!r} (choose from {', '.join(OPTIMIZERS)})")
    need(c.activation in ACTIVATIONS,
         f"unknown activation {c.activation!r} (choose from {', '.join(ACTIVATIONS)})")
    need(all(isinstance(h, int) and h > 0 for h in c.hidden),
         f"hidden layer sizes must be positive integers, got {c.hidden}")
    need(all(h <= L["width"] for h in c.hidden),
         f"hidden layers are at most {L['width']} units wide, got {max(c.hidden, default=0)}")
    need(len(c.hidden) <= L["depth"],
         f"at most {L['depth']} hidden layers, got {len(c.hidden)}")
    need(isinstance(c.epochs, int) and 0 < c.epochs <= L["epochs"],
         f"epochs must be an integer from 1 to {L['epochs']}, got {c.epochs}")
    need(isinstance(c.batch_size, int) and c.batch_size > 0,
         f"batch size must be a positive integer, got {c.batch_size}")
    need(isinstance(c.plot_every, int) and c.plot_every > 0,
         f"plot-every must be a positive integer, got {c.plot_every}")
    need(c.lr is not None and math.isfinite(c.lr) and c.lr > 0,
         f"learning rate must be a positive number, got {c.lr}")
    need(c.momentum is not None and 0 <= c.momentum < 1,
         f"momentum must be in [0, 1), got {c.momentum}")
    need(math.isfinite(c.weight_decay) and 0 <= c.weight_decay <= L["weight_decay"],
         f"weight decay must be in [0, {L['weight_decay']:g}], got {c.weight_decay}")
    need(c.test_split is not None and 0 <= c.test_split < 1,
         f"test split must be in [0, 1), got {c.test_split}")
    need(5 <= c.grid <= 400, f"grid must be between 5 and 400 points a side, got {c.grid}")
    need(isinstance(c.seed, int) and c.seed >= 0, f"seed must be a non-negative integer, got {c.seed}")
    if c.dataset != "digits":
        need(isinstance(c.samples, int) and 4 <= c.samples <= L["samples"],
             f"samples must be an integer from 4 to {L['samples']:,}, got {c.samples}")
        need(c.noise is not None and math.isfinite(c.noise) and 0 <= c.noise <= L["noise"],
             f"noise must be a number in [0, {L['noise']:g}], got {c.noise}")
        n = c.samples
    else:
        need(c.samples is None or isinstance(c.samples, int) and 0 < c.samples <= DIGITS_SAMPLES,
             f"digits has {DIGITS_SAMPLES} samples: samples must be from 1 to {DIGITS_SAMPLES}, "
             f"got {c.samples}")
        need(c.noise is None, "digits is a fixed dataset: noise does not apply to it")
        n = c.samples or DIGITS_SAMPLES
    n_test = math.ceil(c.test_split * n) if c.test_split else 0  # as data.train_test_split
    need(n_test < n, f"a test split of {c.test_split:g} holds out {n_test} of {n} samples, "
         f"leaving none to train on")
    if c.dataset == "sine":
        need(c.loss == "mse",
             f"sine is a regression dataset: only --loss mse applies, not {c.loss}")
    elif c.loss == "hinge":
        need(c.dataset not in ("spiral", "digits"),
             f"hinge loss is for two classes; {c.dataset} has more (use cross-entropy or mse)")

    # Sizes, from the settings alone: refused before any data or weights are made.
    features, classes = _SHAPES[c.dataset]
    sizes = [features, *c.hidden, 1 if c.loss == "hinge" else classes]
    params = count_parameters(sizes)
    shape = "-".join(map(str, sizes))
    need(params <= L["parameters"],
         f"an MLP {shape} has {params:,} parameters; the limit is {L['parameters']:,} "
         f"(use narrower or fewer hidden layers)")
    batch = min(c.batch_size, n - n_test)  # a batch larger than the training set is all of it
    # A compiled step keeps its recorded graph and the flattened copy (measured: 2.6x).
    mb = step_bytes(batch, sizes) * (3 if c.compile else 1) / 2**20
    need(mb <= L["step_megabytes"],
         f"a{' compiled' if c.compile else ''} training step on a batch of {batch} with an MLP "
         f"{shape} would build a graph of "
         f"about {mb:,.0f} MB; the limit is {L['step_megabytes']:,} MB (use a smaller "
         f"batch size or smaller hidden layers)")
    return c


def load_dataset(c: TrainConfig) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """``X_train, y_train, X_test, y_test`` for a resolved config (test arrays may be None)."""
    from . import data

    if c.dataset == "digits":
        try:
            X, y = data.load_digits()
        except ImportError as err:
            raise TrainError(f"the digits dataset needs scikit-learn ({err})") from None
        if c.samples is not None and c.samples < len(y):
            X, y = X[: c.samples], y[: c.samples]
    else:
        make = getattr(data, f"make_{c.dataset}")
        X, y = make(c.samples, noise=c.noise, seed=c.seed)
    if c.test_split:
        X_tr, X_te, y_tr, y_te = data.train_test_split(X, y, test_size=c.test_split, seed=c.seed)
        return X_tr, y_tr, X_te, y_te
    return X, y, None, None


# ------------------------------------------------------------------------------- helpers


class _Progress:
    """A tqdm bar per epoch; silent when quiet."""

    def __init__(self, quiet: bool, stream: TextIO) -> None:
        self.quiet = quiet
        self.stream = stream

    def epoch(self, total: int, desc: str) -> Any:
        """A bar advanced by hand (so the end-of-epoch metrics can still be shown on it)."""
        if self.quiet:
            return _SilentBar()
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="batch", leave=True, file=self.stream,
                    dynamic_ncols=True)

    def note(self, msg: str) -> None:
        if not self.quiet:
            print(msg, file=self.stream, flush=True)


class _SilentBar:
    """The part of tqdm's interface the loop uses, doing nothing (``quiet``)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def _outputs(model: Any, rows: Sequence[Sequence[float]]) -> np.ndarray:
    """The model's outputs on ``rows`` as an ``(n, k)`` array, recording no graph."""
    with no_grad():
        outs = [model(x) for x in rows]
    if outs and isinstance(outs[0], ag.Value):
        return np.array([[o.data] for o in outs])
    return np.array([[v.data for v in o] for o in outs])


def _probabilities(scores: np.ndarray, loss: str) -> np.ndarray:
    """Class probabilities from raw outputs: softmax of logits, sigmoid of a hinge score."""
    if loss == "hinge":
        p1 = 1.0 / (1.0 + np.exp(-np.clip(scores[:, 0], -50, 50)))
        return np.column_stack([1 - p1, p1])
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _predict(scores: np.ndarray, loss: str) -> np.ndarray:
    if loss == "hinge":
        return (scores[:, 0] > 0).astype(np.int64)
    return scores.argmax(axis=1)


def _batch_loss(F: Any, outs: List[Any], yb: List[Any], loss: str, task: str, k: int) -> Any:
    """The minibatch loss: cross-entropy, softmax + MSE on one-hot targets, hinge, or MSE."""
    if task == "regression":
        return F.mse_loss(outs, yb)
    if loss == "cross-entropy":
        return F.cross_entropy(outs, yb)
    if loss == "hinge":
        return F.hinge_loss(outs, [1 if t == 1 else -1 for t in yb])
    # The seed trainer's loss: squared error between softmax probabilities and one-hot.
    probs = [ag.softmax(row) for row in outs]
    onehot = [[1.0 if j == t else 0.0 for j in range(k)] for t in yb]
    return F.mse_loss(probs, onehot)


def _prepare_out(out: str) -> Path:
    """Create ``out`` and check that a file can be written there."""
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".arenagrad-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or str(err)
        raise TrainError(f"cannot write to output directory {out!r}: {reason}") from None
    return path


# ------------------------------------------------------------------------------- training


def train(config: TrainConfig, stream: Optional[TextIO] = None) -> TrainResult:
    """Train as ``arenagrad train`` does and return the metrics, history and files.

    Args:
        config: the settings; ``None`` fields take the dataset's defaults.
        stream: where progress goes (default ``sys.stderr``).

    Raises:
        TrainError: bad settings or an unwritable output directory.
    """
    from . import nn, optim
    from .nn import functional as F

    stream = stream if stream is not None else sys.stderr
    c = resolve_config(config)
    out = _prepare_out(c.out)
    X_tr, y_tr, X_te, y_te = load_dataset(c)
    task = "regression" if c.dataset == "sine" else "classification"
    k = 1 if task == "regression" or c.loss == "hinge" else int(max(y_tr.max(), (y_te.max() if y_te is not None else 0))) + 1
    progress = _Progress(c.quiet, stream)

    model = nn.MLP(X_tr.shape[1], c.hidden + [k], activation=c.activation, seed=c.seed)
    params = model.parameters()
    if c.optimizer == "sgd":
        opt = optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    else:
        opt = optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)

    from .data import ArrayDataset, DataLoader

    loader = DataLoader(ArrayDataset(X_tr, y_tr), batch_size=c.batch_size, shuffle=True,
                        seed=c.seed)
    rows_tr = X_tr.tolist()
    rows_te = X_te.tolist() if X_te is not None else None

    plots = _Plots(c, out, X_tr, y_tr, task, k, progress) if c.plots else None
    # Every file the run will write is checked now, not when training is over.
    check_writable((plots.planned() if plots is not None else [])
                   + (_graph_files(c, out) if c.graphviz else []))
    # A batch larger than the training set is the whole set (as the loader yields it).
    batch_size = min(c.batch_size, len(y_tr))
    history: Dict[str, List[float]] = {"epoch": [], "loss": []}
    progress.note(
        f"training {c.dataset}: MLP {X_tr.shape[1]}-{'-'.join(map(str, c.hidden))}-{k} "
        f"({c.activation}, {len(params)} parameters), {len(y_tr)} training samples"
        + (f", {len(y_te)} held out" if y_te is not None else "")
        + f", {c.loss if task == 'classification' else 'mse'} loss, {c.optimizer} lr={c.lr}"
        + (f" momentum={c.momentum}" if c.optimizer == "sgd" else "")
        + f", batch {batch_size}, {c.epochs} epochs"
    )
    if plots is not None:
        with _writing():
            plots.frame(model, 0)

    step = None
    if c.compile:
        step_loss = "regression-mse" if task == "regression" else c.loss
        step = nn.CompiledStep(model, step_loss, batch_size=batch_size, in_features=X_tr.shape[1],
                               num_classes=k if step_loss in ("cross-entropy", "mse") else None)

    t_train = 0.0
    for epoch in range(1, c.epochs + 1):
        t0 = time.perf_counter()
        bar = progress.epoch(len(loader), f"epoch {epoch:>{len(str(c.epochs))}}/{c.epochs}")
        seen = correct = 0
        loss_sum = 0.0
        for xb, yb in loader:
            opt.zero_grad()
            try:
                if step is not None:
                    loss_value = step(xb, yb)  # replay: forward + backward, no graph built
                    outs = step.outputs
                else:
                    outs = [model(x) for x in xb]
                    loss = _batch_loss(F, outs, yb, c.loss, task, k)
                    loss.backward()
                    loss_value = loss.data
            except (OverflowError, ZeroDivisionError) as err:
                # The engine raises as Python floats do once the weights blow up.
                bar.close()
                raise TrainError(f"the loss diverged at epoch {epoch} ({err}); "
                                 f"{_diverged_hint(c)}") from None
            # numpy's overflow warnings from the update of diverging weights stay quiet:
            # the loss check after the epoch reports divergence, once, in one line.
            with np.errstate(over="ignore", invalid="ignore"):
                opt.step()
            n = len(yb)
            seen += n
            loss_sum += loss_value * n
            if task == "classification":
                scores = (np.array([[o.data] for o in outs]) if k == 1
                          else np.array([[v.data for v in o] for o in outs]))
                correct += int((_predict(scores, c.loss) == np.asarray(yb)).sum())
                bar.set_postfix_str(f"loss {loss_sum / seen:.4f} acc {100 * correct / seen:.1f}%",
                                    refresh=False)
            else:
                bar.set_postfix_str(f"loss {loss_sum / seen:.4f}", refresh=False)
            bar.update(1)
        t_train += time.perf_counter() - t0
        if not math.isfinite(loss_sum):
            bar.close()
            raise TrainError(
                f"the loss diverged (became {loss_sum / seen}) at epoch {epoch}; "
                f"{_diverged_hint(c)}"
            )

        # Whole-set evaluation after the epoch (no graph), shown at the end of the bar.
        history["epoch"].append(epoch)
        history["loss"].append(loss_sum / seen)
        metrics = _evaluate(model, rows_tr, y_tr, rows_te, y_te, c.loss, task)
        for key, val in metrics.items():
            history.setdefault(key, []).append(val)
        if task == "classification":
            post = f"loss {loss_sum / seen:.4f} train acc {100 * metrics['train_acc']:.1f}%"
            if "test_acc" in metrics:
                post += f" test acc {100 * metrics['test_acc']:.1f}%"
        else:
            post = f"loss {loss_sum / seen:.4f} train MSE {metrics['train_mse']:.4f}"
            if "test_mse" in metrics:
                post += f" test MSE {metrics['test_mse']:.4f}"
        bar.set_postfix_str(post)
        bar.close()
        if plots is not None:
            if task == "classification":
                note = f"train acc {100 * metrics['train_acc']:.1f}%"
            else:
                note = f"train MSE {metrics['train_mse']:.4f}"
            with _writing():
                plots.frame(model, epoch, note)

    result = TrainResult(config=c, task=task, history=history, model=model,
                         final_loss=history["loss"][-1], seconds=t_train,
                         seconds_per_epoch=t_train / c.epochs)
    for key in ("train_acc", "test_acc", "train_mse", "test_mse"):
        if key in history:
            setattr(result, key, history[key][-1])
    with _writing():
        if plots is not None:
            result.files.extend(plots.finish(model, history))
        if c.graphviz:
            result.files.extend(_write_graph(model, F, rows_tr, y_tr, c, task, k, out, progress))
    if c.dataset == "digits":
        progress.note(f"digits: {result.seconds_per_epoch:.2f} seconds per epoch "
                      f"({len(y_tr)} samples, batch {batch_size})")
    return result


@contextlib.contextmanager
def _writing() -> Iterator[None]:
    """A file that cannot be written is a TrainError (one line), not a traceback."""
    try:
        yield
    except OSError as err:
        raise _write_error(err) from None


def _diverged_hint(c: TrainConfig) -> str:
    hint = f"try a smaller --lr than {c.lr}"
    if c.weight_decay:
        hint += f" or a smaller --weight-decay than {c.weight_decay}"
    return hint


def _graph_files(c: TrainConfig, out: Path) -> List[Path]:
    """The graphviz text and picture of ``--graphviz``."""
    path = out / f"graph_{c.dataset}.svg"
    return [path.with_suffix(".dot"), path]


def _evaluate(model: Any, rows_tr: List[List[float]], y_tr: np.ndarray,
              rows_te: Optional[List[List[float]]], y_te: Optional[np.ndarray],
              loss: str, task: str) -> Dict[str, float]:
    m: Dict[str, float] = {}
    for name, rows, y in (("train", rows_tr, y_tr), ("test", rows_te, y_te)):
        if rows is None:
            continue
        scores = _outputs(model, rows)
        if task == "regression":
            m[f"{name}_mse"] = float(np.mean((scores[:, 0] - y) ** 2))
        else:
            m[f"{name}_acc"] = float(np.mean(_predict(scores, loss) == y))
    return m


def _write_graph(model: Any, F: Any, rows: List[List[float]], y: np.ndarray, c: TrainConfig,
                 task: str, k: int, out: Path, progress: _Progress) -> List[Path]:
    """Graphviz picture of one sample's loss after training (forward + backward)."""
    from . import viz

    outs = [model(rows[0])]
    loss = _batch_loss(F, outs, [y[0].item()], c.loss, task, k)
    model.zero_grad()
    loss.backward()
    dot, path = _graph_files(c, out)
    files = [dot]
    try:
        files.append(viz.render(viz.to_dot(loss, max_nodes=2000,
                                           title=f"{c.dataset}: loss of one sample"), path))
        progress.note(f"wrote {files[0]} and {files[1]}")
    except RuntimeError as err:
        progress.note(f"wrote {files[0]}; no picture: {err}")
    model.zero_grad()
    return files


class _Plots:
    """Decision boundaries (2-D), the fitted curve (sine), curves and the GIF of a run."""

    def __init__(self, c: TrainConfig, out: Path, X: np.ndarray, y: np.ndarray, task: str,
                 k: int, progress: _Progress) -> None:
        self.c, self.out, self.X, self.y, self.task, self.k = c, out, X, y, task, k
        self.progress = progress
        self.files: List[Path] = []
        self.frames: List[Tuple[str, Any]] = []
        from . import plots

        self.plots = plots
        self.kind = ("boundary" if task == "classification" and X.shape[1] == 2
                     else "fit" if task == "regression" else None)
        if self.kind == "boundary":
            self.xs, self.ys, grid = plots.make_grid(X, steps=c.grid)
            self.grid_rows = grid.tolist()
        elif self.kind == "fit":
            self.xs = np.linspace(X.min(), X.max(), 200)
            self.grid_rows = self.xs.reshape(-1, 1).tolist()
        # GIF frames: every epoch up to 60 epochs, else about 60 frames.
        self.gif_every = max(1, math.ceil(c.epochs / 60))

    def _png(self, epoch: int) -> Path:
        what = "decision_boundary" if self.kind == "boundary" else "regression_fit"
        return self.out / f"{what}_epoch_{epoch}_{self.c.dataset}.png"

    def _gif(self) -> Path:
        what = "decision_boundary" if self.kind == "boundary" else "regression_fit"
        return self.out / f"{what}_{self.c.dataset}.gif"

    def _curves(self) -> Path:
        return self.out / f"training_curves_{self.c.dataset}.png"

    def planned(self) -> List[Path]:
        """Every file :meth:`frame` and :meth:`finish` will write (checked before training)."""
        c = self.c
        files = [self._curves()]
        if self.kind is not None:
            files += [self._png(e) for e in range(c.plot_every, c.epochs + 1, c.plot_every)]
            if c.epochs % c.plot_every:
                files.append(self._png(c.epochs))
            if c.gif:
                files.append(self._gif())
        return files

    def _state(self, model: Any) -> Any:
        scores = _outputs(model, self.grid_rows)
        if self.kind == "boundary":
            return _probabilities(scores, self.c.loss).reshape(len(self.ys), len(self.xs), -1)
        return scores[:, 0]

    def frame(self, model: Any, epoch: int, note: str = "") -> None:
        """Called after every epoch (and with 0 before training)."""
        if self.kind is None:
            return
        c = self.c
        last = epoch == c.epochs
        want_png = epoch > 0 and (epoch % c.plot_every == 0 or last)
        want_gif = c.gif and (epoch % self.gif_every == 0 or last)
        if not (want_png or want_gif):
            return
        state = self._state(model)
        title = f"{c.dataset}, epoch {epoch}" + (f": {note}" if note else "")
        if want_gif:
            self.frames.append((title, state))
        if want_png:
            path = self._png(epoch)
            if self.kind == "boundary":
                self.plots.plot_decision_boundary(self.X, self.y, self.xs, self.ys, state, path,
                                                  title=title)
            else:
                self.plots.plot_regression(self.X, self.y, self.xs, state, path, title=title,
                                           truth=np.sin(self.xs))
            self.files.append(path)

    def finish(self, model: Any, history: Dict[str, List[float]]) -> List[Path]:
        c = self.c
        metric = "mse" if self.task == "regression" else "accuracy"
        path = self._curves()
        sizes = "-".join(map(str, [self.X.shape[1]] + c.hidden + [self.k]))
        self.plots.plot_history(history, path, title=f"{c.dataset}: MLP {sizes}, {c.loss} loss, "
                                f"{c.optimizer} lr={c.lr:g}", metric=metric)
        self.files.append(path)
        if c.gif and len(self.frames) > 1:
            path = self._gif()
            if self.kind == "boundary":
                self.plots.save_boundary_gif(self.frames, self.X, self.y, self.xs, self.ys, path)
            else:
                self.plots.save_regression_gif(self.frames, self.X, self.y, self.xs, path,
                                               truth=np.sin(self.xs))
            self.files.append(path)
        self.progress.note(f"wrote {len(self.files)} pictures to {self.out}/")
        return self.files
