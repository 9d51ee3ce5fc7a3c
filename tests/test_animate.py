"""animate_backward: one frame per backward step, in the engine's order, with the engine's
numbers, and the user's gradients untouched. The engine's order is observed independently
through custom nodes, whose Python _backward the engine calls at their place in its sweep."""

from __future__ import annotations

import re

import arenagrad as ag
import pytest
from arenagrad.chain_rule import backward_order, backward_steps
from arenagrad.demos import GraphConfig, run_graph
from conftest import HYPO
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

PLANS = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=25)


def engine_graph(plan, n_leaves=3):
    leaves = [ag.Value(0.3 * (i + 1)) for i in range(n_leaves)]
    nodes = list(leaves)
    for op, i, j in plan:
        x, y = nodes[i % len(nodes)], nodes[j % len(nodes)]
        nodes.append(x * y if op == 0 else (x + y if op == 1 else x.tanh()))
    return nodes[-1], nodes


def custom_graph(plan, n_leaves=3):
    """The same structure as engine_graph, every op a custom node that logs its step."""
    log = []
    nodes = [ag.Value(0.3 * (i + 1)) for i in range(n_leaves)]
    for k, (op, i, j) in enumerate(plan):
        x, y = nodes[i % len(nodes)], nodes[j % len(nodes)]
        kids = (x, y) if op != 2 else (x,)
        node = ag.Value(1.0, kids, "op")

        def _backward(k=k, kids=kids, node=node):
            log.append(k)
            for c in kids:
                c.grad += node.grad

        node._backward = _backward
        node.k = k
        nodes.append(node)
    return nodes[-1], nodes, log


def non_leaf_nodes(out):
    seen, stack = {out}, [out]
    while stack:
        for c in stack.pop().inputs:
            if c not in seen:
                seen.add(c)
                stack.append(c)
    return [v for v in seen if not v.is_leaf]


@HYPO
@given(PLANS)
def test_order_is_the_engines_own(plan):
    out, nodes, log = custom_graph(plan)
    predicted = [v.k for v in backward_order(out)]
    out.backward()
    assert predicted == log  # the order the engine ran the steps in


@HYPO
@given(PLANS)
def test_steps_replay_backward_bit_for_bit_and_restore_grads(plan):
    out, nodes = engine_graph(plan)
    for k, v in enumerate(nodes):
        v.grad = 1000.0 + k  # what the user had: must survive
    before = [v.grad for v in nodes]
    steps = backward_steps(out)
    assert [v.grad for v in nodes] == before
    assert len(steps) == len(non_leaf_nodes(out))
    position = {s.node: k for k, s in enumerate(steps)}
    for s in steps:  # every consumer steps before its inputs
        for c in s.inputs:
            if c in position:
                assert position[s.node] < position[c]
    final = {}
    for s in steps:
        final.update(zip(s.inputs, s.after))
    for v in nodes:
        v.grad = 0.0
    out.backward()
    for v, g in final.items():
        assert g == v.grad  # exactly, not approximately
    for s in steps:
        assert s.grad == s.node.grad


def small_loss():
    a, b = ag.Value(2.0, label="a"), ag.Value(-3.0, label="b")
    c = ag.Value(10.0, label="c")
    x = ag.Value(0.5, requires_grad=False, label="x")
    e = a * b
    d = (e + c) * x
    L = d.tanh() + a * a
    L.label = "L"
    return L


def test_gif_has_one_frame_per_non_leaf_node(tmp_path):
    L = small_loss()
    path = ag.viz.animate_backward(L, tmp_path / "backprop.gif")
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == len(non_leaf_nodes(L)) == 6
        sizes = set()
        for k in range(im.n_frames):
            im.seek(k)
            sizes.add(im.size)
        assert len(sizes) == 1


def test_gif_of_an_mlp_loss(tmp_path):
    model = ag.nn.MLP(2, [3, 1], seed=0)
    loss = (model([0.5, -0.25]) - 1.0) ** 2
    path = ag.viz.animate_backward(loss, tmp_path / "mlp.gif", fps=4)
    with Image.open(path) as im:
        assert im.n_frames == len(non_leaf_nodes(loss)) == len(backward_order(loss))


def test_animating_changes_no_grad(tmp_path):
    L = small_loss()
    L.backward()
    nodes = [L, *non_leaf_nodes(L)] + [c for v in non_leaf_nodes(L) for c in v.inputs]
    before = [v.grad for v in nodes]
    ag.viz.animate_backward(L, tmp_path / "a.gif")
    ag.viz.animate_backward_html(L)
    assert [v.grad for v in nodes] == before


def test_html_variant_has_a_slider_and_one_svg_per_step(tmp_path):
    L = small_loss()
    anim = ag.viz.animate_backward_html(L)
    n = len(non_leaf_nodes(L))
    assert len(anim) == n
    html = anim._repr_html_()
    assert html.count("<svg") == n and html.count('class="ag-frame"') == n
    assert f'type="range" min="0" max="{n - 1}"' in html and "<script>" in html
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")  # self-contained
    # frame 1 seeds the output; the last frame shows a's final gradient arriving
    assert anim.captions[0].startswith(f"step 1 of {n}: L (the output")
    L.backward()
    assert f"grad {L.inputs[1].inputs[0].grad:.4g}" in anim.frames[-1]
    ids = re.findall(r'<marker id="(\w+)"', html)
    assert len(ids) == len(set(ids))  # markers must not collide between frames
    page = anim.save(tmp_path / "bp.html")
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_each_frame_highlights_its_node_and_labels_local_derivatives():
    a, b = ag.Value(2.0, label="a"), ag.Value(-3.0, label="b")
    L = a * b
    L.label = "L"
    (frame,) = ag.viz.animate_backward_html(L).frames
    assert 'stroke="#d93025" stroke-width="3.0"' in frame  # the stepped node
    assert ">\u00d7-3<" in frame and ">\u00d72<" in frame  # d L/d a = b, d L/d b = a
    assert "a.grad += 1 \u00d7 -3" in frame and "b.grad += 1 \u00d7 2" in frame


def test_refusals(tmp_path):
    with pytest.raises(ValueError, match="nothing to animate"):
        ag.viz.animate_backward(ag.Value(1.0), tmp_path / "x.gif")
    v = ag.Value(0.1)
    for _ in range(200):
        v = v + 1.0
    with pytest.raises(ValueError, match="max_nodes"):
        ag.viz.animate_backward_html(v)
    assert len(ag.viz.animate_backward_html(v, max_nodes=250)) == 200
    with pytest.raises(ValueError, match="fps"):
        ag.viz.animate_backward(v, tmp_path / "x.gif", fps=0)


def test_graph_command_animates(tmp_path):
    line = run_graph(GraphConfig(out=str(tmp_path), animate=True))
    gif = tmp_path / "network_backward.gif"
    assert str(gif) in line
    with Image.open(gif) as im:
        assert im.n_frames > 5
    assert not (tmp_path / "network_backward.gif.png").exists()
    run_graph(GraphConfig(out=str(tmp_path / "plain")))
    assert not (tmp_path / "plain" / "network_backward.gif").exists()
