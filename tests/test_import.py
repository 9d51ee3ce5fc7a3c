"""``import arenagrad`` stays light: numpy and friends load only with the submodules that use them.

Structural checks in fresh interpreters; how long the import takes is measured in bench/.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("numpy", "matplotlib", "tqdm")


def fresh(code: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True, timeout=60, check=True)


def test_import_arenagrad_loads_no_heavy_module():
    # Compare against what the interpreter had before the import, so that a site hook
    # importing numpy on its own does not count against arenagrad.
    code = "import sys; before = set(sys.modules); import arenagrad; print(' '.join(sorted(set(sys.modules) - before)))"
    done = fresh(code, "-X", "importtime")
    loaded = set(done.stdout.split())
    assert "arenagrad._core" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    trace = "\n".join(line for line in done.stderr.splitlines() if any(h in line for h in HEAVY) or "arenagrad" in line)
    assert not heavy, f"import arenagrad imported {heavy[:5]}; -X importtime says:\n{trace}"


def test_submodules_load_on_first_use():
    code = """
import sys
import arenagrad as ag
assert "arenagrad.nn" not in sys.modules
assert {"data", "losses", "nn", "optim"} <= set(dir(ag))
assert ag.nn.MLP is sys.modules["arenagrad.nn"].MLP
from arenagrad import optim
import arenagrad.data
ns = {}
exec("from arenagrad import *", ns)
assert ns["losses"] is sys.modules["arenagrad.losses"] and ns["Value"] is ag.Value
try:
    ag.no_such_name
except AttributeError as err:
    assert "no_such_name" in str(err)
else:
    raise AssertionError("ag.no_such_name did not raise")
print("ok")
"""
    assert fresh(code).stdout.strip() == "ok"


def test_manual_seed_before_any_submodule():
    # manual_seed is on the package itself and brings numpy in only when called.
    code = """
import sys
import arenagrad as ag
rng = ag.manual_seed(3)
import numpy as np
assert rng.random() == np.random.default_rng(3).random()
print("ok")
"""
    assert fresh(code).stdout.strip() == "ok"
