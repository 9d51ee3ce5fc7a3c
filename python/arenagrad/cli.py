"""The ``arenagrad`` console script (also ``python -m arenagrad``).

::

    arenagrad train                      # moons: progress bars, final accuracy, pictures in ./output
    arenagrad train --dataset xor --hidden 16 16 --epochs 100 --lr 0.05 --momentum 0.9
    arenagrad minimize                   # gradient descent on relu((x - y)**3 + exp(y)) + y
    arenagrad graph                      # graphviz picture of a small network's graph
    arenagrad train -h                   # every option, with the per-dataset defaults

Bad arguments get one line on stderr (``arenagrad train: error: ...``) and exit status 2;
no traceback.
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional, Sequence

from .train import ACTIVATIONS, DATASET_DEFAULTS, DATASETS, LIMITS, LOSSES, OPTIMIZERS

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: the message and where to find help, no usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} -h')\n")


# ---------------------------------------------------------------- argument types


def _number_type(kind: Callable[[str], Any], test: Callable[[Any], bool], what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if isinstance(value, float) and not math.isfinite(value) or not test(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


positive_int = _number_type(int, lambda v: v > 0, "a positive integer")
nonnegative_int = _number_type(int, lambda v: v >= 0, "a non-negative integer")
positive_float = _number_type(float, lambda v: v > 0, "a positive number")
nonnegative_float = _number_type(float, lambda v: v >= 0, "a non-negative number")
unit_float = _number_type(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
any_float = _number_type(float, lambda v: True, "a number")


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    return _number_type(int, lambda v: lo <= v <= hi, f"an integer from {lo} to {hi}")


def _float_range(lo: float, hi: float) -> Callable[[str], float]:
    return _number_type(float, lambda v: lo <= v <= hi, f"a number in [{lo:g}, {hi:g}]")


_L = LIMITS
samples_int = _int_range(1, _L["samples"])
width_int = _int_range(1, _L["width"])
epochs_int = _int_range(1, _L["epochs"])
noise_float = _float_range(0.0, _L["noise"])
decay_float = _float_range(0.0, _L["weight_decay"])
steps_int = _int_range(1, 1_000_000)
max_nodes_int = _int_range(1, 10_000)
dpi_int = _int_range(1, 1200)


def _defaults_table() -> str:
    lines = ["per-dataset defaults (used for every option left out):"]
    head = f"  {'dataset':<8} {'samples':>7} {'noise':>5}  {'hidden':<7} {'epochs':>6} {'lr':>5}  {'optimizer':<9} {'batch':>5}  {'loss':<13} test"
    lines.append(head)
    for name in DATASETS:
        d = DATASET_DEFAULTS[name]
        samples = "1797" if d["samples"] is None else str(d["samples"])
        noise = "-" if d["noise"] is None else f"{d['noise']:g}"
        lines.append(
            f"  {name:<8} {samples:>7} {noise:>5}  {' '.join(map(str, d['hidden'])):<7} "
            f"{d['epochs']:>6} {d['lr']:>5g}  {d['optimizer']:<9} {d['batch_size']:>5}  "
            f"{d['loss']:<13} {d['test_split']:g}"
        )
    lines.append("  sgd uses momentum 0.9 unless --momentum is given; adam ignores --momentum.")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The parser for ``arenagrad`` and its subcommands."""
    parser = _Parser(
        prog="arenagrad",
        description="arenagrad: a scalar autograd engine with its graph in C++. "
        "Train small MLPs, watch gradient descent, draw the graph.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"arenagrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{train,minimize,graph}", parser_class=_Parser)

    # ------------------------------------------------------------------ train
    t = sub.add_parser(
        "train",
        help="train an MLP on a toy dataset or digits, with pictures",
        description=textwrap.fill(
            "Train an MLP with minibatch gradient descent and draw what it learned: "
            "decision boundaries (every --plot-every epochs and at the end), an animated "
            "GIF, loss/accuracy curves, the fitted curve for sine. Options left out take "
            "the dataset's default (table below).", 79),
        epilog=_defaults_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("--dataset", choices=DATASETS, default="moons",
                   help="what to learn (default: moons)")
    t.add_argument("--samples", type=samples_int, metavar="N",
                   help=f"number of generated samples, 4 to {_L['samples']:,} (digits: use the "
                   "first N of 1797)")
    t.add_argument("--noise", type=noise_float, metavar="SIGMA",
                   help=f"noise of the generated data, 0 to {_L['noise']:g} (spiral: on the angle; "
                   "not for digits)")
    t.add_argument("--hidden", type=width_int, nargs="+", metavar="SIZE",
                   help=f"hidden layer widths, e.g. --hidden 16 16: at most {_L['depth']} layers "
                   f"of at most {_L['width']} units, {_L['parameters']:,} parameters in all")
    t.add_argument("--activation", choices=ACTIVATIONS, default="relu",
                   help="hidden-layer activation (default: relu)")
    t.add_argument("--epochs", type=epochs_int, metavar="N",
                   help=f"passes over the training set (at most {_L['epochs']:,})")
    t.add_argument("--lr", type=positive_float, metavar="LR", help="learning rate")
    t.add_argument("--momentum", type=unit_float, metavar="M",
                   help="SGD momentum in [0, 1) (default: 0.9)")
    t.add_argument("--weight-decay", type=decay_float, default=0.0, metavar="L2",
                   help="L2 penalty on the weights through the optimizer, 0 to 1 (default: 0)")
    t.add_argument("--optimizer", choices=OPTIMIZERS, help="sgd (with momentum) or adam")
    t.add_argument("--batch-size", type=positive_int, metavar="B",
                   help="minibatch size (more than the training samples: all of them); the "
                   f"graph of one step (batch x network) is limited to about "
                   f"{_L['step_megabytes']:,} MB")
    t.add_argument("--loss", choices=LOSSES,
                   help="cross-entropy on the logits; mse = squared error of the softmax "
                   "probabilities against one-hot targets (the seed trainer's loss); hinge = "
                   "micrograd's max-margin loss on one score (two classes only). sine always "
                   "uses mse on the output")
    t.add_argument("--test-split", type=unit_float, metavar="F",
                   help="fraction of the samples held out for testing (digits: 0.2, others: 0); "
                   "at least one sample must be left to train on")
    t.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seed for the data, the weights and the shuffling (default: 0)")
    t.add_argument("--out", default="output", metavar="DIR",
                   help="where the pictures go (default: ./output); checked before training")
    t.add_argument("--plot-every", type=positive_int, metavar="N",
                   help="draw the decision boundary every N epochs (default: epochs / 5)")
    t.add_argument("--gif", action=argparse.BooleanOptionalAction, default=True,
                   help="animated GIF of the decision boundary (or fit) over training "
                   "(default: on)")
    t.add_argument("--plots", action=argparse.BooleanOptionalAction, default=True,
                   help="write pictures at all (default: on)")
    t.add_argument("--grid", type=positive_int, default=60, metavar="N",
                   help="decision-boundary grid points per side (default: 60)")
    t.add_argument("--graphviz", action="store_true",
                   help="also write the graph of one sample's loss (.dot, and .svg if graphviz's "
                   "dot is installed)")
    t.add_argument("--compile", action="store_true",
                   help="record the training step once and replay it per batch (same numbers, "
                        "several times faster)")
    t.add_argument("--quiet", action="store_true",
                   help="no progress bars or notes, only the final line")
    t.set_defaults(run=_run_train)

    # --------------------------------------------------------------- minimize
    m = sub.add_parser(
        "minimize",
        help="gradient descent on f(x, y) = relu((x - y)**3 + exp(y)) + y",
        description="Minimise f(x, y) = relu((x - y)**3 + exp(y)) + y by plain gradient "
        "descent with the engine's gradients, print the path and plot f over the "
        "iterations (minimize.png in --out). f has no minimum: once relu switches off, "
        "only the '+ y' term is left and y keeps going down, so the plot shows how the "
        "descent first kills the cubic term, then follows the relu's kink downhill.",
    )
    m.add_argument("--x", type=any_float, default=1.0, help="start x (default: 1.0)")
    m.add_argument("--y", type=any_float, default=2.0, help="start y (default: 2.0)")
    m.add_argument("--lr", type=positive_float, default=0.05, help="step size (default: 0.05)")
    m.add_argument("--steps", type=steps_int, default=200,
                   help="iterations, at most 1,000,000 (default: 200)")
    m.add_argument("--out", default="output", metavar="DIR",
                   help="where minimize.png goes (default: ./output)")
    m.add_argument("--no-plot", dest="plot", action="store_false", help="print only")
    m.add_argument("--quiet", action="store_true", help="only the final line")
    m.set_defaults(run=_run_minimize)

    # ------------------------------------------------------------------ graph
    g = sub.add_parser(
        "graph",
        help="write the graphviz graph of a small network after one forward and backward",
        description="Build a small MLP, run one sample forward, take the squared error to a "
        "target, call backward, and write the graph as graphviz text (network_graph.dot) "
        "with every node's op, data and grad, coloured by kind; with graphviz's `dot` "
        "program on PATH also the picture (network_graph.png or .svg).",
    )
    g.add_argument("--inputs", type=width_int, default=2, metavar="N",
                   help=f"input features, at most {_L['width']} (default: 2)")
    g.add_argument("--hidden", type=width_int, nargs="+", default=[3], metavar="SIZE",
                   help=f"hidden layer widths (default: 3): at most {_L['depth']} layers of at most "
                   f"{_L['width']} units, {_L['parameters']:,} parameters in all")
    g.add_argument("--activation", choices=ACTIVATIONS, default="relu",
                   help="hidden-layer activation (default: relu)")
    g.add_argument("--format", choices=("png", "svg", "pdf"), default="png",
                   help="picture format when dot is installed (default: png)")
    g.add_argument("--max-nodes", type=max_nodes_int, default=500, metavar="N",
                   help="draw at most N nodes (at most 10,000), summarise the rest (default: 500)")
    g.add_argument("--dpi", type=dpi_int, default=72,
                   help="resolution of a PNG picture, at most 1200 (default: 72)")
    g.add_argument("--seed", type=nonnegative_int, default=0, help="weight seed (default: 0)")
    g.add_argument("--out", default="output", metavar="DIR",
                   help="where the files go (default: ./output)")
    g.set_defaults(run=_run_graph)
    return parser


# ------------------------------------------------------------------- commands


def _out_dir(parser: argparse.ArgumentParser, out: str, *names: str) -> Path:
    """Create ``out`` and check that it and the files ``names`` in it can be written."""
    from .train import TrainError, _prepare_out, check_writable

    try:
        path = _prepare_out(out)
        check_writable([path / name for name in names])
        return path
    except TrainError as err:
        parser.error(str(err))


def _run_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .train import TrainConfig, TrainError, train

    config = TrainConfig(
        dataset=args.dataset, samples=args.samples, noise=args.noise, hidden=args.hidden,
        activation=args.activation, epochs=args.epochs, lr=args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, optimizer=args.optimizer, batch_size=args.batch_size,
        loss=args.loss, test_split=args.test_split, seed=args.seed, out=args.out,
        plot_every=args.plot_every, gif=args.gif, plots=args.plots, graphviz=args.graphviz,
        compile=args.compile, quiet=args.quiet, grid=args.grid,
    )
    try:
        result = train(config)
    except TrainError as err:
        parser.error(str(err))
    except MemoryError:
        parser.error("ran out of memory; try fewer --samples, smaller --hidden layers or a "
                     "smaller --batch-size")
    if not args.quiet:
        for path in result.files:
            print(f"  {path}", file=sys.stderr)
    print(result.summary(), flush=True)
    return 0


def minimize(x0: float = 1.0, y0: float = 2.0, lr: float = 0.05, steps: int = 200) -> dict:
    """Gradient descent on ``relu((x - y)**3 + exp(y)) + y``; returns the path and values."""
    from ._core import Value

    x, y = Value(x0), Value(y0)
    xs, ys, fs = [], [], []
    for _ in range(steps + 1):
        f = ((x - y) ** 3 + y.exp()).relu() + y
        xs.append(x.data)
        ys.append(y.data)
        fs.append(f.data)
        if len(fs) > steps:
            break
        x.grad = y.grad = 0.0
        f.backward()
        x.data -= lr * x.grad
        y.data -= lr * y.grad
    return {"x": xs, "y": ys, "f": fs}


def _run_minimize(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    out = _out_dir(parser, args.out, "minimize.png") if args.plot else None
    try:
        run = minimize(args.x, args.y, args.lr, args.steps)
    except (OverflowError, ValueError, ZeroDivisionError) as err:
        parser.error(f"the descent left the domain of f ({err}); try a smaller --lr")
    xs, ys, fs = run["x"], run["y"], run["f"]
    if not args.quiet:
        every = max(1, args.steps // 10)
        for i in range(0, len(fs), every):
            print(f"step {i:>5}: x = {xs[i]: .4f}  y = {ys[i]: .4f}  f = {fs[i]: .4f}", file=sys.stderr)
    if out is not None:
        from . import plots

        try:
            path = plots.plot_minimize(fs, out / "minimize.png", xs=xs, ys=ys,
                                       title="gradient descent on relu((x - y)^3 + exp(y)) + y")
        except OSError as err:
            parser.error(f"cannot write {str(out / 'minimize.png')!r}: {err.strerror or err}")
        if not args.quiet:
            print(f"  {path}", file=sys.stderr)
    print(f"minimize: f went from {fs[0]:.4f} to {fs[-1]:.4f} in {args.steps} steps "
          f"(x = {xs[-1]:.4f}, y = {ys[-1]:.4f})", flush=True)
    return 0


def _run_graph(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from . import nn, viz
    from ._core import Value
    from .train import count_parameters

    layers = [args.inputs, *args.hidden, 1]
    if len(args.hidden) > _L["depth"]:
        parser.error(f"argument --hidden: at most {_L['depth']} hidden layers, got {len(args.hidden)}")
    if count_parameters(layers) > _L["parameters"]:
        parser.error(f"an MLP {'-'.join(map(str, layers))} has {count_parameters(layers):,} "
                     f"parameters; the limit is {_L['parameters']:,}")
    out = _out_dir(parser, args.out, "network_graph.dot", f"network_graph.{args.format}")
    model = nn.MLP(args.inputs, args.hidden + [1], activation=args.activation, seed=args.seed)
    sample = [Value(0.5 - 0.25 * i, requires_grad=False) for i in range(args.inputs)]
    loss = (model(sample) - 1.0) ** 2
    loss.backward()
    sizes = "-".join(map(str, [args.inputs] + args.hidden + [1]))
    text = viz.to_dot(loss, max_nodes=args.max_nodes,
                      title=f"MLP {sizes}: (model(x) - 1)^2 after one backward")
    picture = out / f"network_graph.{args.format}"
    try:
        path = viz.render(text, picture, dpi=args.dpi)
        print(f"graph: wrote {picture.with_suffix('.dot')} and {path}", flush=True)
    except RuntimeError as err:
        print(f"graph: wrote {picture.with_suffix('.dot')}; {err}", flush=True)
    except OSError as err:
        parser.error(f"cannot write {str(err.filename or picture)!r}: {err.strerror or err}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``arenagrad`` command line; returns the exit status (errors exit with 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    sub = parser._subparsers._group_actions[0].choices[args.command]  # type: ignore[union-attr]
    try:
        return args.run(args, sub)
    except KeyboardInterrupt:
        print("arenagrad: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
