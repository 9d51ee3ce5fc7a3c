"""Plant known defects in the engine and its Python layer, one at a time, and
report which ones the test suite lets through.

    python tools/plant_defects.py                 # every defect: hours (see below)
    python tools/plant_defects.py --only cos-derivative-sign sgd-momentum
    python tools/plant_defects.py --only hvp-drops-mixed-term --tests tests/test_second_order.py
    python tools/plant_defects.py --list

Each defect is one textual edit of one file, applied alone to a pristine copy of
the sources (tracked and untracked files, not ignored ones) in a scratch folder.
A C++ defect is built (cmake, incrementally) and a Python one is copied in; then
the whole suite runs (`pytest -x`) against that copy, with PyTorch blocked for
engine defects so that the finite-difference and hand-written references must
catch them alone. A defect is caught when the suite fails; a survivor is printed
and makes the script exit 1. The pristine copy must pass first.

The suite runs on one core until its first failure, one to five minutes a
defect (more for one caught late in the alphabet), so all of them take hours:
plant the ones a change touches with --only. --tests names test files to run
first; a defect they let through still meets the whole suite.

Every issue that adds a feature adds its defects to DEFECTS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Defect:
    name: str
    file: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str
    why: str  # what a user would see

    @property
    def engine(self) -> bool:
        return self.file.startswith("cpp/")


DEFECTS = [
    # ------------------------------------------------------------------ the op table
    Defect(
        "cos-derivative-sign",
        "cpp/ops.hpp",
        "static double d(double x, double, double) { return -std::sin(x); }",
        "static double d(double x, double, double) { return std::sin(x); }",
        "cos' = +sin",
    ),
    Defect(
        "sigmoid-derivative-factor",
        "cpp/ops.hpp",
        "return y * (1.0 - y); }",
        "return 2.0 * y * (1.0 - y); }",
        "sigmoid' doubled",
    ),
    Defect(
        "pow-square-derivative",
        "cpp/ops.hpp",
        "da = b == 0 ? 0.0 : b * (b == 2 ? a : std::pow(a, b - 1));",
        "da = b == 0 ? 0.0 : b * (b == 2 ? a * a : std::pow(a, b - 1));",
        "d(a ** 2)/da = 2 a a: the shortcut for the square computes the wrong power",
    ),
    Defect(
        "pow-square-derivative-one-ulp",
        "cpp/ops.hpp",
        "da = b == 0 ? 0.0 : b * (b == 2 ? a : std::pow(a, b - 1));",
        "da = b == 0 ? 0.0 : b * (b == 2 ? std::nextafter(a, 0.0) : std::pow(a, b - 1));",
        "d(a ** 2)/da one ulp from micrograd's 2 * a ** 1.0",
    ),
    Defect(
        "pow-square-second-derivative",
        "cpp/ops.hpp",
        "aa = b == 0 || b == 1 ? 0.0 : b * (b - 1) * (b == 2 ? 1.0 : std::pow(a, b - 2));",
        "aa = b == 0 || b == 1 ? 0.0 : b * (b - 1) * (b == 2 ? a : std::pow(a, b - 2));",
        "d2(a ** 2)/da2 = 2 a",
    ),
    Defect("tanh-derivative", "cpp/ops.hpp", "return 1.0 - y * y; }", "return 1.0 - y; }", "tanh' = 1 - y"),
    Defect("log-derivative", "cpp/ops.hpp", "return 1.0 / x; }", "return 1.0 / (x + 1e-12); }", "log' off near 0 only"),
    Defect(
        "sqrt-derivative", "cpp/ops.hpp", "return 0.5 / y; }", "return 0.5 / (y + 1e-9); }", "sqrt' off near 0 only"
    ),
    Defect(
        "abs-kink",
        "cpp/ops.hpp",
        "return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }",
        "return x >= 0 ? 1.0 : -1.0; }",
        "abs' at 0 is 1",
    ),
    Defect(
        "leaky-relu-slope",
        "cpp/ops.hpp",
        "return x > 0 ? 1.0 : p; }",
        "return x > 0 ? 1.0 : 0.01; }",
        "leaky_relu ignores its slope in backward",
    ),
    Defect("div-derivative-sign", "cpp/ops.hpp", "db = -y / b;", "db = y / b;", "d(a/b)/db sign"),
    Defect(
        "pow-base-derivative",
        "cpp/ops.hpp",
        "b * (b == 2 ? a : std::pow(a, b - 1));",
        "b * (b == 2 ? a : std::pow(a, b - 1.0001));",
        "d(a**b)/da slightly off (for exponents other than 2)",
    ),
    Defect(
        "softplus-derivative",
        "cpp/ops.hpp",
        "Sigmoid::f(x, 0, y);\n    return y;",
        "Sigmoid::f(x, 0, y);\n    return y * (1.0 - y);",
        "softplus' = sigmoid'",
    ),
    # ------------------------------------------------------------------ n-ary ops
    Defect(
        "mean-gradient",
        "cpp/ops.hpp",
        "double gi = g / double(n);",
        "double gi = g / double(n + 1);",
        "mean's gradient 1/(n+1)",
    ),
    Defect(
        "dot-gradient-swapped",
        "cpp/ops.hpp",
        "acc(i, g * x(n + i));\n      acc(n + i, g * x(i));",
        "acc(i, g * x(i));\n      acc(n + i, g * x(n + i));",
        "dot's gradients swapped",
    ),
    Defect(
        "logsumexp-unshifted",
        "cpp/ops.hpp",
        "for (size_t i = 0; i < n; ++i) s += vm::exp(x(i) - m);\n    y = m + vm::log(s);",
        "for (size_t i = 0; i < n; ++i) s += vm::exp(x(i));\n    y = vm::log(s);",
        "logsumexp overflows",
    ),
    # ------------------------------------------------------------------ traversal and release
    Defect(
        "shared-node-overwrites",
        "cpp/graph.cpp",
        "if (in->flags & REQUIRES_GRAD) in->grad += g;",
        "if (in->flags & REQUIRES_GRAD) in->grad = g;",
        "a node used twice gets one contribution",
    ),
    Defect(
        "leaf-backward-overwrites",
        "cpp/graph.cpp",
        "root->grad += seed;",
        "root->grad = seed;",
        "leaf.backward() does not accumulate",
    ),
    Defect(
        "intermediate-grads-not-zeroed",
        "cpp/graph.cpp",
        "if (!keep_intermediate) n->grad = 0.0;",
        "if (false) n->grad = 0.0;",
        "a second backward re-adds old intermediate gradients",
    ),
    Defect(
        "release-keeps-inputs",
        "cpp/graph.cpp",
        "if (--in->refs == 0) {",
        "if (--in->refs == 0 && false) {",
        "dropping a graph leaks its inputs",
    ),
    # ------------------------------------------------------------------ compiled replay
    Defect(
        "replay-output-twice-one-seed",
        "cpp/compile.cpp",
        "if (out_index.size() > 1) grad[k] += seeds[i];",
        "if (out_index.size() > 1) grad[k] = seeds[i];",
        "compile([u, u]) seeds u once",
    ),
    Defect(
        "replay-overwrites-leaf-grad",
        "cpp/compile.cpp",
        "leaf_nodes[i]->grad += grad[i];",
        "leaf_nodes[i]->grad = grad[i];",
        "replayed backward does not accumulate into .grad",
    ),
    Defect(
        "replay-binary-rhs-skipped",
        "cpp/compile.hpp",
        "if (e.b != NONE) add(e.b, gk * dy);",
        "if (e.b != NONE && e.a == NONE) add(e.b, gk * dy);",
        "replay drops the second operand's gradient",
    ),
    # ------------------------------------------------------------------ micrograd's dialect
    Defect(
        "custom-backward-never-called",
        "cpp/dialect.cpp",
        "  PyObject* r = PyObject_CallNoArgs(f);",
        "  PyObject* r = (Py_INCREF(Py_None), Py_None);",
        "a Value's _backward closure is ignored",
    ),
    Defect(
        "micrograd-backward-zeroes-intermediates",
        "cpp/graph.cpp",
        "if (!keep_intermediate) n->grad = 0.0;",
        "n->grad = 0.0;",
        "arenagrad.micrograd's repeated backward follows PyTorch",
    ),
    Defect(
        "micrograd-numbers-not-nodes",
        "cpp/value.cpp",
        "if (mg && (!na || (!nb && OP != POW))) {",
        "if (mg && false) {",
        "numbers in micrograd ops stay constants",
    ),
    Defect(
        "attributes-die-with-the-wrapper",
        "cpp/dialect.cpp",
        "  if (r == 0 && v->dict) keep(self);",
        "  if (r == 0 && v->dict && false) keep(self);",
        "a temporary's label is lost when .inputs wraps it again",
    ),
    Defect(
        "ints-become-floats",
        "cpp/value.cpp",
        "  if (is_int(n)) return PyLong_FromDouble(n->data);",
        "",
        "Value(3).data is 3.0, not micrograd's 3",
    ),
    # ------------------------------------------------------------------ optimizers
    Defect(
        "sgd-dampening-ignored",
        "python/arenagrad/optim.py",
        "buf += (1 - self.dampening) * g",
        "buf += g",
        "SGD's dampening has no effect",
    ),
    Defect(
        "sgd-nesterov-ignored",
        "python/arenagrad/optim.py",
        "g = g + self.momentum * buf if self.nesterov else buf",
        "g = buf",
        "nesterov=True is plain momentum",
    ),
    Defect(
        "adam-no-bias-correction",
        "python/arenagrad/optim.py",
        "step_size = self.lr / bias_correction1",
        "step_size = self.lr",
        "Adam's first steps too small",
    ),
    Defect(
        "adam-eps-scaled",
        "python/arenagrad/optim.py",
        "denom = np.sqrt(v) / bias_correction2_sqrt + self.eps",
        "denom = np.sqrt(v) / bias_correction2_sqrt + 10 * self.eps",
        "Adam's eps ten times too large",
    ),
    Defect(
        "steplr-off-by-one",
        "python/arenagrad/optim.py",
        "self.gamma ** (self.last_epoch // self.step_size)",
        "self.gamma ** ((self.last_epoch + 1) // self.step_size)",
        "StepLR decays an epoch early",
    ),
    Defect(
        "zero-grad-keeps-grads",
        "python/arenagrad/nn/module.py",
        '        _core._scatter(self.parameters(), "grad", 0.0)',
        '        _core._scatter([], "grad", 0.0)',
        "Module.zero_grad does nothing",
    ),
    # ------------------------------------------------------------------ losses
    Defect(
        "hinge-negative-margin",
        "python/arenagrad/nn/functional.py",
        "margin = 1 + _as_value(si)",
        "margin = 0.5 + _as_value(si)",
        "hinge margin of -1 labels is 0.5",
    ),
    Defect(
        "mse-mean-denominator",
        "python/arenagrad/nn/functional.py",
        'return total / len(diffs) if reduction == "mean" else total',
        'return total / (len(diffs) + 1) if reduction == "mean" else total',
        "mse's mean divides by n + 1",
    ),
    Defect(
        "cross-entropy-wrong-class",
        "python/arenagrad/nn/functional.py",
        "return logsumexp(row) - row[k]",
        "return logsumexp(row) - row[0]",
        "cross-entropy always against class 0",
    ),
    Defect(
        "to-pm1-zero",
        "python/arenagrad/data.py",
        "return np.asarray(t * 2.0 - 1.0, dtype=out)",
        "return np.asarray(t, dtype=out)",
        "0/1 labels map to 0/1, not -1/+1",
    ),
    # ------------------------------------------------------------------ data loading
    Defect(
        "drop-last-drops-a-full-batch",
        "python/arenagrad/data.py",
        "stop = n - n % bs if self.drop_last else n",
        "stop = n - bs if self.drop_last else n",
        "drop_last drops a full batch",
    ),
    Defect(
        "shuffle-same-order-every-epoch",
        "python/arenagrad/data.py",
        "rng = self._rng if self._rng is not None else rng_from(None)",
        "rng = np.random.default_rng(0)",
        "every epoch sees the same order",
    ),
    # ------------------------------------------------------------------ the trainer
    Defect(
        "trainer-never-zeroes-grads",
        "python/arenagrad/train.py",
        "                    optimizer.zero_grad()\n",
        "",
        "gradients pile up across batches",
    ),
    # Batched replay (cpp/batch.cpp and the block forms in cpp/ops.hpp).
    Defect(
        "batch-sums-drop-last-chunk",
        "cpp/batch.cpp",
        "for (size_t ci = 0; ci < run.nchunks; ++ci) t += p.sums",
        "for (size_t ci = 0; ci + 1 < run.nchunks; ++ci) t += p.sums",
        "a shared leaf misses the last chunk of rows",
    ),
    Defect(
        "batch-shared-sum-drops-last-row",
        "cpp/batch.cpp",
        "sums[p.bound[o]] += lane_sum(gk, d, n);",
        "sums[p.bound[o]] += lane_sum(gk, d, n > 1 ? n - 1 : n);",
        "a binary op's shared operand misses a block's last row",
    ),
    Defect(
        "batch-op-error-before-an-earlier-inf",
        "cpp/batch.cpp",
        "      if (anomaly && lane_anomaly(r0 + r, 0, e, lv)) return;",
        "      if (anomaly && e == NONE && lane_anomaly(r0 + r, 0, e, lv)) return;",
        "under detect_anomaly a later row's domain error is reported instead of an earlier row's inf",
    ),
    Defect(
        "replay-op-error-before-an-earlier-inf",
        "cpp/compile.cpp",
        "  const uint32_t bad = anomaly ? first_nonfinite(v, failed) : NONE;",
        "  const uint32_t bad = anomaly && failed == NONE ? first_nonfinite(v, failed) : NONE;",
        "under detect_anomaly replay reports log(-inf) where eager reports the inf before it",
    ),
    Defect(
        "batch-dot-lanes-reversed",
        "cpp/ops.hpp",
        "    for (size_t i = 0; i < n; ++i) {\n      const Src a = x(i), b = x(n + i);",
        "    for (size_t j = n; j-- > 0;) {\n      const size_t i = j;\n      const Src a = x(i), b = x(n + i);",
        "dot's block form sums in another order than its scalar form (off by ulps)",
    ),
    Defect(
        "batch-clears-softmax-outputs-at-their-own-step",
        "cpp/batch.cpp",
        "        if constexpr (!FusedReverse<S>::value)\n          if (reuse) clear(lg, e, n);",
        "        if (reuse) clear(lg, e, n);",
        "gradients through a softmax in a batch are lost (its outputs' blocks are zeroed before it reads them)",
    ),
    Defect(
        "batch-gradient-blocks-not-cleared",
        "cpp/batch.cpp",
        "          if (reuse) clear(lg, e, n);",
        "          if (false) clear(lg, e, n);",
        "a reused gradient block starts with the last entry's gradient",
    ),
    Defect(
        "batch-gradient-block-freed-before-its-step",
        "cpp/batch.cpp",
        "    c.for_each_operand(e, take);\n    give(e);",
        "    give(e);\n    c.for_each_operand(e, take);",
        "an operand takes the block its consumer's gradient is read from",
    ),
    Defect(
        "batch-binary-self-product-adds-once",
        "cpp/batch.cpp",
        "      gx[r] += g[r] * dx;\n      gx[r] += g[r] * dy;",
        "      gx[r] += g[r] * dx;",
        "x * x over rows gets half its gradient",
    ),
    Defect(
        "batch-binary-adds-partials-swapped",
        "cpp/batch.cpp",
        "    ga[r] += g[r] * dx;\n    gb[r] += g[r] * dy;",
        "    ga[r] += g[r] * dy;\n    gb[r] += g[r] * dx;",
        "a varying binary op's operands get each other's partials",
    ),
    Defect(
        "batch-error-names-block-row",
        "cpp/batch.cpp",
        "      Failure f;\n      f.row = r0 + r;\n      f.entry = e;\n      f.err",
        "      Failure f;\n      f.row = r0;\n      f.entry = e;\n      f.err",
        "an error names its block's first row",
    ),
    # Second order (the op table's d2 / d2t, cpp/second.cpp).
    Defect(
        "tanh-second-derivative",
        "cpp/ops.hpp",
        "return -2.0 * y * (1.0 - y * y); }",
        "return -2.0 * y * (1.0 - y); }",
        "tanh'' = -2y(1 - y)",
    ),
    Defect(
        "hvp-drops-mixed-term",
        "cpp/second.cpp",
        "ga[j] += gdk[j] * da + gk * (along(aa, ta[j]) + along(ab, tb[j]));",
        "ga[j] += gdk[j] * da + gk * along(aa, ta[j]);",
        "a binary op's mixed second derivative is lost on its left operand",
    ),
    Defect(
        "logsumexp-hessian-sign",
        "cpp/ops.hpp",
        "acc(i, j, g * (p[i] * t(i)[j] - p[i] * pt));",
        "acc(i, j, g * (p[i] * t(i)[j] + p[i] * pt));",
        "logsumexp's Hessian diag(p) + p p^T",
    ),
    # ag.softmax as one fused op (Softmax and SoftmaxOut in cpp/ops.hpp).
    Defect(
        "softmax-backward-sign",
        "cpp/ops.hpp",
        "acc(i, x(n + i) * ((gi ? *gi : 0.0) - c));",
        "acc(i, x(n + i) * ((gi ? *gi : 0.0) + c));",
        "softmax's fused backward adds the outputs' weighted sum instead of subtracting it",
    ),
    Defect(
        "softmax-reads-stale-output-grads",
        "cpp/graph.cpp",
        "return o && (!in_sweep || o->stamp == e) ? &o->grad : nullptr;",
        "return o ? &o->grad : nullptr;",
        "softmax's backward counts the gradient an output kept from an earlier backward",
    ),
    Defect(
        "softmax-lanes-reciprocal",
        "cpp/ops.hpp",
        "for (size_t r = 0; r < k; ++r) oi[r] = oi[r] * s[r];",
        "for (size_t r = 0; r < k; ++r) oi[r] = oi[r] / (1.0 / s[r]);",
        "batched softmax divides by (about) the sum where eager multiplies by 1/sum (off by an ulp)",
    ),
    Defect(
        "softmax-outputs-share-a-slot",
        "cpp/nary.cpp",
        "c->aux = double(i);",
        "c->aux = 0.0;",
        "every softmax output claims slot 0 of its softmax node",
    ),
    Defect(
        "hessian-follows-requires-grad",
        "cpp/second.cpp",
        "        leaves.push_back(static_cast<uint32_t>(i));\n        live[i] = 1;",
        "        leaves.push_back(static_cast<uint32_t>(i));\n"
        "        live[i] = (c.leaf_nodes[i]->flags & REQUIRES_GRAD) != 0;",
        "second order skips what flows through leaves that do not require grad (an asymmetric Hessian)",
    ),
    Defect(
        "second-order-rows-read-row-0",
        "cpp/second.cpp",
        "v[c.batch->input_entry[i]] = X[r * k + i];",
        "v[c.batch->input_entry[i]] = X[i];",
        "every row's Hessian is row 0's",
    ),
    # Optimizers read and write parameters in one C loop (cpp/params.cpp).
    Defect(
        "gather-reads-grad-for-data",
        "cpp/params.cpp",
        "o[i] = field == DATA ? node_of(p)->data : node_of(p)->grad;",
        "o[i] = node_of(p)->grad;",
        "an optimizer step reads every Value's gradient as its data",
    ),
    Defect(
        "params-list-read-as-it-is",
        "cpp/params.cpp",
        "if (list_of_values(params)) return py::reinterpret_borrow<py::object>(params);",
        "if (PyList_CheckExact(params.ptr())) return py::reinterpret_borrow<py::object>(params);",
        "a list that starts with a Value is read in place though a later item runs Python code",
    ),
    Defect(
        "params-list-size-trusted",
        "cpp/params.cpp",
        "if (i >= size_t(PyList_GET_SIZE(seq.ptr())))",
        "if (false && i >= size_t(PyList_GET_SIZE(seq.ptr())))",
        "a list of Values emptied by a finalizer during the read is read past its end",
    ),
    Defect(
        "pool-reuses-from-where-it-was",
        "cpp/pool.cpp",
        "  if (w < low_word) low_word = w;\n  --live_nodes;",
        "  --live_nodes;",
        "a node freed below the allocation point is not the next one handed out",
    ),
    Defect(
        "pool-summary-misses-a-freed-word",
        "cpp/pool.cpp",
        "  if (!words[w]) summary_words[w / 64] |= uint64_t(1) << (w % 64);\n",
        "",
        "a word that becomes free again is not marked in the summary, so its nodes are skipped",
    ),
    Defect(
        "pool-failed-growth-keeps-moved-views",
        "cpp/pool.cpp",
        "    refresh_views();  // a reserve that succeeded has moved its vector\n",
        "",
        "out of memory while growing the arena leaves the allocator reading a freed vector: a crash later",
    ),
    Defect(
        "sgd-loop-adds-the-gradient",
        "cpp/params.cpp",
        "store_data(node, node->data - lr * node->grad, false);",
        "store_data(node, node->data + lr * node->grad, false);",
        "plain SGD on a list of Values climbs the loss",
    ),
    Defect(
        "sgd-loop-takes-any-list",
        "cpp/params.cpp",
        "  if (!list_of_values(params)) return false;\n",
        "  if (!PyList_CheckExact(params.ptr())) return false;\n",
        "plain SGD reads a non-Value parameter as if it were a Value's node",
    ),
    Defect(
        "scatter-keeps-int-display",
        "cpp/params.cpp",
        "if (field == DATA) store_data(node_of(p), d, from_int);",
        "if (field == DATA) store_data(node_of(p), d, true);",
        "a Value shows as an int after an optimizer step wrote a float",
    ),
    Defect(
        "batch-width-follows-threads",
        "cpp/batch.cpp",
        "const size_t all = (N + 15) / 16 * 16, half = ((N + 1) / 2 + 15) / 16 * 16;",
        "const size_t all = (N + 15) / 16 * 16,\n                 half = "
        "((N + threads::count() - 1) / threads::count() + 15) / 16 * 16;",
        "the block width follows the thread count, so shared gradients change bits with it",
    ),
    # Second order keeps its buffers between calls (SecondCache in cpp/second.cpp).
    Defect(
        "second-cache-keeps-lanes-of-another-width",
        "cpp/second.cpp",
        "  if (sc.L != L) {\n    sc.lanes.clear();\n    sc.L = L;\n  }",
        "  sc.L = L;",
        "an hvp's one-lane buffers serve a later 16-lane Hessian",
    ),
    # Batched dot backward as products fused into the adds (Dot::d_products).
    Defect(
        "dot-products-wrong-factor",
        "cpp/ops.hpp",
        "      prod(n + i, x(i));",
        "      prod(n + i, x(n + i));",
        "batched dot gives its second operands their own lanes as partials, not the first's",
    ),
    Defect(
        "ordered-total-drops-a-lane",
        "cpp/batch.cpp",
        "  V2 q = __builtin_shufflevector(h, h, 0, 1) + __builtin_shufflevector(h, h, 2, 3);",
        "  V2 q = __builtin_shufflevector(h, h, 0, 1) + __builtin_shufflevector(h, h, 2, 2);",
        "shared gradients over a batch leave out the rows of running sums 3 and 7 and count 2 and 6 twice",
    ),
    # Batched dot reads shared operands and numbers as scalars (Src operands).
    Defect(
        "dot-scalar-operand-read-as-one",
        "cpp/ops.hpp",
        "        for (size_t r = 0; r < w; ++r) y[r] += v[r] * s;",
        "        for (size_t r = 0; r < w; ++r) y[r] += v[r];",
        "batched dot multiplies a row's operand by 1, not by its shared weight",
    ),
    Defect(
        "dot-two-scalars-one-dropped",
        "cpp/ops.hpp",
        "        const double t = a.s * b.s;",
        "        const double t = a.s;",
        "batched dot adds a shared pair's first factor, not the product",
    ),
    Defect(
        "dot-backward-scalar-factor-dropped",
        "cpp/batch.cpp",
        "                  for (size_t r = 0; r < n; ++r) go[r] += gk[r] * f.s;",
        "                  for (size_t r = 0; r < n; ++r) go[r] += gk[r];",
        "a row's operand of a batched dot gets the dot's gradient, not times its shared weight",
    ),
    Defect(
        "lane-sum-scalar-factor-dropped",
        "cpp/batch.cpp",
        ": ordered_total(n, [gk, s](size_t r) { return gk[r] * s; });",
        ": ordered_total(n, [gk, s](size_t r) { return gk[r]; });",
        "a shared operand paired with a number sums the rows' gradients, not times the number",
    ),
    Defect(
        "ordered-total-drops-the-tail",
        "cpp/batch.cpp",
        "  lo[0] = s0;",
        "  (void)s0;",
        "the rows after a block's last full group of eight are left out of shared gradients",
    ),
    Defect(
        "ordered-total-drops-sums-four-to-seven",
        "cpp/batch.cpp",
        "    hi += b;",
        "    (void)b;",
        "rows 4-7 of every group of eight are left out of shared gradients",
    ),
    Defect(
        "ordered-total-tree-loses-a-half",
        "cpp/batch.cpp",
        "  return q[0] + q[1];",
        "  return q[0] + q[0];",
        "the per-row sum tree adds one half twice and drops the other",
    ),
    Defect(
        "numbers-array-takes-any-array",
        "cpp/batch.cpp",
        "  if (py::array_t<double, py::array::c_style>::check_(array) && ",
        "  if (py::isinstance<py::array>(array) && ",
        "rows in Fortran order, strided or of another dtype are read as if C-ordered float64",
    ),
    Defect(
        "compiled-step-seeds-of-another-size",
        "python/arenagrad/nn/compiled.py",
        "            seeds = self._seeds.get(n)",
        "            seeds = next(iter(self._seeds.values()), None)",
        "a CompiledStep reuses the first batch size's output gradients for every size",
    ),
    Defect(
        "compiled-step-penalty-seed-halved",
        "python/arenagrad/nn/compiled.py",
        "                    seeds[0, -1] = 1.0",
        "                    seeds[0, -1] = 0.5",
        "a CompiledStep's penalty gets half its gradient",
    ),
    Defect(
        "compiled-step-penalty-left-out-of-the-loss",
        "python/arenagrad/nn/compiled.py",
        "            loss += float(values[0, -1])",
        "            pass",
        "a CompiledStep's loss leaves its penalty out",
    ),
    Defect(
        "to-pm1-objects-through-float",
        "python/arenagrad/data.py",
        'if y.dtype.kind in "biu" or (y.dtype.kind == "f" and y.dtype.itemsize <= 8):',
        'if y.dtype.kind in "biuO" or (y.dtype.kind == "f" and y.dtype.itemsize <= 8):',
        "object labels are rounded to float64 first: a fraction near 1 or the string '1' passes",
    ),
    Defect(
        "compiled-step-penalty-may-read-the-sample",
        "python/arenagrad/nn/compiled.py",
        "if any(id(v) in read for v in inputs):",
        "if False:",
        "a penalty that reads the sample is replayed as row 0's, silently",
    ),
    Defect(
        "to-pm1-allows-mixed-labels",
        "python/arenagrad/data.py",
        "if not np.count_nonzero(t != (t > 0.5)):",
        "if not np.count_nonzero((t != (t > 0.5)) & (t != -1)):",
        "to_pm1 takes 0, 1 and -1 together",
    ),
    # Replay keeps softplus's exp for backward (Keeps in cpp/ops.hpp).
    Defect(
        "kept-not-made-at-compile",
        "cpp/compile.cpp",
        "if constexpr (Keeps<S>::value) S::f(val[a[k]], aux[k], y, kept[keep_at[k]]);",
        "if constexpr (Keeps<S>::value) (void)y;",
        "backward straight after compile reads softplus's kept exp as 0",
    ),
    Defect(
        "kept-not-restored-after-a-failed-forward",
        "cpp/compile.cpp",
        "replay(size(), [&] { refailed = run_forward(val.data(), again, kept.data()); });",
        "replay(size(), [&] { refailed = run_forward(val.data(), again); });",
        "after a failed forward, softplus's backward reads the failed forward's exp",
    ),
    Defect(
        "kept-derivative-wrong-branch",
        "cpp/ops.hpp",
        "static double d_kept(double x, double kept) { return Sigmoid::of_exp(x, kept); }",
        "static double d_kept(double x, double kept) { return Sigmoid::of_exp(-x, kept); }",
        "replayed softplus's gradient is 1 - sigmoid(x)",
    ),
    # Batched lane loops run exp's near form (|x| <= 708) first (vmath.hpp's
    # exp_near, Softplus and Sigmoid's f_near, Softmax's f_lanes).
    Defect(
        "near-form-kept-for-far-rows",
        "cpp/batch.cpp",
        "if (!far) return bad;",
        "return bad;",
        "batched softplus of 710 (or inf, or NaN) is whatever exp_near makes of it",
    ),
    Defect(
        "kept-from-the-near-form-for-far-rows",
        "cpp/batch.cpp",
        "    if constexpr (Keeps<S>::value) bad |= S::f(x[r], aux, y[r], kept[r]);",
        "    if constexpr (Keeps<S>::value) bad |= S::f(x[r], aux, y[r]);",
        "batched softplus's gradient at 710 is made from what exp_near made of it",
    ),
    # Batched softplus keeps its exp for backward too (Batch::kept_slot).
    Defect(
        "batched-derivative-reads-the-value-not-the-kept-exp",
        "cpp/batch.cpp",
        "unary_d<S>(lanes(lv, c.a[e]), y, kept_lanes(lv, e),",
        "unary_d<S>(lanes(lv, c.a[e]), y, y,",
        "batched softplus's gradient is sigmoid's formula applied to softplus(x), not to exp(-|x|)",
    ),
    Defect(
        "softmax-near-form-kept-for-far-rows",
        "cpp/ops.hpp",
        "      if (far)  //",
        "      if (false)  //",
        "a batched softmax of (0, -800) or with an inf is whatever exp_near makes of it",
    ),
    Defect(
        "sum-lanes-reassociated",
        "cpp/ops.hpp",
        "y[r] = (((s + a[r]) + b[r]) + c[r]) + d[r];",
        "y[r] = (s + a[r]) + ((b[r] + c[r]) + d[r]);",
        "a batched sum of four or more rounds differently from eager's",
    ),
    Defect(
        "softmax-far-rows-misread",
        "cpp/ops.hpp",
        "          if (!row_far) continue;",
        "          if (row_far) continue;",
        "a batched softmax redoes the near rows of a block and keeps exp_near's garbage for the far ones",
    ),
    Defect(
        "near-range-too-wide",
        "cpp/vmath.hpp",
        "return x >= -708.0 && x <= 709.0;",
        "return x >= -720.0 && x <= 720.0;",
        "batched exp(-708.5) is 0, not the subnormal eager gives",
    ),
    Defect(
        "exp-scaled-range-too-wide",
        "cpp/vmath.hpp",
        "if (__builtin_expect(!(x >= -660.0 && x <= 709.0), 0)) return exp_far(x, e);",
        "if (__builtin_expect(!(x >= -706.0 && x <= 709.0), 0)) return exp_far(x, e);",
        "exp's low term is subnormal below about -695: the last bit of e^x differs from exp_near's",
    ),
    Defect(
        "exp-near-form-for-subnormal-results",
        "cpp/ops.hpp",
        "static bool near(double x) { return vm::exp_is_near(x); }",
        "static bool near(double x) { return x <= 709.0; }",
        "a batched exp of -720 takes exp_near's meaningless bits, not the subnormal eager gives",
    ),
    Defect(
        "log-split-drops-the-exponent-sign",
        "cpp/vmath.hpp",
        "m = from_bits(bits(x) - (d & (uint64_t(0xFFF) << 52)));",
        "m = from_bits(bits(x) - (d & (uint64_t(0x7FF) << 52)));",
        "log of x below sqrt(1/2) reduces by the wrong power of two",
    ),
    # The pool runs Python's signal handlers while its threads work (threads.cpp).
    Defect(
        "forked-child-waits-for-the-parents-threads",
        "cpp/threads.cpp",
        "  if (pool != &p) return false;",
        "  if (false) return false;",
        "a child forked by a signal handler during a batch waits for ever on pool threads it does not have",
    ),
    Defect(
        "value-and-grad-leaves-nothing-for-backward",
        "cpp/batch.cpp",
        "  leave_for_backward(p, uval, N);\n  return py::make_tuple",
        "  p.ready = false;\n  return py::make_tuple",
        "backward() after value_and_grad(rows) is the single-row backward at the graph's own values",
    ),
]


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Scratch:
    """A pristine copy of the sources, its build and an importable package."""

    SITE = """import os, sys
# Use this folder's arenagrad, not an editable install of the checkout.
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower() and "skbc" not in repr(f).lower()]
if os.environ.get("PLANT_BLOCK_TORCH") == "1":
    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError("No module named 'torch' (blocked by plant_defects)", name="torch")
            return None
    sys.meta_path.insert(0, _NoTorch())
"""

    def __init__(self, where: Path):
        self.where = where
        self.src = where / "src"
        self.build = where / "build"
        self.pkg = where / "pkg"
        self.site = where / "site"
        files = sh(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
        for rel in filter(None, files.split("\0")):
            if (ROOT / rel).is_file():
                (self.src / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, self.src / rel)
        self.site.mkdir(parents=True)
        (self.site / "sitecustomize.py").write_text(self.SITE)
        pybind11_dir = sh([sys.executable, "-m", "pybind11", "--cmakedir"]).stdout.strip()
        sh(
            [
                "cmake",
                "-S",
                str(self.src),
                "-B",
                str(self.build),
                "-G",
                "Ninja",
                "-DCMAKE_BUILD_TYPE=Release",
                f"-Dpybind11_DIR={pybind11_dir}",
                f"-DPython_EXECUTABLE={sys.executable}",
            ]
        )

    def make(self) -> None:
        """Builds the engine (incrementally) and lays out the package."""
        sh(["cmake", "--build", str(self.build), "-j2"])
        shutil.rmtree(self.pkg, ignore_errors=True)
        shutil.copytree(self.src / "python" / "arenagrad", self.pkg / "arenagrad")
        for built in list(self.build.glob("_core*.so")) + list(self.build.glob("_core.pyi")):
            shutil.copy2(built, self.pkg / "arenagrad")

    def pytest(self, block_torch: bool, files: list[str] | None = None) -> subprocess.CompletedProcess:
        """The suite, or only `files`, against the planted copy."""
        shutil.rmtree(self.src / ".hypothesis", ignore_errors=True)  # no examples carried over
        env = {
            **os.environ,
            "PYTHONPATH": f"{self.site}{os.pathsep}{self.pkg}",
            "PLANT_BLOCK_TORCH": "1" if block_torch else "0",
        }
        # Not the table's own test: it reads the planted file, finds the edit
        # and fails, which would count every defect the suite lets through
        # as caught.
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-x",
                "-q",
                "-p",
                "no:cacheprovider",
                "--ignore=tests/test_plant_defects_table.py",
                *(files or []),
            ],
            cwd=self.src,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )


def plant(scratch: Scratch, d: Defect, first: list[str] | None = None) -> tuple[bool, str]:
    """(caught, the first failing test or why it survived); the test files `first`
    run before the whole suite."""
    path = scratch.src / d.file
    pristine = path.read_text()
    count = pristine.count(d.old)
    if count != 1:
        raise SystemExit(f"{d.name}: the text to replace occurs {count} times in {d.file}; update DEFECTS")
    try:
        path.write_text(pristine.replace(d.old, d.new))
        try:
            scratch.make()
        except subprocess.CalledProcessError as e:
            return True, "does not build: " + (e.stdout + e.stderr).strip().splitlines()[-1]
        proc = scratch.pytest(block_torch=d.engine, files=first) if first else None
        if proc is None or proc.returncode == 0:
            proc = scratch.pytest(block_torch=d.engine)
    finally:
        path.write_text(pristine)
        os.utime(path)  # newer than its object file: the next build recompiles it
    failed = [line for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return proc.returncode != 0, (failed[0] if failed else proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", metavar="NAME", help="plant only these defects")
    p.add_argument("--list", action="store_true", help="list the defects and exit")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.add_argument("--tests", nargs="+", metavar="FILE", help="test files to run first for each defect")
    args = p.parse_args(argv)
    chosen = [d for d in DEFECTS if not args.only or d.name in args.only]
    if args.list or not chosen:
        for d in DEFECTS:
            print(f"{d.name:32} {d.file:32} {d.why}")
        return 0 if args.list else 2
    where = Path(tempfile.mkdtemp(prefix="plant-"))
    try:
        scratch = Scratch(where)
        scratch.make()
        base = scratch.pytest(block_torch=True)
        if base.returncode != 0:
            print(base.stdout[-3000:])
            raise SystemExit("the pristine copy fails its suite with torch blocked: fix that first")
        # Python defects first: they share the pristine build.
        survivors = []
        for d in sorted(chosen, key=lambda d: d.engine):
            t0 = time.monotonic()
            caught, detail = plant(scratch, d, args.tests)
            print(
                f"{'caught  ' if caught else 'SURVIVED'} {d.name:32} {time.monotonic() - t0:5.0f} s  {detail}",
                flush=True,
            )
            if not caught:
                survivors.append(d.name)
        print(
            f"{len(chosen) - len(survivors)} of {len(chosen)} defects caught"
            + (f"; survivors: {', '.join(survivors)}" if survivors else "")
        )
        return 1 if survivors else 0
    finally:
        if not args.keep:
            shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
