"""The ``arenagrad`` console script (also ``python -m arenagrad``).

::

    arenagrad train                      # moons: progress bars, final accuracy, pictures in ./output
    arenagrad train --dataset xor --hidden 16 16 --epochs 100 --lr 0.05 --momentum 0.9
    arenagrad minimize                   # gradient descent on relu((x - y)**3 + exp(y)) + y
    arenagrad minimize --function rosenbrock --method gd momentum lbfgs newton
    arenagrad graph                      # graphviz picture of a small network's graph
    arenagrad train -h                   # every option, with the per-dataset defaults
    arenagrad sweep --lr 0.01 0.1 --hidden 8 16,16 --seeds 3   # 12 runs, sweep.csv and a heatmap
    arenagrad sweep --dataset moons xor --scheduler tcp://HOST:8786   # on a Dask cluster

Each subcommand's flags are made from its config's fields (:mod:`arenagrad.options`);
the work is :func:`arenagrad.train.train`, :func:`arenagrad.sweep.run_sweep` and
:mod:`arenagrad.demos`. Bad arguments get
one line on stderr (``arenagrad train: error: ...``) and exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any, Callable, Dict, NamedTuple, NoReturn, Optional, Sequence, Tuple

from .demos import GraphConfig, MinimizeConfig, run_graph, run_minimize
from .options import OptionError, add_options, from_args
from .sweep import SweepConfig, run_sweep
from .train import TrainConfig, train
from .training.datasets import describe_defaults

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: the message and where to find help, no usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} -h')\n")


def _list_files(files: Sequence[Any], quiet: bool) -> None:
    if not quiet:
        for path in files:
            print(f"  {path}", file=sys.stderr)


def _run_train(config: TrainConfig) -> str:
    """``arenagrad train``: train, list the files written, return the verdict."""
    try:
        result = train(config)
    except MemoryError:
        raise OptionError(
            "ran out of memory; try fewer --samples, smaller --hidden layers or a smaller --batch-size"
        ) from None
    _list_files(result.files, config.quiet)
    return result.summary()


def _run_sweep(config: SweepConfig) -> str:
    """``arenagrad sweep``: train every run, list the files written, return the verdict."""
    result = run_sweep(config)
    _list_files(result.files, config.quiet)
    return result.summary()


class _Command(NamedTuple):
    config: type  # a dataclass of options
    run: Callable[[Any], str]  # does the work, returns the last line
    help: str
    description: str
    epilog: Optional[str] = None


_COMMANDS: Dict[str, _Command] = {
    "train": _Command(
        TrainConfig,
        _run_train,
        "train an MLP on a toy dataset or digits, with pictures",
        "Train an MLP with minibatch gradient descent and draw what it learned: decision boundaries "
        "(every --plot-every epochs and at the end), an animated GIF, loss/accuracy curves, the fitted "
        "curve for sine. Options left out take the dataset's default (table below).",
        describe_defaults(),
    ),
    "sweep": _Command(
        SweepConfig,
        _run_sweep,
        "train every combination of train options, on local processes or a Dask cluster",
        "Train every combination of the train options given several values (--lr 0.01 0.1 --hidden 8 16 "
        "16,16 --seeds 5: 30 runs) and write sweep.csv, one row per run with its options, final loss and "
        "accuracy, time and status; a heatmap of accuracy over the two options that vary most (mean and "
        "spread over seeds); the best run's decision boundary and curves. Runs go to --workers local "
        "processes, or to Dask with --scheduler. A run whose worker dies is run again once (--retries), "
        "then reported failed; Ctrl-C stops and writes the runs finished so far. docs/sweeps.md has more.",
        describe_defaults(),
    ),
    "minimize": _Command(
        MinimizeConfig,
        run_minimize,
        "gradient descent, momentum, L-BFGS or Newton on f(x, y), paths drawn on its contours",
        "Minimise a function of two variables with the engine's exact derivatives and draw each "
        "--method's path over f's contours, with f over the iterations (minimize.png in --out). "
        "The default f, relu((x - y)**3 + exp(y)) + y, has no minimum: once relu switches off, only "
        "the '+ y' term is left and y keeps going down, so gradient descent first kills the cubic term, "
        "then follows the relu's kink downhill. To compare optimisers use --function rosenbrock "
        "--method gd momentum lbfgs newton: plain descent crawls along the curved valley, momentum "
        "overshoots and recovers, L-BFGS and Newton (the compiled graph's exact Hessian) reach (1, 1) "
        "in a few dozen and a handful of steps.",
    ),
    "graph": _Command(
        GraphConfig,
        run_graph,
        "write the graphviz graph of a small network after one forward and backward",
        "Build a small MLP, run one sample forward, take the squared error to a target, call backward, "
        "and write the graph as graphviz text (network_graph.dot) with every node's op, data and grad, "
        "coloured by kind; with graphviz's `dot` program on PATH also the picture (network_graph.png "
        "or .svg).",
    ),
}


def _build() -> Tuple[argparse.ArgumentParser, Dict[str, argparse.ArgumentParser]]:
    """The parser and, by name, the parser of each subcommand."""
    from . import __version__

    parser: argparse.ArgumentParser = _Parser(
        prog="arenagrad",
        description="arenagrad: a scalar autograd engine with its graph in C++. "
        "Train small MLPs, watch gradient descent, draw the graph.",
    )
    parser.add_argument("--version", action="version", version=f"arenagrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(_COMMANDS) + "}", parser_class=_Parser)
    parsers: Dict[str, argparse.ArgumentParser] = {}
    for name, command in _COMMANDS.items():
        # Raw, so the epilog's table keeps its lines; the description is wrapped here instead.
        parsers[name] = sub.add_parser(
            name,
            help=command.help,
            description=textwrap.fill(command.description, 79),
            epilog=command.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_options(parsers[name], command.config)
    return parser, parsers


def build_parser() -> argparse.ArgumentParser:
    """The parser for ``arenagrad`` and its subcommands."""
    return _build()[0]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``arenagrad`` command line; returns the exit status (errors exit with 2)."""
    parser, parsers = _build()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    command = _COMMANDS[args.command]
    try:
        line = command.run(from_args(command.config, args))
    except OptionError as err:
        parsers[args.command].error(str(err))
    except KeyboardInterrupt:
        print("arenagrad: interrupted", file=sys.stderr)
        return 130
    print(line, flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
