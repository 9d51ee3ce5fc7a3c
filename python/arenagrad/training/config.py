"""``TrainConfig``: every setting of ``arenagrad train``, each declared once.

A field's declaration (:func:`~arenagrad.options.option`) holds its default, its help and
its bounds; the CLI's flags are made from it, and :func:`resolve_config` checks a config
made in Python against the same declarations, then fills the dataset's defaults and checks
what needs several settings at once (a loss that fits the dataset, a test split that
leaves samples to train on, the size of the network and of one step's graph).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Optional, Sequence

from .. import optim
from ..nn.activation import ACTIVATIONS
from ..nn.loss import LOSSES
from ..options import OptionError, Range, check_options, option
from .datasets import DATASETS

__all__ = [
    "TrainConfig",
    "TrainError",
    "LIMITS",
    "OPTIMIZERS",
    "LOSSES",
    "ACTIVATIONS",
    "resolve_config",
    "check_mlp",
    "count_parameters",
    "step_bytes",
]

#: What ``train()`` raises for anything the user can fix (a setting, an output it cannot
#: write, a learning rate that diverges): an OptionError, under the trainer's name.
TrainError = OptionError

# What any MLP the CLI builds may be. Beyond these a run cannot fit in memory or finish in
# any reasonable time, so the settings are refused up front (one line from the CLI)
# rather than failing, or swapping, half-way through.
LIMITS: Dict[str, int] = dict(
    width=4096,  # units in one hidden layer (or inputs)
    depth=16,  # hidden layers
    parameters=1_000_000,  # weights and biases of the whole MLP
    step_megabytes=1024,  # estimated graph of one training step (batch x network)
)
WIDTH = Range(int, 1, LIMITS["width"])
# A recorded (compiled) graph keeps the eager graph and its flattened copy: measured 2.6x.
RECORDING_OVERHEAD = 3

#: Every optimizer ``--optimizer`` names: how it is built from the parameters and a config.
OPTIMIZERS: Dict[str, Callable[[List[Any], TrainConfig], optim.Optimizer]] = {
    "sgd": lambda params, c: optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay),
    "adam": lambda params, c: optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay),
}


def per_dataset(help: str, bounds: Optional[Range] = None, **kw: Any) -> Any:
    """An option whose default (None) the dataset's table fills in."""
    return option(None, help, bounds, default_text="per dataset", **kw)


@dataclass
class TrainConfig:
    """Everything ``arenagrad train`` takes; ``None`` means the dataset's default."""

    dataset: str = option("moons", "what to learn", choices=tuple(DATASETS))
    samples: Optional[int] = per_dataset(
        "number of generated samples; digits: the first N of 1797",
        Range(int, 4, 1_000_000),
        metavar="N",
    )
    noise: Optional[float] = per_dataset(
        "noise of the generated data, on the angle for spiral; not for digits",
        Range(float, 0, 10.0),
        metavar="SIGMA",
    )
    hidden: Optional[List[int]] = per_dataset(
        f"hidden layer widths, e.g. --hidden 16 16; {LIMITS['parameters']:,} parameters at most in all",
        WIDTH,
        many=True,
        max_items=LIMITS["depth"],
        metavar="SIZE",
    )
    activation: str = option("relu", "hidden-layer activation", choices=tuple(ACTIVATIONS))
    epochs: Optional[int] = per_dataset(
        "passes over the training set",
        Range(int, 1, 100_000),
        metavar="N",
    )
    lr: Optional[float] = per_dataset(
        "learning rate",
        Range(float, 0, above=True),
        metavar="LR",
    )
    momentum: Optional[float] = option(
        None, "SGD momentum", Range(float, 0, 1, below=True), metavar="M", default_text="0.9"
    )
    weight_decay: float = option(
        0.0, "L2 penalty on the weights through the optimizer", Range(float, 0, 1.0), metavar="L2"
    )
    optimizer: Optional[str] = per_dataset(
        "sgd (with momentum) or adam",
        choices=tuple(OPTIMIZERS),
    )
    batch_size: Optional[int] = per_dataset(
        "minibatch size, all the training samples at most; the graph of one step (batch x "
        f"network) is limited to about {LIMITS['step_megabytes']:,} MB",
        Range(int, 1),
        metavar="B",
    )
    loss: Optional[str] = per_dataset(
        "; ".join(f"{name}: {loss.help}" for name, loss in LOSSES.items()),
        choices=tuple(LOSSES),
    )
    test_split: Optional[float] = per_dataset(
        "fraction of the samples held out for testing; at least one sample must be left to train on",
        Range(float, 0, 1, below=True),
        metavar="F",
    )
    seed: int = option(0, "seed for the data, the weights and the shuffling", Range(int, 0))
    out: str = option("output", "where the pictures go; checked before training", metavar="DIR")
    plot_every: Optional[int] = option(
        None, "draw the decision boundary every N epochs", Range(int, 1), metavar="N", default_text="epochs / 5"
    )
    gif: bool = option(True, "animated GIF of the decision boundary (or fit) over training")
    plots: bool = option(True, "write pictures at all")
    graphviz: bool = option(
        False, "also write the graph of one sample's loss: .dot, and .svg if graphviz's dot is installed"
    )
    compile: bool = option(
        False, "record the training step once and replay it per batch: the same numbers, several times faster"
    )
    quiet: bool = option(False, "no progress bars or notes, only the final line")
    grid: int = option(60, "decision-boundary grid points per side", Range(int, 5, 400), metavar="N")


def count_parameters(sizes: Sequence[int]) -> int:
    """Weights and biases of an MLP with layer sizes ``[inputs, hidden..., outputs]``."""
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


def step_bytes(batch: int, sizes: Sequence[int]) -> int:
    """Rough size of the graph one training step builds: per sample and weighted sum, one
    fused node holding two 8-byte slots per input, plus a few 64-byte nodes per unit."""
    return batch * (16 * count_parameters(sizes) + 200 * sum(sizes[1:]))


def check_mlp(sizes: Sequence[int]) -> None:
    """Refuse an MLP with layer sizes ``[inputs, hidden..., outputs]`` beyond the parameter limit.

    Raises:
        OptionError: it has more than ``LIMITS["parameters"]`` weights and biases.
    """
    params, limit = count_parameters(sizes), LIMITS["parameters"]
    if params > limit:
        raise OptionError(
            f"an MLP {'-'.join(map(str, sizes))} has {params:,} parameters; the limit "
            f"is {limit:,} (use narrower or fewer hidden layers)"
        )


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise TrainError(message)


def resolve_config(config: TrainConfig) -> TrainConfig:
    """Check every setting, fill the ``None`` ones from the dataset's defaults, and check
    the settings that depend on each other.

    Raises:
        TrainError: a setting outside its declaration (an unknown dataset, loss, optimizer
            or activation, a number out of bounds), noise for digits, a loss that does not
            fit the dataset, a test split that leaves nothing to train on, a network or a
            step graph beyond :data:`LIMITS`.
    """
    check_options(config)
    d = DATASETS[config.dataset]
    c = replace(config, **{k: v for k, v in d.defaults.items() if getattr(config, k) is None})
    c.hidden = list(c.hidden)
    if c.plot_every is None:
        c.plot_every = max(1, c.epochs // 5)

    if d.size is not None:  # a fixed dataset: its own samples, no noise
        _need(
            c.samples is None or c.samples <= d.size,
            f"{d.name} has {d.size} samples: samples must be at most {d.size}, got {c.samples}",
        )
        _need(c.noise is None, f"{d.name} is a fixed dataset: noise does not apply to it")
    n = c.samples or d.size
    n_test = math.ceil(c.test_split * n) if c.test_split else 0  # as data.train_test_split
    _need(n_test < n, f"a test split of {c.test_split:g} holds out {n_test} of {n} samples, leaving none to train on")

    criterion = LOSSES[c.loss]
    if d.classes is None:
        fitting = [name for name, loss in LOSSES.items() if loss.takes_numbers]
        _need(
            criterion.takes_numbers,
            f"{d.name} is a regression dataset: only --loss {' or '.join(fitting)} applies, not {c.loss}",
        )
    else:
        fitting = [name for name, loss in LOSSES.items() if loss.accepts(d.classes)]
        _need(
            criterion.accepts(d.classes),
            f"{c.loss} loss is for two classes; {d.name} has {d.classes} (use {' or '.join(fitting)})",
        )

    # Sizes, from the settings alone: refused before any data or weights are made.
    sizes = [d.features, *c.hidden, criterion.num_outputs(d.classes)]
    check_mlp(sizes)
    batch = min(c.batch_size, n - n_test)  # a batch larger than the training set is all of it
    mb = step_bytes(batch, sizes) * (RECORDING_OVERHEAD if c.compile else 1) / 2**20
    _need(
        mb <= LIMITS["step_megabytes"],
        f"a{' compiled' if c.compile else ''} training step on a batch of {batch} with an MLP "
        f"{'-'.join(map(str, sizes))} would build a graph of about {mb:,.0f} MB; the limit is "
        f"{LIMITS['step_megabytes']:,} MB (use a smaller batch size or smaller hidden layers)",
    )
    return c
