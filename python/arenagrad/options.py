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
"""

from __future__ import annotations

import argparse
import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Optional, Sequence, Type, TypeVar

import numpy as np

__all__ = ["OptionError", "Range", "Option", "option", "check_options", "add_options", "from_args"]

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


def _options(cls: Any) -> Sequence[Any]:
    return [f for f in fields(cls) if "option" in f.metadata]


def check_options(config: Any) -> None:
    """Check every option of ``config`` against its declaration; ``None`` passes where it
    is the declared default.

    Raises:
        OptionError: the first value that does not fit, named by its field.
    """
    for f in _options(config):
        opt: Option = f.metadata["option"]
        value = getattr(config, f.name)
        if value is None and f.default is None:
            continue
        if opt.choices is not None and value not in opt.choices:
            raise OptionError(f"unknown {f.name} {value!r} (choose from {', '.join(opt.choices)})")
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


def add_options(parser: argparse.ArgumentParser, cls: Any) -> None:
    """Add one flag per option field of the dataclass ``cls`` to ``parser``."""
    for f in _options(cls):
        opt: Option = f.metadata["option"]
        flag = "--" + f.name.replace("_", "-")
        default = _default_of(f)
        kwargs: dict = dict(dest=f.name, default=default, help=_help(opt, default))
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction if default else "store_true"
        else:
            kwargs["metavar"] = opt.metavar
            if opt.choices is not None:
                kwargs["choices"] = opt.choices
            if opt.bounds is not None:
                kwargs["type"] = opt.bounds.parse
            if opt.many:
                kwargs["nargs"] = "+"
        parser.add_argument(flag, **kwargs)


def from_args(cls: Type[C], args: argparse.Namespace) -> C:
    """The config ``cls`` holding the parsed values of its options."""
    return cls(**{f.name: getattr(args, f.name) for f in _options(cls)})
