"""A lecture-style notebook (tests/notebooks/lecture.ipynb, written for this suite from
the lecture's public description) run headless, cell by cell in one namespace, as
Jupyter would: labels, a hand-stepped _backward, a custom op with a _backward
closure added to Value as a method, the lecture's graph walk, and a subclass.
The expected numbers are worked out here from the formulas."""

from __future__ import annotations

import json
import math
import pathlib

import pytest

NOTEBOOK = pathlib.Path(__file__).with_name("notebooks") / "lecture.ipynb"


@pytest.fixture(scope="module")
def ns():
    import arenagrad

    nb = json.loads(NOTEBOOK.read_text())
    assert nb["nbformat"] == 4
    namespace: dict = {"__name__": "__main__"}
    try:
        for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
            exec(compile("".join(cell["source"]), f"<cell {i}>", "exec"), namespace)
        yield namespace
    finally:
        if hasattr(arenagrad.Value, "tanh_by_hand"):
            del arenagrad.Value.tanh_by_hand  # the notebook added it to the shared type


def test_hand_stepped_backward(ns):
    # L = (a*b + c) * f with a=2, b=-3, c=10, f=-2: dL/dd = f, dL/df = d = 4,
    # dL/de = dL/dc = f, dL/da = f*b, dL/db = f*a.
    assert ns["hand"] == {"a": 6.0, "b": -4.0, "c": -2.0, "d": -2.0, "e": -2.0, "f": 4.0}
    assert ns["L"].data == -8.0


def test_custom_tanh_neuron(ns):
    n = 2.0 * -3.0 + 0.0 * 1.0 + 6.8813735870195432
    dn = 1 - math.tanh(n) ** 2  # 0.5 at this bias, as in the lecture
    assert ns["o"].data == pytest.approx(math.tanh(n), rel=1e-14)
    want = {"x1": -3.0 * dn, "x2": 1.0 * dn, "w1": 2.0 * dn, "w2": 0.0 * dn, "b": dn}
    assert ns["neuron"] == pytest.approx(want, rel=1e-12)
    assert dn == pytest.approx(0.5, rel=1e-9)


def test_the_traced_graph_has_every_labelled_node(ns):
    ops = dict(ns["drawn"])
    assert set(ops) == {"x1", "x2", "w1", "w2", "b", "n", "o", ""}  # the unlabelled products and sum
    assert ops["o"] == "tanh" and ops["n"] == "+" and ops["x1"] == ""
    assert len(ns["nodes"]) == 10 and len(ns["edges"]) == 9


def test_subclass_method(ns):
    assert ns["cube"].data == 8.0 and ns["v"].grad == 12.0
    assert isinstance(ns["v"], ns["Value"])
