"""Notebook display: a Value shows its graph (data, grad, label, op per node), large graphs
are capped with a note and display at once, graphviz's dot is used when present; a Module
shows a summary table. Expected numbers are worked out here, never read back from the display."""

from __future__ import annotations

import math
import os
import re
import stat
import subprocess
import sys
import time

import arenagrad as ag
import pytest
from arenagrad import display, viz
from arenagrad.graph_layout import collect, layered_layout
from conftest import HYPO
from hypothesis import given
from hypothesis import strategies as st


def ten_node_graph():
    """out = tanh((a*b + c) * d) + e with distinct numbers everywhere: 10 nodes."""
    a, b, c = ag.Value(1.5, label="a"), ag.Value(-2.25, label="b"), ag.Value(0.75, label="c")
    d, e = ag.Value(0.5, label="d"), ag.Value(3.125, label="e")
    ab = a * b
    s = ab + c
    m = s * d
    t = m.tanh()
    out = t + e
    out.backward()
    return out, [a, b, c, d, e, ab, s, m, t, out]


def test_ten_node_graph_shows_every_node_data_and_grad():
    out, nodes = ten_node_graph()
    html = out._repr_html_()
    t = math.tanh((1.5 * -2.25 + 0.75) * 0.5)
    dt = 1 - t * t
    expected_grads = {
        "a": dt * 0.5 * -2.25,
        "b": dt * 0.5 * 1.5,
        "c": dt * 0.5,
        "d": dt * (1.5 * -2.25 + 0.75),
        "e": 1.0,
    }
    for v in nodes:
        assert f"data {v.data:.4g}" in html
        assert f"grad {v.grad:.4g}" in html
    for name, g in expected_grads.items():
        assert f">{name}<" in html  # the label heads its box
        assert f"grad {g:.4g}" in html
    assert len(re.findall(r'<rect [^>]*width="132" height="50"', html)) == 10  # one box per node
    assert "10 nodes drawn" in html and "more nodes" not in html
    heads = re.findall(r'font-weight="bold">([^<]*)</text>', html)
    assert sorted(heads) == sorted(["a", "b", "c", "d", "e", "*", "+", "*", "tanh", "+"])


def test_every_box_is_coloured_by_its_kind():
    out, nodes = ten_node_graph()
    svg = viz.to_svg(out)
    colours = re.findall(r'<rect x="[^"]+" y="[^"]+" width="132" height="50" rx="6" fill="(#[0-9a-f]{6})"', svg)
    k = viz.KIND_COLORS
    assert sorted(colours) == sorted([k["parameter"]] * 5 + [k["arithmetic"]] * 3 + [k["activation"], k["loss"]])


def test_a_custom_python_op_is_drawn_as_custom():
    a = ag.Value(2.0)
    c = ag.Value(5.0, (a,), "my_op")
    assert viz.node_kind(c) == "custom"
    assert viz.KIND_COLORS["custom"] in viz.to_svg(c * 2)


def timed_display(v):
    best = math.inf
    for _ in range(2):  # the first call also imports the drawing modules
        t0 = time.perf_counter()
        html = v._repr_html_()
        best = min(best, time.perf_counter() - t0)
    return html, best


def test_a_100k_node_chain_displays_in_under_a_second():
    v = ag.Value(0.5)
    for i in range(100_000):
        v = v * 1.0000001 if i % 2 else v + 0.1
    html, seconds = timed_display(v)
    assert seconds < 1.0, f"{seconds:.2f} s"
    assert "150 nodes drawn" in html and "99,851 more nodes not drawn" in html


def test_a_100k_input_sum_displays_in_under_a_second():
    xs = [ag.Value(float(i)) for i in range(100_000)]
    out = ag.sum(xs).tanh()
    html, seconds = timed_display(out)
    assert seconds < 1.0, f"{seconds:.2f} s"
    # A wide node draws its first 16 inputs; the dashed box counts the others.
    assert "18 nodes drawn" in html and "99,984 more nodes not drawn" in html
    assert "+99,984 inputs" in html


def test_a_huge_graph_is_counted_with_a_budget():
    v = ag.Value(0.5)
    for _ in range(300_000):
        v = v + 1.0
    sub = collect([v], 10, count_budget=1000)
    assert len(sub.nodes) == 10 and not sub.omitted_exact and sub.omitted >= 1000
    assert sub.omitted_text().startswith("at least ")
    exact = collect([v], 10)
    assert exact.omitted_exact is False  # 300,000 nodes exceed the default budget too
    small = collect([v.inputs[0].inputs[0]], 10, count_budget=10**6)
    assert small.omitted_exact and small.omitted == 300_001 - 2 - 10


def test_a_deep_graph_displays_without_recursion():
    v = ag.Value(1.0)
    for _ in range(200_000):
        v = v.tanh()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        html = display.graph_html(v, max_nodes=500)
    finally:
        sys.setrecursionlimit(limit)
    assert "500 nodes drawn" in html


def random_graph(draw_ops, n_leaves):
    leaves = [ag.Value(0.1 * (i + 1)) for i in range(n_leaves)]
    nodes = list(leaves)
    for op, i, j in draw_ops:
        x, y = nodes[i % len(nodes)], nodes[j % len(nodes)]
        nodes.append(x * y if op == 0 else (x + y if op == 1 else x.tanh()))
    return nodes[-1]


@HYPO
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=40))
def test_layout_puts_inputs_left_of_consumers_and_never_overlaps(ops):
    out = random_graph(ops, 3)
    sub = collect([out], 1000)
    lay = layered_layout(sub)
    for j, i, _ in sub.edges:
        assert lay.x[j] < lay.x[i]  # inputs left of the op that consumes them
    boxes = sorted(zip(lay.x, lay.y))
    for (x1, y1), (x2, y2) in zip(boxes, boxes[1:]):
        if x1 == x2:
            assert y2 - y1 >= lay.node_h  # a column's boxes never overlap
    assert all(0 <= x <= lay.width - lay.node_w for x in lay.x)
    assert all(0 <= y <= lay.height - lay.node_h + 1e-9 for y in lay.y)


def test_dot_is_used_when_installed_and_python_otherwise(tmp_path, monkeypatch):
    out, _ = ten_node_graph()
    fake = tmp_path / "dot"
    fake.write_text('#!/bin/sh\ncat > /dev/null\necho \'<?xml version="1.0"?><svg id="from-fake-dot"></svg>\'\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    html = out._repr_html_()
    assert 'id="from-fake-dot"' in html and "<?xml" not in html and "layout: graphviz dot" in html
    assert "layout: python" in display.graph_html(out, layout="python")
    fake.write_text("#!/bin/sh\nexit 1\n")  # a failing dot falls back to the Python layout
    assert "layout: python" in out._repr_html_()
    with pytest.raises(RuntimeError, match="dot"):
        display.graph_html(out, layout="dot")


def test_without_dot_layout_dot_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(viz, "_dot_program", lambda: None)
    out, _ = ten_node_graph()
    assert "layout: python" in out._repr_html_()
    with pytest.raises(RuntimeError, match="needs graphviz"):
        display.graph_html(out, layout="dot")


def test_set_display_changes_the_cap_and_checks_its_arguments():
    before = display.set_display()
    try:
        ag.viz.set_display(max_nodes=3)
        out, _ = ten_node_graph()
        assert "3 nodes drawn; 7 more nodes not drawn (max_nodes=3" in out._repr_html_()
        with pytest.raises(ValueError):
            ag.viz.set_display(max_nodes=0)
        with pytest.raises(ValueError):
            ag.viz.set_display(layout="neato")
    finally:
        display.set_display(**before)
    assert display.set_display() == before


def test_import_arenagrad_installs_the_display_but_loads_no_drawing_code():
    code = (
        "import sys, arenagrad as ag; "
        "assert callable(ag.Value._repr_html_); "
        "print(sorted(m for m in sys.modules if m.split('.')[-1] in "
        "('svg_graph', 'graph_layout', 'animate', 'explain', 'viz', 'html')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


# ------------------------------------------------------------------ Module summary


def test_module_shows_a_summary_table_with_grad_norms_after_backward():
    model = ag.nn.MLP(2, [16, 16, 1], seed=0)
    html = model._repr_html_()
    for name in ("layers.0", "layers.1", "layers.2"):
        assert name in html
    assert ">337<" in html and ">48<" in html and ">272<" in html and ">17<" in html
    assert "16 × w (2,), 16 × b ()" in html
    assert "blank until a backward" in html
    rows = ag.nn.summary(model).rows
    assert [r.params for r in rows] == [337, 48, 272, 17]
    assert all(r.grad_norm is None for r in rows)

    loss = ag.sum([model([0.5, -1.0]), model([1.0, 2.0])])
    loss.backward()
    rows = ag.nn.summary(model).rows
    by_hand = math.sqrt(sum(p.grad**2 for p in model.layers[2].parameters()))
    assert rows[3].grad_norm == pytest.approx(by_hand, rel=1e-12) and by_hand > 0
    total = math.sqrt(sum(p.grad**2 for p in model.parameters()))
    assert rows[0].grad_norm == pytest.approx(total, rel=1e-12)
    assert f"{total:.4g}" in model._repr_html_()
    text = repr(ag.nn.summary(model))
    assert text.splitlines()[0].split() == ["name", "type", "settings", "parameters", "count", "grad", "norm"]
    assert len(text.splitlines()) == 5


def test_summary_depth_and_sequential():
    model = ag.nn.Sequential(ag.nn.Linear(2, 8, seed=0), ag.nn.ReLU(), ag.nn.Linear(8, 1, seed=0))
    rows = ag.nn.summary(model).rows
    assert [(r.name, r.type, r.params) for r in rows] == [
        ("", "Sequential", 33),
        ("0", "Linear", 24),
        ("1", "ReLU", 0),
        ("2", "Linear", 9),
    ]
    assert rows[1].shapes == "weight (8, 2), bias (8,)"
    assert len(ag.nn.summary(ag.nn.MLP(2, [4, 1], seed=0), max_depth=2).rows) == 1 + 2 + 5
    assert len(ag.nn.summary(model, max_depth=0).rows) == 1
