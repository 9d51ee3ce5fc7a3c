"""``arenagrad sweep``: its flags made from train's declarations, bad values refused before
any work, the table and pictures, a run whose worker dies, Ctrl-C.

The expected numbers come from a plain loop calling ``train()`` (:func:`reference_table`),
never from the sweep's own code. test_sweep_dask.py checks the Dask backend against the
same loop.
"""

from __future__ import annotations

import csv
import math
import os
import signal
from dataclasses import fields

import numpy as np
import pytest
from arenagrad import cli, nn
from arenagrad.grad_mode import no_grad
from arenagrad.options import from_args
from arenagrad.sweep import Interrupted, map_runs
from arenagrad.sweep import training as sweep_training
from arenagrad.sweep.pictures import cell_statistics
from arenagrad.sweep.training import SweepConfig, plan, train_run
from arenagrad.train import DATASETS, TrainConfig, train

PNG = b"\x89PNG\r\n\x1a\n"
# 2 learning rates x 2 widths x 2 seeds of a tiny moons run, in the order the sweep runs them.
SMALL = ["--epochs", "2", "--samples", "40", "--hidden", "4", "6,6", "--lr", "0.05", "0.2", "--seeds", "2"]
GRID = [(hidden, lr, seed) for hidden in ([4], [6, 6]) for lr in (0.05, 0.2) for seed in (0, 1)]
METRICS = ("train_loss", "test_loss", "train_acc", "test_acc")


def reference_table(out):
    """Each run of SMALL trained by a plain loop calling train(), and its final loss
    recomputed from the model: what every backend's table must say."""
    rows = []
    for hidden, lr, seed in GRID:
        config = TrainConfig(
            dataset="moons", samples=40, epochs=2, hidden=hidden, lr=lr, seed=seed, plots=False, quiet=True, out=out
        )
        result = train(config)
        data = DATASETS["moons"].make(40, noise=0.1, seed=seed)  # the dataset's own noise, no test split
        criterion = nn.LOSSES["cross-entropy"]
        with no_grad():
            loss = criterion([result.model(x) for x in data[0].tolist()], criterion.targets(data[1], 2)).data
        rows.append(
            {
                "hidden": hidden,
                "lr": lr,
                "seed": seed,
                "train_loss": loss,
                "train_acc": result.train_acc,
                "test_acc": None,
            }
        )
    return rows


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return reference_table(str(tmp_path_factory.mktemp("reference")))


def read_csv_text(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_csv(path):
    """sweep.csv, the columns the reference has read back as numbers (empty: None)."""
    rows = read_csv_text(path)
    kinds = {"run": int, "seed": int, "lr": float, "train_loss": float, "train_acc": float, "tries": int}
    for row in rows:
        row.update({k: kind(row[k]) if row[k] else None for k, kind in kinds.items()})
        row["hidden"] = [int(w) for w in row["hidden"].split(",")]
        row["test_acc"], row["test_loss"] = row["test_acc"] or None, row["test_loss"] or None
    return rows


def assert_matches_reference(table, reference):
    """Every row of the table says exactly what the reference loop got."""
    assert len(table) == len(reference)
    for i, (row, want) in enumerate(zip(table, reference)):
        assert row["run"] == i and row["status"] == "ok", row
        assert (row["hidden"], row["lr"], row["seed"]) == (want["hidden"], want["lr"], want["seed"])
        assert row["train_acc"] == want["train_acc"], i  # bit for bit: runs are seeded
        assert row["train_loss"] == want["train_loss"], i
        assert row["test_acc"] is None and row["test_loss"] is None  # moons has no test split


def run_cli(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_every_train_option_is_a_sweep_flag_with_the_same_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["sweep", "-h"])
    text = " ".join(capsys.readouterr().out.split())
    own = {f.name for f in fields(SweepConfig)}
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name in ("plot_every", "gif", "graphviz") or f.name in own:
            continue  # the sweep sets these itself (its own --out, --grid, --plots, --quiet)
        assert flag in text, f.name
        assert " ".join(f.metadata["option"].help.split()) in text, f.name


def test_several_values_parse_to_the_grid():
    args = cli.build_parser().parse_args(
        ["sweep", "--lr", "0.01", "0.1", "--hidden", "8", "16,16", "--dataset", "moons", "xor", "--compile"]
    )
    config = from_args(SweepConfig, args)
    assert config.runs == {"dataset": ["moons", "xor"], "hidden": [[8], [16, 16]], "lr": [0.01, 0.1], "compile": [True]}
    assert (config.seeds, config.workers, config.scheduler, config.retries, config.out) == (
        None,
        None,
        None,
        1,
        "sweep",
    )


def test_the_runs_are_every_combination_with_the_dataset_defaults_filled_in():
    runs = plan(SweepConfig(runs={"dataset": ["xor", "spiral"], "lr": [0.1, 0.3]}, seeds=2))
    assert [(r["dataset"], r["lr"], r["seed"]) for r in runs] == [
        (d, lr, s) for d in ("xor", "spiral") for lr in (0.1, 0.3) for s in (0, 1)
    ]
    assert {r["optimizer"] for r in runs[:4]} == {"sgd"} and {r["optimizer"] for r in runs[4:]} == {"adam"}
    assert runs[4]["hidden"] == [32, 32] and runs[4]["samples"] == 300  # spiral's defaults


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lr", "0.1", "0"], "argument --lr: '0' is not a positive number"),
        (["--hidden", "8", "8,0"], "argument --hidden: '0' is not an integer from 1 to 4096"),
        (["--hidden", ",".join(["2"] * 17)], "has more than 16 values"),
        (["--dataset", "moons", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
        (["--seeds", "0"], "argument --seeds: '0' is not an integer from 1 to 10000"),
        (["--dataset", "moons", "spiral", "--loss", "hinge"], "hinge loss is for two classes; spiral has 3"),
        (["--dataset", "moons", "digits", "--noise", "0.2"], "digits is a fixed dataset"),
        (["--seed", "1", "--seeds", "2"], "either --seed values or --seeds K, not both"),
        (["--scheduler", "somewhere"], "--scheduler takes 'local' or an address"),
        (["--scheduler", "tcp://h:1", "--workers", "2"], "--workers is for local processes"),
    ],
)
def test_a_bad_value_is_refused_before_any_work_is_sent(argv, message, capsys, monkeypatch, tmp_path):
    def no_work(*args, **kwargs):
        raise AssertionError("work was sent")

    monkeypatch.setattr(sweep_training, "map_runs", no_work)
    with pytest.raises(SystemExit) as exc:
        cli.main(["sweep", *argv, "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("arenagrad sweep: error: ") and message in err, err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing written either


def test_sweep_on_local_processes_writes_the_table_and_pictures(tmp_path, capsys, reference):
    code, out, err = run_cli(["sweep", *SMALL, "--grid", "10", "--workers", "2", "--out", str(tmp_path)], capsys)
    assert code == 0
    table = read_csv(tmp_path / "sweep.csv")
    assert_matches_reference(table, reference)
    assert list(table[0])[-4:] == ["status", "tries", "seconds", "error"]
    assert "8/8" in err  # the bar counts finished runs

    best = max(range(len(reference)), key=lambda i: (reference[i]["train_acc"], -i))
    hidden, lr, seed = GRID[best]
    assert out.startswith("sweep: 8 runs (8 ok) in ") and "on 2 local processes" in out
    assert f"best train accuracy {100 * reference[best]['train_acc']:.1f}% (run {best}: " in out
    boundary = tmp_path / "best_run" / "decision_boundary_epoch_2_moons.png"
    for picture in (tmp_path / "sweep_heatmap.png", boundary, tmp_path / "best_run" / "training_curves_moons.png"):
        assert picture.read_bytes()[:8] == PNG, picture
        assert str(picture) in err  # listed as written
    assert f"hidden={','.join(map(str, hidden))} lr={lr} seed={seed}" in out


def test_the_heatmap_cells_are_the_mean_and_spread_over_seeds(reference):
    table = [{"run": i, "status": "ok", **row} for i, row in enumerate(reference)]
    cells = cell_statistics(table, ["hidden", "lr"], "train_acc")
    assert len(cells) == 4
    for (hidden, lr), (mean, sd, n) in cells.items():
        accs = [r["train_acc"] for r in reference if tuple(r["hidden"]) == hidden and r["lr"] == lr]
        assert n == 2 and mean == pytest.approx(sum(accs) / 2, abs=1e-15)
        assert sd == pytest.approx(abs(accs[0] - accs[1]) / math.sqrt(2), abs=1e-15)  # sample sd of two


def die_once_then_train(options, marker, victim):
    """train_run, except that the first try of run ``victim`` kills its worker process."""
    if options == victim and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return train_run(options)


def sweep_killing_a_worker(tmp_path, **backend):
    """The SMALL sweep through map_runs with the worker of run 5 killed on its first try."""
    runs = plan(SweepConfig(runs={"epochs": [2], "samples": [40], "hidden": [[4], [6, 6]], "lr": [0.05, 0.2]}, seeds=2))
    marker = str(tmp_path / "killed")
    table = map_runs(die_once_then_train, runs, shared={"marker": marker, "victim": runs[5]}, progress=False, **backend)
    assert os.path.exists(marker)
    return table


def test_a_killed_worker_costs_one_retried_run_on_local_processes(tmp_path, reference):
    table = sweep_killing_a_worker(tmp_path, workers=2)
    assert [row["tries"] for row in table] == [1, 1, 1, 1, 1, 2, 1, 1]
    assert_matches_reference(table, reference)


def test_ctrl_c_writes_the_runs_finished_so_far(tmp_path, capsys, monkeypatch):
    def interrupted(fn, runs, **kwargs):
        done = {"run": 0, **runs[0], "train_acc": 0.5, "status": "ok", "tries": 1, "seconds": 0.1, "error": ""}
        rest = [{"run": i, **runs[i], "status": "cancelled", "tries": 0, "error": ""} for i in range(1, len(runs))]
        raise Interrupted([done, *rest])

    monkeypatch.setattr(sweep_training, "map_runs", interrupted)
    code, out, err = run_cli(["sweep", *SMALL, "--out", str(tmp_path)], capsys)
    assert code == 130 and out == ""
    assert "interrupted" in err
    table = read_csv_text(tmp_path / "sweep.csv")
    assert [row["status"] for row in table] == ["ok"] + ["cancelled"] * 7
    assert table[0]["train_acc"] == "0.5"
    assert not (tmp_path / "sweep_heatmap.png").exists()


def test_the_sweep_is_the_same_from_python(tmp_path, reference):
    result = sweep_training.run_sweep(
        SweepConfig(
            runs={"epochs": [2], "samples": [40], "hidden": [[4], [6, 6]], "lr": [0.05, 0.2]},
            seeds=2,
            workers=1,
            out=str(tmp_path),
            plots=False,
            quiet=True,
        )
    )
    assert [row["train_acc"] for row in result.table] == [row["train_acc"] for row in reference]
    assert result.files == [tmp_path / "sweep.csv"]
    assert np.isfinite([row["seconds"] for row in result.table]).all()
