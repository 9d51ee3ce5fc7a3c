"""The ``arenagrad`` command line end to end on small settings, its files and its errors."""

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from arenagrad import cli
from arenagrad.train import TrainConfig, TrainError, train

pytest.importorskip("matplotlib")

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
    code, out, err = run(["train", "--dataset", "xor", *SMALL, "--hidden", "8", "8",
                          "--plot-every", "2", "--no-gif", "--graphviz", "--quiet",
                          "--out", str(tmp_path)], capsys)
    assert code == 0
    assert err == ""  # --quiet: nothing but the final line
    assert out.count("\n") == 1 and out.startswith("xor: final train accuracy")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["decision_boundary_epoch_2_xor.png", "decision_boundary_epoch_3_xor.png",
                     "graph_xor.dot", "training_curves_xor.png"]
    dot = (tmp_path / "graph_xor.dot").read_text()
    assert dot.startswith("digraph arenagrad {") and "loss: " in dot


@pytest.mark.parametrize("loss", ["mse", "hinge"])
def test_train_other_losses(tmp_path, capsys, loss):
    code, out, _ = run(["train", *SMALL, "--loss", loss, "--no-gif", "--quiet",
                        "--out", str(tmp_path)], capsys)
    assert code == 0 and "final train accuracy" in out


def test_train_sine_regression(tmp_path, capsys):
    code, out, _ = run(["train", "--dataset", "sine", "--epochs", "4", "--samples", "30",
                        "--plot-every", "4", "--quiet", "--out", str(tmp_path)], capsys)
    assert code == 0
    assert out.startswith("sine: final train MSE ")
    assert (tmp_path / "regression_fit_epoch_4_sine.png").read_bytes()[:8] == PNG
    assert not (tmp_path / "regression_fit_epoch_3_sine.png").exists()
    assert (tmp_path / "regression_fit_sine.gif").read_bytes()[:6] == b"GIF89a"
    assert (tmp_path / "training_curves_sine.png").exists()


def test_train_digits_reports_test_accuracy_and_seconds_per_epoch(tmp_path, capsys):
    pytest.importorskip("sklearn")
    code, out, err = run(["train", "--dataset", "digits", "--samples", "300", "--epochs", "2",
                          "--out", str(tmp_path)], capsys)
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
        (["train", "--hidden", "0"], "'0' is not a positive integer"),
        (["train", "--hidden", "16", "0"], "'0' is not a positive integer"),
        (["train", "--epochs", "0"], "is not a positive integer"),
        (["train", "--momentum", "1.5"], "is not a number in [0, 1)"),
        (["train", "--dataset", "sine", "--loss", "hinge"], "only --loss mse applies"),
        (["train", "--dataset", "spiral", "--loss", "hinge"], "hinge loss is for two classes"),
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["minimize", "--steps", "-3"], "is not a positive integer"),
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
    for option in ("--samples", "--noise", "--hidden", "--activation", "--epochs", "--lr",
                   "--momentum", "--optimizer", "--batch-size", "--loss", "--seed", "--out",
                   "--plot-every", "--no-gif", "--graphviz", "--quiet"):
        assert option in out


def test_minimize_follows_the_gradient(tmp_path, capsys):
    run_ = cli.minimize(1.0, 2.0, lr=0.05, steps=1)
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
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().splitlines()[-1].startswith("moons: final train accuracy")
    assert (tmp_path / "decision_boundary_epoch_3_moons.png").exists()
    bad = subprocess.run(
        [sys.executable, "-m", "arenagrad", "train", "--lr", "-1"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "arenagrad train: error: argument --lr: '-1' is not a positive number "
        "(see 'arenagrad train -h')"
    )


# ------------------------------------------------------------- the trainer from Python


@pytest.mark.parametrize("dataset", ["linear", "xor", "moons", "circles"])
def test_defaults_reach_95_percent_within_60_epochs(dataset, tmp_path):
    result = train(TrainConfig(dataset=dataset, seed=0, plots=False, quiet=True,
                               out=str(tmp_path)))
    assert result.config.epochs < 60
    assert result.train_acc >= 0.95
    assert result.epochs_to(0.95) is not None


def test_train_config_errors_are_train_errors(tmp_path):
    with pytest.raises(TrainError, match="unknown dataset 'mnist'"):
        train(TrainConfig(dataset="mnist", out=str(tmp_path)))
    with pytest.raises(TrainError, match="hidden layer sizes must be positive"):
        train(TrainConfig(hidden=[4, 0], out=str(tmp_path)))
    with pytest.raises(TrainError, match="learning rate must be a positive number"):
        train(TrainConfig(lr=-1.0, out=str(tmp_path)))


def test_plain_progress_lines_without_tqdm(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm -> ImportError
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    code, out, err = run(["train", *SMALL, "--no-plots", "--out", str(tmp_path)], capsys)
    assert code == 0
    lines = [l for l in err.splitlines() if l.startswith("epoch ")]
    assert len(lines) == 3
    assert lines[-1].startswith("epoch 3/3: loss ") and "train acc" in lines[-1]
    assert not list(tmp_path.iterdir())  # --no-plots
