"""arenagrad.viz: graphviz text of a known graph, truncation, rendering with and without dot."""

import math
import re
import shutil

import arenagrad as ag
import pytest
from arenagrad import viz

NODE = re.compile(r"^\s*(n\d+) \[label=\"(.*)\", fillcolor=\"(#[0-9a-f]{6})\"\];$", re.M)
EDGE = re.compile(r"^\s*(n\d+) -> (n\d+);$", re.M)
CONST = re.compile(r"^\s*(c\d+) \[label=\"([^\"]*)\"", re.M)


def nodes(text):
    return {name: (label, color) for name, label, color in NODE.findall(text)}


def known_graph():
    """loss = tanh(relu(a*b + x) * 2): 8 nodes, 7 edges, one folded constant."""
    a = ag.Value(2.0)
    b = ag.Value(-3.0)
    x = ag.Value(10.0, requires_grad=False)
    c = a * b
    d = c + x
    e = d.relu()
    f = e * 2.0
    loss = f.tanh()
    loss.backward()
    return loss, dict(a=a, b=b, x=x, c=c, d=d, e=e, f=f)


def test_known_graph_nodes_edges_and_labels():
    loss, v = known_graph()
    text = viz.to_dot(loss)
    assert text.startswith("digraph arenagrad {") and text.rstrip().endswith("}")
    ns = nodes(text)
    assert len(ns) == 8
    assert len(EDGE.findall(text)) == 7
    assert "// 8 nodes, 7 edges, 1 folded constants" in text
    labels = [label for label, _ in ns.values()]
    # op, data and grad on every node
    assert all("data " in lab and "grad " in lab for lab in labels)
    assert any(lab.startswith("{loss: tanh") for lab in labels)
    assert "{relu | data 4 | grad " in text
    assert "{* | data -6 | grad " in text
    # a's gradient: d loss / d a = (1 - tanh(8)^2) * 2 * b
    ga = f"{(1 - math.tanh(8.0) ** 2) * 2 * -3.0:.4g}"
    assert f"{{param | data 2 | grad {ga}}}" in text
    assert "{input | data 10 | grad 0}" in text
    # the folded 2.0 is drawn as a constant feeding the '*' node
    consts = CONST.findall(text)
    assert [lab for _, lab in consts] == ["2"]


def test_colours_by_kind():
    loss, _ = known_graph()
    text = viz.to_dot(loss)
    colour = {label.split(" |")[0].strip("{"): c for label, c in nodes(text).values()}
    k = viz.KIND_COLORS
    assert colour["loss: tanh"] == k["loss"]
    assert colour["param"] == k["parameter"]
    assert colour["input"] == k["input"]
    assert colour["relu"] == k["activation"]
    assert colour["*"] == k["arithmetic"] and colour["+"] == k["arithmetic"]
    assert len(set(k.values())) == len(k)  # kinds are distinguishable


def test_exp_log_softmax_family_and_several_roots():
    a, b = ag.Value(1.0), ag.Value(2.0)
    probs = ag.softmax([a, b])
    text = viz.to_dot(probs)  # two roots
    assert viz.node_kind(a.exp()) == "exp_log"
    assert viz.node_kind(a.log()) == "exp_log"
    assert viz.node_kind(ag.logsumexp([a, b])) == "exp_log"
    assert viz.node_kind(ag.sum([a, b])) == "arithmetic"
    assert viz.node_kind(a.sigmoid()) == "activation"
    ns = nodes(text)
    assert sum(lab.startswith("{loss: softmax") for lab, _ in ns.values()) == 2
    # a, b, the shared logsumexp node and the two outputs, each drawn once
    assert len(ns) == 5


def test_shared_nodes_are_drawn_once():
    a = ag.Value(3.0)
    s = a * a  # one node with the same input twice
    t = s + a
    text = viz.to_dot(t)
    assert len(nodes(text)) == 3
    assert len(EDGE.findall(text)) == 4  # a->s twice, s->t, a->t


def test_truncation_says_how_many_were_left_out():
    v = ag.Value(0.1)
    for _ in range(99):
        v = v.tanh()  # 100 nodes in a chain
    text = viz.to_dot(v, max_nodes=10)
    assert len(nodes(text)) == 10
    assert "90 more nodes left out (max_nodes=10)" in text
    assert "omitted -> " in text
    quick = viz.to_dot(v, max_nodes=10, count_omitted=False)
    assert "at least 1 more node left out" in quick
    assert "left out" not in viz.to_dot(v, max_nodes=100)


def test_deep_chain_is_walked_without_recursion():
    v = ag.Value(1.0)
    n = 200_000
    for _ in range(n):
        v = v + 1.0
    text = viz.to_dot(v, max_nodes=50)
    assert f"{n + 1 - 50} more nodes left out" in text
    assert len(nodes(text)) == 50


def test_bad_arguments():
    with pytest.raises(ValueError):
        viz.to_dot(ag.Value(1.0), max_nodes=0)
    with pytest.raises(TypeError):
        viz.to_dot([1.0, 2.0])


def test_render_without_dot_keeps_the_dot_file(tmp_path, monkeypatch):
    loss, _ = known_graph()
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(RuntimeError, match=r"graphviz's `dot` program is not installed"):
        viz.render(loss, tmp_path / "g.png")
    assert (tmp_path / "g.dot").read_text().startswith("digraph arenagrad {")
    assert not (tmp_path / "g.png").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")
def test_render_with_dot(tmp_path):
    loss, _ = known_graph()
    png = viz.render(loss, tmp_path / "g.png", dpi=50)
    assert png == tmp_path / "g.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = viz.render(viz.to_dot(loss), tmp_path / "h", format="svg")
    assert svg.suffix == ".svg" and b"<svg" in svg.read_bytes()
