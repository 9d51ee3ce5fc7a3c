"""Options declared once (``arenagrad.options``): the flags, defaults, help and bounds of the
CLI are the config's declarations, and the Python API checks the same bounds."""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import asdict, fields

import pytest
from arenagrad import cli
from arenagrad.demos import GraphConfig, MinimizeConfig
from arenagrad.options import OptionError, Range, check_options
from arenagrad.train import TrainConfig, TrainError, resolve_config

COMMANDS = {"train": TrainConfig, "minimize": MinimizeConfig, "graph": GraphConfig}


def flag(name):
    return "--" + name.replace("_", "-")


def help_text(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "-h"])
    assert exc.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere


def parse_error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_is_a_flag_with_its_help_and_default(command, capsys):
    config = COMMANDS[command]
    text = help_text(command, capsys)
    for f in fields(config):
        opt = f.metadata["option"]
        assert flag(f.name) in text, f.name
        assert " ".join(opt.help.split()) in text, f.name
        default = getattr(config(), f.name)
        if isinstance(default, bool):
            assert (f"--no-{f.name}" in text) == default, f.name  # --gif/--no-gif; --quiet alone
        elif default is not None:
            shown = " ".join(map(str, default)) if isinstance(default, list) else str(default)
            assert f"default: {shown}" in text, f.name


@pytest.mark.parametrize("command", COMMANDS)
def test_no_flags_parse_to_the_config_defaults(command):
    args = cli.build_parser().parse_args([command])
    config = COMMANDS[command]
    assert {f.name: getattr(args, f.name) for f in fields(config)} == asdict(config())


def test_flags_reach_the_config(capsys):
    args = cli.build_parser().parse_args(
        ["train", "--batch-size", "7", "--hidden", "3", "4", "--no-gif", "--quiet", "--loss", "hinge", "--lr", "0.5"]
    )
    assert (args.batch_size, args.hidden, args.gif, args.quiet, args.loss, args.lr) == (
        7,
        [3, 4],
        False,
        True,
        "hinge",
        0.5,
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--epochs", "0"], "argument --epochs: '0' is not an integer from 1 to 100000"),
        (["train", "--epochs", "2.5"], "argument --epochs: '2.5' is not an integer from 1 to 100000"),
        (["train", "--lr", "0"], "argument --lr: '0' is not a positive number"),
        (["train", "--momentum", "1"], "argument --momentum: '1' is not a number in [0, 1)"),
        (["train", "--test-split", "-0.1"], "argument --test-split: '-0.1' is not a number in [0, 1)"),
        (["train", "--weight-decay", "nan"], "argument --weight-decay: 'nan' is not a number in [0, 1]"),
        (["train", "--seed", "-1"], "argument --seed: '-1' is not a non-negative integer"),
        (["train", "--batch-size", "0"], "argument --batch-size: '0' is not a positive integer"),
        (["train", "--grid", "4"], "argument --grid: '4' is not an integer from 5 to 400"),
        (["train", "--hidden", "8", "4097"], "argument --hidden: '4097' is not an integer from 1 to 4096"),
        (["train", "--loss", "regression-mse"], "argument --loss: invalid choice: 'regression-mse'"),
        (["minimize", "--x", "inf"], "argument --x: 'inf' is not a number"),
        (["graph", "--dpi", "1201"], "argument --dpi: '1201' is not an integer from 1 to 1200"),
    ],
)
def test_a_value_out_of_bounds_is_one_clear_line(argv, message, capsys):
    err = parse_error(argv, capsys)
    assert err.startswith(f"arenagrad {argv[0]}: error: {message}")
    assert err.endswith(f"(see 'arenagrad {argv[0]} -h')")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_bounded_option_refuses_the_numbers_beyond_its_bounds(command, capsys):
    for f in fields(COMMANDS[command]):
        r = f.metadata["option"].bounds
        if r is None:
            continue
        outside = []
        if r.low is not None:
            outside.append(r.low if r.above else r.low - 1)
        if r.high is not None:
            outside.append(r.high if r.below else r.high + 1)
        for value in outside or ["nan"]:
            err = parse_error([command, flag(f.name), str(value)], capsys)
            assert f"argument {flag(f.name)}: '{value}' is not " in err, err


@pytest.mark.parametrize(
    "kind, low, high, above, below, inside, outside, words",
    [
        (int, 1, 16, False, False, [1, 16], [0, 17, 2.0, True, "3"], "an integer from 1 to 16"),
        (int, 0, None, False, False, [0, 10**30], [-1, 1.5], "a non-negative integer"),
        (int, 1, None, False, False, [1], [0], "a positive integer"),
        (float, 0, None, True, False, [1e-300, 3], [0, -1.0, math.inf, math.nan, False], "a positive number"),
        (float, 0, 1, False, True, [0, 0.999], [1, 1.0, -1e-9], "a number in [0, 1)"),
        (float, 0, 10, False, False, [0.0, 10], [10.5, math.inf], "a number in [0, 10]"),
        (float, None, None, False, False, [-1e308, 10**400], [math.nan, -math.inf], "a number"),
    ],
)
def test_range(kind, low, high, above, below, inside, outside, words):
    r = Range(kind, low, high, above=above, below=below)
    assert r.describe() == words
    for v in inside:
        assert v in r, v
    for v in outside:
        assert v not in r, v
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(f"'x' is not {words}")):
        r.parse("x")


def test_the_python_api_checks_the_same_bounds():
    # Each declared bound, from a config made by hand: one line naming the field.
    for kwargs, message in [
        (dict(epochs=0), "epochs must be an integer from 1 to 100000, got 0"),
        (dict(grid=401), "grid must be an integer from 5 to 400, got 401"),
        (dict(momentum=1.0), r"momentum must be a number in \[0, 1\), got 1.0"),
        (dict(dataset="mnist"), "unknown dataset 'mnist' \\(choose from linear, xor, moons"),
        (dict(loss="regression-mse"), "unknown loss 'regression-mse'"),
        (dict(hidden=[]), "hidden must be a list of values"),
        (dict(gif="no"), "gif must be True or False, got 'no'"),
        (dict(out=3), "out must be a string, got 3"),
    ]:
        with pytest.raises(TrainError, match=message):
            resolve_config(TrainConfig(**kwargs))
    with pytest.raises(OptionError, match="steps must be an integer from 1 to 1000000, got 0"):
        check_options(MinimizeConfig(steps=0))
    assert issubclass(TrainError, ValueError)


def test_loss_choices_are_the_registry_and_mse_means_one_thing(capsys):
    from arenagrad import nn

    text = help_text("train", capsys)
    assert "{" + ",".join(nn.LOSSES) + "}" in text
    assert "softmax-mse: squared error of the softmax probabilities against one-hot targets" in text
