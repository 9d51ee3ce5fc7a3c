"""Command options declared once, as dataclass fields, and the argparse flags made from them.

A command's settings are a dataclass whose fields are :func:`option`\\ s: the name, the
default, the help and the bounds of each are written there and nowhere else. The CLI
adds one flag per field (:func:`add_options`), the Python API checks a config made by
hand against the same bounds (:func:`check_options`), and ``-h`` shows them::

    @dataclass
    class MinimizeConfig:
        lr: float = option(0.05, "step size", Range(float, 0, above=True))
        steps: int = option(200, "iterations", Range(int, 1, 1_000_000))

    parser = argparse.ArgumentParser()
    add_options(parser, MinimizeConfig)      # --lr LR, --steps STEPS
    config = from_args(MinimizeConfig, parser.parse_args())

A field named ``batch_size`` is the flag ``--batch-size``; a bool that defaults to true is
``--gif/--no-gif``, one that defaults to false a plain switch (``--quiet``).

A field made by :func:`several` holds several values of each option of another config, a
sweep's grid: its flags are made from that config's declarations, each taking one or more
values (``--lr 0.01 0.1``; a list option's values are comma-separated, ``--hidden 16 8,8``),
and it holds ``{"lr": [0.01, 0.1], "hidden": [[16], [8, 8]]}`` (only the options given)::

    @dataclass
    class SweepConfig:
        runs: Dict[str, List[Any]] = several(TrainConfig, "each run's options", skip=("out",))
"""

from __future__ import annotations

import argparse
import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, List, Optional, Sequence, Tuple, Type, TypeVar

import numpy as np

__all__ = [
    "OptionError",
    "Range",
    "Option",
    "option",
    "Several",
    "several",
    "check_options",
    "add_options",
    "from_args",
]

C = TypeVar("C")


class OptionError(ValueError):
    """A setting a command cannot use (a value, a combination, an output it cannot write,
    a learning rate that diverges); the message is one line meant for the user."""


@dataclass(frozen=True)
class Range:
    """The numbers an option takes: integers or finite floats between optional bounds.

    Args:
        kind: ``int`` or ``float``.
        low, high: the bounds (``None``: unbounded on that side).
        above: ``low`` itself is excluded (``x > low`` rather than ``x >= low``).
        below: ``high`` itself is excluded.
    """

    kind: type
    low: Optional[float] = None
    high: Optional[float] = None
    above: bool = False
    below: bool = False

    def __contains__(self, value: Any) -> bool:
        numbers = (int, np.integer) if self.kind is int else (int, float, np.integer, np.floating)
        if isinstance(value, bool) or not isinstance(value, numbers):
            return False
        if isinstance(value, (float, np.floating)) and not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.above else value < self.low):
            return False
        return self.high is None or bool(value < self.high if self.below else value <= self.high)

    def describe(self) -> str:
        """What a value must be, in words: ``"an integer from 1 to 16"``, ``"a positive number"``."""
        lo, hi = self.low, self.high
        if self.kind is int:
            if hi is not None:
                return f"an integer from {lo} to {hi}"
            return {0: "a non-negative integer", 1: "a positive integer"}.get(int(lo or 0), f"an integer >= {lo}")
        if lo is None and hi is None:
            return "a number"
        if hi is None:
            return f"a {'positive' if self.above else 'non-negative'} number" if lo == 0 else f"a number >= {lo:g}"
        return f"a number in {'(' if self.above else '['}{lo:g}, {hi:g}{')' if self.below else ']'}"

    def parse(self, text: str) -> Any:
        """``text`` as a number in the range, for argparse's ``type=``.

        Raises:
            argparse.ArgumentTypeError: ``'x' is not <describe()>``.
        """
        try:
            value = self.kind(text)
        except ValueError:
            value = None
        if value is None or value not in self:
            raise argparse.ArgumentTypeError(f"{text!r} is not {self.describe()}")
        return value


@dataclass(frozen=True)
class Option:
    """What a field of a command's config says about itself (see :func:`option`)."""

    help: str
    bounds: Optional[Range] = None
    choices: Optional[Sequence[str]] = None
    many: bool = False
    max_items: Optional[int] = None
    metavar: Optional[str] = None
    default_text: Optional[str] = None


def option(
    default: Any,
    help: str,
    bounds: Optional[Range] = None,
    *,
    choices: Optional[Sequence[str]] = None,
    many: bool = False,
    max_items: Optional[int] = None,
    metavar: Optional[str] = None,
    default_text: Optional[str] = None,
) -> Any:
    """A dataclass field that is a command-line option.

    Args:
        default: the value when the option is left out (a list is copied per config).
        help: what the option does, for ``-h``; the bounds and default are added to it.
        bounds: the numbers it takes (a :class:`Range`); ``None`` for a string or a bool.
        choices: the strings it takes.
        many: a list of values (``--hidden 16 16``), each within ``bounds``.
        max_items: at most this many values (with ``many``).
        metavar: the value's name in ``-h`` (default: the flag's name in capitals).
        default_text: the default as ``-h`` shows it, when ``default`` does not say it
            (``None`` standing for "the dataset's default", say).
    """
    meta = {
        "option": Option(
            help, bounds, tuple(choices) if choices is not None else None, many, max_items, metavar, default_text
        )
    }
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Several:
    """What a :func:`several` field says about itself: whose options it holds, and which not."""

    config: type
    help: str
    skip: Tuple[str, ...] = ()

    def fields(self) -> List[Any]:
        """The option fields of ``config`` it holds, in declaration order."""
        return [f for f in _options(self.config) if f.name not in self.skip]


def several(config: type, help: str, *, skip: Sequence[str] = ()) -> Any:
    """A dataclass field holding several values of each option of the dataclass ``config``
    (a sweep's grid), as ``{name: [values]}`` for the options given.

    Args:
        config: the dataclass whose options it holds.
        help: the title of their group in ``-h``.
        skip: options of ``config`` it does not hold (the sweep sets them itself).
    """
    return field(default_factory=dict, metadata={"several": Several(config, help, tuple(skip))})


def _options(cls: Any) -> Sequence[Any]:
    return [f for f in fields(cls) if "option" in f.metadata]


def _check(f: Any, value: Any) -> None:
    """Check one value of the option field ``f``; ``None`` passes where it is the default.

    Raises:
        OptionError: it does not fit, named by its field.
    """
    opt: Option = f.metadata["option"]
    if value is None and f.default is None:
        return
    if opt.choices is not None:
        for item in value if opt.many and isinstance(value, (list, tuple)) else [value]:
            if item not in opt.choices:
                raise OptionError(f"unknown {f.name} {item!r} (choose from {', '.join(opt.choices)})")
    if opt.many:
        if not isinstance(value, (list, tuple)) or not value:
            raise OptionError(f"{f.name} must be a list of values, got {value!r}")
        if opt.max_items is not None and len(value) > opt.max_items:
            raise OptionError(f"at most {opt.max_items} {f.name} values, got {len(value)}")
        if opt.bounds is not None and not all(v in opt.bounds for v in value):
            raise OptionError(f"each {f.name} value must be {opt.bounds.describe()}, got {list(value)}")
    elif opt.bounds is not None and value not in opt.bounds:
        raise OptionError(f"{f.name} must be {opt.bounds.describe()}, got {value!r}")
    elif isinstance(f.default, bool) and not isinstance(value, bool):
        raise OptionError(f"{f.name} must be True or False, got {value!r}")
    elif isinstance(f.default, str) and opt.choices is None and not isinstance(value, str):
        raise OptionError(f"{f.name} must be a string, got {value!r}")


def _check_several(f: Any, grid: Any) -> None:
    """Check a :func:`several` field: known options, each with a non-empty list of values."""
    held = {g.name: g for g in f.metadata["several"].fields()}
    if not isinstance(grid, dict):
        raise OptionError(f"{f.name} must be a dict of option values, got {grid!r}")
    for name, values in grid.items():
        if name not in held:
            raise OptionError(f"{f.name}: unknown option {name!r} (choose from {', '.join(held)})")
        if not isinstance(values, (list, tuple)) or not values:
            raise OptionError(f"{f.name}: {name} must be a non-empty list of values, got {values!r}")
        for value in values:
            _check(held[name], value)


def check_options(config: Any) -> None:
    """Check every option of ``config`` against its declaration; ``None`` passes where it
    is the declared default. A :func:`several` field's values are each checked against the
    declaration of their option.

    Raises:
        OptionError: the first value that does not fit, named by its field.
    """
    for f in fields(config):
        if "option" in f.metadata:
            _check(f, getattr(config, f.name))
        elif "several" in f.metadata:
            _check_several(f, getattr(config, f.name))


def _default_of(f: Any) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


def _help(opt: Option, default: Any) -> str:
    """The help text with the bounds and the default, both from the declaration."""
    notes = []
    if opt.bounds is not None:
        notes.append(
            ("each " if opt.many else "")
            + opt.bounds.describe()
            + (f", at most {opt.max_items} of them" if opt.max_items else "")
        )
    if opt.default_text is not None:
        notes.append(f"default: {opt.default_text}")
    elif default is True:
        notes.append("default: on")
    elif default is not None and default is not False:
        shown = " ".join(map(str, default)) if isinstance(default, list) else str(default)
        notes.append(f"default: {shown}")
    # argparse expands %-formats in help: a literal % must be doubled.
    return (opt.help + (f" ({'; '.join(notes)})" if notes else "")).replace("%", "%%")


def _flag(f: Any) -> str:
    return "--" + f.name.replace("_", "-")


def _parse_list(opt: Option) -> Callable[[str], List[Any]]:
    """argparse's ``type=`` for one comma-separated value of a list option (``16,16``)."""

    def parse(text: str) -> List[Any]:
        items = text.split(",")
        if opt.max_items is not None and len(items) > opt.max_items:
            raise argparse.ArgumentTypeError(f"{text!r} has more than {opt.max_items} values")
        return [opt.bounds.parse(item) if opt.bounds is not None else item for item in items]

    return parse


def _argument(f: Any, several: bool) -> dict:
    """argparse's keywords for the option field ``f``: its value, or (``several``) one or
    more values, each a run's; left out, a several-valued flag is ``None``."""
    opt: Option = f.metadata["option"]
    default = _default_of(f)
    kwargs: dict = dict(dest=f.name, default=None if several else default, help=_help(opt, default))
    if isinstance(default, bool):  # a switch; with several values, one setting for every run
        kwargs["action"] = argparse.BooleanOptionalAction if default or several else "store_true"
        return kwargs
    kwargs["metavar"] = opt.metavar
    if opt.choices is not None:
        kwargs["choices"] = opt.choices
    if opt.many and several:
        kwargs["type"] = _parse_list(opt)
        kwargs["help"] += "; in a sweep each value is one run's list, commas between its items (16,16)"
    elif opt.bounds is not None:
        kwargs["type"] = opt.bounds.parse
    if opt.many or several:
        kwargs["nargs"] = "+"
    return kwargs


def add_options(parser: argparse.ArgumentParser, cls: Any) -> None:
    """Add one flag per option field of the dataclass ``cls`` to ``parser``, and for each
    :func:`several` field a group of flags, one per option it holds, each taking one or
    more values."""
    for f in fields(cls):
        if "option" in f.metadata:
            parser.add_argument(_flag(f), **_argument(f, several=False))
        elif "several" in f.metadata:
            group = parser.add_argument_group(f.metadata["several"].help)
            for held in f.metadata["several"].fields():
                group.add_argument(_flag(held), **_argument(held, several=True))


def _value_of(f: Any, args: argparse.Namespace) -> Any:
    if "option" in f.metadata:
        return getattr(args, f.name)
    given = {g.name: getattr(args, g.name) for g in f.metadata["several"].fields()}
    return {name: value if isinstance(value, list) else [value] for name, value in given.items() if value is not None}


def from_args(cls: Type[C], args: argparse.Namespace) -> C:
    """The config ``cls`` holding the parsed values of its options (and, for a :func:`several`
    field, ``{name: [values]}`` of the options given)."""
    declared = [f for f in fields(cls) if {"option", "several"} & set(f.metadata)]  # type: ignore[arg-type]
    return cls(**{f.name: _value_of(f, args) for f in declared})
