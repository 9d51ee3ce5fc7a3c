"""The ``arenagrad`` command line end to end on small settings, its files and its errors."""

import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from arenagrad import cli
from arenagrad.demos import minimize
from arenagrad.train import TrainConfig, TrainError, train

PNG = b"\x89PNG\r\n\x1a\n"
SMALL = ["--epochs", "3", "--samples", "40", "--grid", "20"]


def run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def gif_frames(path):
    from PIL import Image

    with Image.open(path) as im:
        return im.n_frames


def test_train_end_to_end_writes_pictures(tmp_path, capsys):
    code, out, err = run(["train", *SMALL, "--out", str(tmp_path)], capsys)
    assert code == 0
    last = out.strip().splitlines()[-1]
    assert last.startswith("moons: final train accuracy ")
    acc = float(last.split("accuracy ")[1].split("%")[0])
    assert 0 <= acc <= 100
    assert "epoch 3/3" in err  # the progress bar (or its plain fallback) per epoch
    # 3 epochs -> plot every epoch: one boundary per epoch, the curves, the GIF
    for epoch in (1, 2, 3):
        assert (tmp_path / f"decision_boundary_epoch_{epoch}_moons.png").read_bytes()[:8] == PNG
    assert (tmp_path / "training_curves_moons.png").read_bytes()[:8] == PNG
    gif = tmp_path / "decision_boundary_moons.gif"
    assert gif.read_bytes()[:6] == b"GIF89a"
    assert gif_frames(gif) >= 4  # epoch 0 .. 3
    assert not list(tmp_path.glob("*.dot"))


def test_train_options_plot_every_no_gif_graphviz_quiet(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)  # as on a machine without dot
    code, out, err = run(
        [
            "train",
            "--dataset",
            "xor",
            *SMALL,
            "--hidden",
            "8",
            "8",
            "--plot-every",
            "2",
            "--no-gif",
            "--graphviz",
            "--quiet",
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 0
    assert err == ""  # --quiet: nothing but the final line
    assert out.count("\n") == 1 and out.startswith("xor: final train accuracy")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "decision_boundary_epoch_2_xor.png",
        "decision_boundary_epoch_3_xor.png",
        "graph_xor.dot",
        "training_curves_xor.png",
    ]
    dot = (tmp_path / "graph_xor.dot").read_text()
    assert dot.startswith("digraph arenagrad {") and "loss: " in dot


@pytest.mark.parametrize("loss", ["mse", "hinge"])
def test_train_other_losses(tmp_path, capsys, loss):
    code, out, _ = run(["train", *SMALL, "--loss", loss, "--no-gif", "--quiet", "--out", str(tmp_path)], capsys)
    assert code == 0 and "final train accuracy" in out


def test_train_sine_regression(tmp_path, capsys):
    code, out, _ = run(
        [
            "train",
            "--dataset",
            "sine",
            "--epochs",
            "4",
            "--samples",
            "30",
            "--plot-every",
            "4",
            "--quiet",
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 0
    assert out.startswith("sine: final train MSE ")
    assert (tmp_path / "regression_fit_epoch_4_sine.png").read_bytes()[:8] == PNG
    assert not (tmp_path / "regression_fit_epoch_3_sine.png").exists()
    assert (tmp_path / "regression_fit_sine.gif").read_bytes()[:6] == b"GIF89a"
    assert (tmp_path / "training_curves_sine.png").exists()


def test_train_digits_reports_test_accuracy_and_seconds_per_epoch(tmp_path, capsys):
    pytest.importorskip("sklearn")
    code, out, err = run(
        ["train", "--dataset", "digits", "--samples", "300", "--epochs", "2", "--out", str(tmp_path)], capsys
    )
    assert code == 0
    assert "test accuracy" in out.splitlines()[-1]
    assert "seconds per epoch" in err
    assert (tmp_path / "training_curves_digits.png").exists()
    assert not list(tmp_path.glob("decision_boundary*"))  # 64-D: no boundary to draw


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["train", "--dataset", "nope"], "invalid choice: 'nope'"),
        (["train", "--lr", "-0.1"], "'-0.1' is not a positive number"),
        (["train", "--lr", "nan"], "is not a positive number"),
        (["train", "--hidden", "0"], "'0' is not an integer from 1 to 4096"),
        (["train", "--hidden", "16", "0"], "'0' is not an integer from 1 to 4096"),
        (["train", "--epochs", "0"], "is not an integer from 1 to 100000"),
        (["train", "--momentum", "1.5"], "is not a number in [0, 1)"),
        (["train", "--dataset", "sine", "--loss", "hinge"], "only --loss mse applies"),
        (["train", "--dataset", "spiral", "--loss", "hinge"], "hinge loss is for two classes"),
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["minimize", "--steps", "-3"], "is not an integer from 1 to 1000000"),
    ],
)
def test_bad_arguments_one_line_nonzero_exit(argv, needle, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli.main([*argv, *(["--out", str(tmp_path)] if argv[0] == "train" else [])])
    assert exc.value.code != 0
    out, err = capsys.readouterr()
    assert out == ""
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", *SMALL, "--out", str(blocker / "sub")])
    assert exc.value.code == 2
    _, err = capsys.readouterr()
    assert "cannot write to output directory" in err and str(blocker / "sub") in err
    assert len(err.strip().splitlines()) == 1


def test_help_lists_every_dataset_and_default(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "-h"])
    assert exc.value.code == 0
    out, _ = capsys.readouterr()
    for name in ("linear", "xor", "moons", "circles", "spiral", "sine", "digits"):
        assert f"\n  {name} " in out  # a row of the per-dataset defaults table
    for option in (
        "--samples",
        "--noise",
        "--hidden",
        "--activation",
        "--epochs",
        "--lr",
        "--momentum",
        "--optimizer",
        "--batch-size",
        "--loss",
        "--seed",
        "--out",
        "--plot-every",
        "--no-gif",
        "--graphviz",
        "--quiet",
    ):
        assert option in out


def test_minimize_follows_the_gradient(tmp_path, capsys):
    run_ = minimize(1.0, 2.0, lr=0.05, steps=1)
    # f = relu((x - y)**3 + exp(y)) + y; at (1, 2) the relu is on:
    # df/dx = 3 (x - y)**2 = 3, df/dy = -3 (x - y)**2 + exp(y) + 1
    assert run_["x"][1] == pytest.approx(1.0 - 0.05 * 3.0)
    assert run_["y"][1] == pytest.approx(2.0 - 0.05 * (-3.0 + math.exp(2.0) + 1.0))
    assert run_["f"][0] == pytest.approx(-1.0 + math.exp(2.0) + 2.0)
    code, out, _ = run(["minimize", "--steps", "30", "--out", str(tmp_path), "--quiet"], capsys)
    assert code == 0 and out.startswith("minimize: f went from 8.3891 to ")
    assert (tmp_path / "minimize.png").read_bytes()[:8] == PNG


def test_graph_without_dot_writes_the_dot_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    code, out, _ = run(["graph", "--out", str(tmp_path)], capsys)
    assert code == 0
    assert "not installed" in out
    text = (tmp_path / "network_graph.dot").read_text()
    # MLP 2-3-1 and a squared error: 2 inputs, 3*3 + 4 params, 3*(dot, +, relu), dot, +, -, **
    assert "// 28 nodes" in text
    assert not (tmp_path / "network_graph.png").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")
def test_graph_with_dot_writes_the_picture(tmp_path, capsys):
    code, _, _ = run(["graph", "--format", "svg", "--out", str(tmp_path)], capsys)
    assert code == 0
    assert b"<svg" in (tmp_path / "network_graph.svg").read_bytes()


def test_python_dash_m(tmp_path):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    ok = subprocess.run(
        [sys.executable, "-m", "arenagrad", "train", *SMALL, "--no-gif", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().splitlines()[-1].startswith("moons: final train accuracy")
    assert (tmp_path / "decision_boundary_epoch_3_moons.png").exists()
    bad = subprocess.run(
        [sys.executable, "-m", "arenagrad", "train", "--lr", "-1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "arenagrad train: error: argument --lr: '-1' is not a positive number (see 'arenagrad train -h')"
    )


# ------------------------------------------------------------- the trainer from Python


@pytest.mark.parametrize("dataset", ["linear", "xor", "moons", "circles"])
def test_defaults_reach_95_percent_within_60_epochs(dataset, tmp_path):
    result = train(TrainConfig(dataset=dataset, seed=0, plots=False, quiet=True, out=str(tmp_path)))
    assert result.config.epochs < 60
    assert result.train_acc >= 0.95
    assert result.epochs_to(0.95) is not None


def test_train_config_errors_are_train_errors(tmp_path):
    with pytest.raises(TrainError, match="unknown dataset 'mnist'"):
        train(TrainConfig(dataset="mnist", out=str(tmp_path)))
    with pytest.raises(TrainError, match=r"each hidden value must be an integer from 1 to 4096, got \[4, 0\]"):
        train(TrainConfig(hidden=[4, 0], out=str(tmp_path)))
    with pytest.raises(TrainError, match="lr must be a positive number, got -1.0"):
        train(TrainConfig(lr=-1.0, out=str(tmp_path)))


# ------------------------------------------------- every bad setting is one line, exit 2


def one_line_error(argv, capsys):
    """Run the CLI expecting a usage error: exit 2, one line on stderr, nothing on stdout."""
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    out, err = capsys.readouterr()
    assert exc.value.code == 2, err
    assert out == ""
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"arenagrad {argv[0]}: error: ")
    return err


@pytest.mark.parametrize(
    "argv, needle",
    [
        # a test split that leaves no training samples
        (["--samples", "4", "--test-split", "0.9"], "holds out 4 of 4 samples, leaving none to train on"),
        (["--dataset", "digits", "--samples", "4", "--test-split", "0.8"], "leaving none to train on"),
        # absurd sizes
        (["--samples", "2000000"], "argument --samples: '2000000' is not an integer from 4 to 1000000"),
        (["--samples", "1" + "0" * 30], "is not an integer from 4 to 1000000"),
        (["--dataset", "digits", "--samples", "5000"], "digits has 1797 samples"),
        (["--samples", "3"], "argument --samples: '3' is not an integer from 4 to 1000000"),
        (["--hidden", "5000"], "argument --hidden: '5000' is not an integer from 1 to 4096"),
        (["--hidden", *["2"] * 17], "at most 16 hidden values, got 17"),
        (["--hidden", "2000", "2000"], "an MLP 2-2000-2000-2 has 4,012,002 parameters; the limit is 1,000,000"),
        (["--hidden", "700", "700", "--batch-size", "200"], "would build a graph of about"),
        (["--hidden", "400", "400", "--batch-size", "200", "--compile"], "a compiled training step"),
        (["--epochs", "1000000"], "argument --epochs: '1000000' is not an integer from 1 to 100000"),
        # noise is the data's problem, not the learning rate's
        (["--noise", "1e308"], "argument --noise: '1e308' is not a number in [0, 10]"),
        (["--noise", "11"], "argument --noise: '11' is not a number in [0, 10]"),
        (["--dataset", "digits", "--noise", "0.1"], "noise does not apply"),
        (["--weight-decay", "5"], "argument --weight-decay: '5' is not a number in [0, 1]"),
        (["--lr", "inf"], "argument --lr: 'inf' is not a positive number"),
        # a learning rate that diverges is blamed on --lr, without numpy's warnings
        (["--lr", "1e308", "--optimizer", "adam", "--quiet"], "diverged (became nan) at epoch 1; try a smaller --lr"),
        (["--lr", "1e308", "--dataset", "sine", "--quiet"], "diverged (became nan) at epoch 1; try a smaller --lr"),
        (["--grid", "100000"], "argument --grid: '100000' is not an integer from 5 to 400"),
    ],
)
def test_train_refuses_absurd_settings_in_one_line(argv, needle, capsys, tmp_path):
    err = one_line_error(["train", *argv, "--out", str(tmp_path)], capsys)
    assert needle in err
    if "noise" in needle:
        assert "--lr" not in err and "diverged" not in err
    assert not list(tmp_path.iterdir())  # refused before any picture


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["graph", "--hidden", "5000"], "'5000' is not an integer from 1 to 4096"),
        (["graph", "--inputs", "100000"], "argument --inputs: '100000' is not an integer from 1 to 4096"),
        (
            ["graph", "--hidden", "2000", "2000"],
            "an MLP 2-2000-2000-1 has 4,010,001 parameters; the limit is 1,000,000",
        ),
        (["graph", "--hidden", *["2"] * 17], "at most 16 hidden values, got 17"),
        (["graph", "--max-nodes", "1000000000"], "is not an integer from 1 to 10000"),
        (["graph", "--dpi", "100000"], "is not an integer from 1 to 1200"),
        (["minimize", "--steps", "1000000000000"], "is not an integer from 1 to 1000000"),
        (["minimize", "--x", "1e308"], "the descent left the domain of f"),
    ],
)
def test_graph_and_minimize_refuse_absurd_settings_in_one_line(argv, needle, capsys, tmp_path):
    err = one_line_error([*argv, "--out", str(tmp_path)], capsys)
    assert needle in err


@pytest.mark.parametrize(
    "name, extra",
    [
        ("training_curves_moons.png", []),
        ("decision_boundary_epoch_3_moons.png", []),
        ("decision_boundary_epoch_2_moons.png", ["--plot-every", "2"]),
        ("decision_boundary_moons.gif", []),
        ("graph_moons.dot", ["--graphviz"]),
        ("graph_moons.svg", ["--graphviz"]),
    ],
)
def test_picture_path_that_is_a_directory_is_refused_before_training(name, extra, capsys, tmp_path):
    (tmp_path / name).mkdir()
    err = one_line_error(["train", *SMALL, *extra, "--out", str(tmp_path)], capsys)
    assert f"cannot write '{tmp_path / name}': it is a directory" in err
    assert "epoch 1/" not in err  # no training started
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing trained or drawn


def test_directory_in_the_way_of_minimize_and_graph(capsys, tmp_path):
    (tmp_path / "minimize.png").mkdir()
    err = one_line_error(["minimize", "--out", str(tmp_path)], capsys)
    assert "minimize.png': it is a directory" in err
    (tmp_path / "network_graph.dot").mkdir()
    err = one_line_error(["graph", "--out", str(tmp_path)], capsys)
    assert "network_graph.dot': it is a directory" in err


def test_a_write_failing_after_training_is_still_one_line(capsys, tmp_path, monkeypatch):
    from arenagrad import plots

    def refuse(history, path, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(plots, "plot_history", refuse)
    err = one_line_error(["train", *SMALL, "--quiet", "--out", str(tmp_path)], capsys)
    assert f"cannot write '{tmp_path / 'training_curves_moons.png'}': Permission denied" in err


def test_cli_errors_through_python_dash_m_have_no_traceback(tmp_path):
    (tmp_path / "training_curves_moons.png").mkdir()
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    for argv in (
        ["--samples", "4", "--test-split", "0.9"],
        ["--noise", "1e308"],
        ["--hidden", "100000"],
        ["--samples", "100000000"],
        ["--out", str(tmp_path)],
    ):
        bad = subprocess.run(
            [sys.executable, "-m", "arenagrad", "train", *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            cwd=tmp_path,
        )
        assert bad.returncode == 2, (argv, bad.stderr)
        assert bad.stdout == ""
        assert len(bad.stderr.strip().splitlines()) == 1, (argv, bad.stderr)
        assert bad.stderr.startswith("arenagrad train: error: ") and "Traceback" not in bad.stderr


def test_compile_with_a_batch_larger_than_the_data_records_the_data(tmp_path):
    # 200 samples, batch 1,000,000: the step is recorded for 200, not a million placeholders.
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "arenagrad",
            "train",
            "--samples",
            "200",
            "--batch-size",
            "1000000",
            "--compile",
            "--epochs",
            "5",
            "--no-plots",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "batch 200," in done.stderr
    assert done.stdout.startswith("moons: final train accuracy")


def test_compile_records_one_sample_whatever_the_batch_size(tmp_path, monkeypatch):
    from arenagrad import nn

    sizes = []
    real_batch, real_sample = nn.CompiledStep._record, nn.CompiledStep._record_sample

    def spy_batch(self, n):
        sizes.append(n)
        return real_batch(self, n)

    def spy_sample(self):
        sizes.append(1)
        return real_sample(self)

    monkeypatch.setattr(nn.CompiledStep, "_record", spy_batch)
    monkeypatch.setattr(nn.CompiledStep, "_record_sample", spy_sample)
    result = train(
        TrainConfig(
            samples=50,
            test_split=0.2,
            batch_size=10**6,
            compile=True,
            epochs=2,
            plots=False,
            quiet=True,
            out=str(tmp_path),
        )
    )
    assert sizes == [1]  # one sample's graph, replayed over the rows of every batch
    assert result.train_acc is not None


# ---------------------------------------------------------- the same checks from Python


def test_train_config_bounds_are_train_errors(tmp_path):
    def bad(match, **kw):
        with pytest.raises(TrainError, match=match):
            train(TrainConfig(out=str(tmp_path), plots=False, quiet=True, **kw))

    bad("samples must be an integer from 4 to 1000000, got 10000000", samples=10**7)
    bad(r"noise must be a number in \[0, 10\]", noise=1e308)
    bad(r"noise must be a number in \[0, 10\]", noise=float("nan"))
    bad("each hidden value must be an integer from 1 to 4096", hidden=[10**6])
    bad("at most 16 hidden values, got 17", hidden=[2] * 17)
    bad("parameters; the limit is", hidden=[1000, 1000])
    bad("epochs must be an integer from 1 to 100000", epochs=10**9)
    bad(r"weight_decay must be a number in \[0, 1\], got 2.0", weight_decay=2.0)
    bad("leaving none to train on", samples=10, test_split=0.95)
    bad("seed must be a non-negative integer", seed=-1)


def test_dataset_shapes_used_by_the_size_checks_match_the_data():
    from arenagrad.train import DATASETS, load_dataset, resolve_config

    for name, d in DATASETS.items():
        if name == "digits":
            pytest.importorskip("sklearn")
        X, y, _, _ = load_dataset(resolve_config(TrainConfig(dataset=name, samples=None if name == "digits" else 300)))
        assert X.shape[1] == d.features, name
        if d.classes is None:
            assert y.dtype == np.float64, name  # a regression: numbers, not classes
        else:
            assert int(y.max()) + 1 == d.classes, name
