// Fused n-ary ops: sum, mean, dot, logsumexp, softmax, log_softmax.
//
// One node (plus one per output for softmax) instead of n - 1 binary nodes:
// one Python call, one allocation, and an O(n) backward. Operands may be
// Values or numbers. Everything is validated and computed before anything is
// allocated, so a bad argument leaves the graph as it was.
#include "nary.hpp"

#include <new>
#include <stdexcept>
#include <vector>

#include "graph.hpp"
#include "value.hpp"

namespace ag {

namespace {

// Owns one Python reference for the length of a call.
struct Ref {
  PyObject* p = nullptr;
  ~Ref() { Py_XDECREF(p); }
};

// One operand: a node, or a number (node == nullptr).
struct Operand {
  Node* node;
  double num;
  double value() const { return node ? node->data : num; }
};

// The operands of a Python iterable; false with an error set. The items are
// read from a private tuple that `hold` keeps until the new node has taken
// its references: converting an item (a numpy scalar subclass's __float__)
// runs Python code, which could empty the caller's list and free Values
// whose nodes were already read, and a generator's Values have no other owner.
bool gather(PyObject* seq_obj, const char* fn, const char* arg, std::vector<Operand>& out, Ref& hold) {
  PyObject* seq = PySequence_Tuple(seq_obj);
  if (!seq) {
    // An error raised while iterating passes through, as with the builtin
    // sum(); only a non-iterable argument is reported as such.
    if (!Py_TYPE(seq_obj)->tp_iter && !PySequence_Check(seq_obj)) {
      PyErr_Clear();
      PyErr_Format(PyExc_TypeError, "%s(): %s must be an iterable of Values or numbers, not '%.200s'", fn, arg,
                   Py_TYPE(seq_obj)->tp_name);
    }
    return false;
  }
  hold.p = seq;
  Py_ssize_t n = PyTuple_GET_SIZE(seq);
  out.resize(static_cast<size_t>(n));
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* o = PyTuple_GET_ITEM(seq, i);
    if (is_value(o)) {
      out[i] = {node_of(o), 0.0};
      continue;
    }
    double d;
    int r = as_number(o, &d);
    if (r <= 0) {
      if (r == 0)
        PyErr_Format(PyExc_TypeError, "%s(): %s[%zd] is '%.200s', not a Value or a number", fn, arg, i,
                     Py_TYPE(o)->tp_name);
      return false;
    }
    out[i] = {nullptr, d};
  }
  return true;
}

// Rejects sequences whose length does not fit a node's 32-bit operand count.
bool fits(size_t n, const char* fn) {
  if (n > 0x7fffffffu) {
    PyErr_Format(PyExc_ValueError, "%s(): at most 2**31 - 1 operands, got %zu", fn, n);
    return false;
  }
  return true;
}

bool nonempty(const std::vector<Operand>& ops, const char* fn) {
  if (ops.empty()) {
    PyErr_Format(PyExc_ValueError, "%s(): expected at least one value, got an empty sequence", fn);
    return false;
  }
  return true;
}

// gather for the one-sequence ops: also at least one operand, and not too many.
bool gather_values(PyObject* arg, const char* fn, std::vector<Operand>& out, Ref& hold) {
  return gather(arg, fn, "values", out, hold) && nonempty(out, fn) && fits(out.size(), fn);
}

// Constant leaves made for number operands, referenced until the consumer
// node has taken its own references (or the call failed).
struct Keep {
  std::vector<Node*> nodes;
  ~Keep() {
    for (Node* c : nodes) decref(c);
  }
};

// Turns number operands into constant leaves so the node can hold them.
bool nodes_for_numbers(std::vector<Operand>& ops, Keep& keep) {
  for (Operand& o : ops) {
    if (o.node) continue;
    Node* c = const_node(o.num);
    if (!c) return false;
    incref(c);
    keep.nodes.push_back(c);
    o.node = c;
  }
  return true;
}

// The result of an op as a plain leaf: under no_grad, or with no Value operand.
PyObject* leaf_result(int op, double y) {
  if (anomalous(y)) return raise_anomaly(op_name(op), "forward", y);
  Node* n = new_node(y, LEAF, 0);
  return n ? wrap_new(n) : nullptr;
}

// A node for op over filled slots: nodes in [0, nodes), numbers after. It
// takes the slots (freed if the node is not made).
PyObject* node_over_slots(int op, double y, double aux, Slot* s, uint32_t nin, uint32_t nodes, uint8_t flags) {
  if (!grad_enabled || anomalous(y)) {
    pool::free_slots(s, nin);
    return leaf_result(op, y);
  }
  uint8_t rg = 0;
  for (uint32_t i = 0; i < nodes; ++i) rg |= s[i].node->flags & REQUIRES_GRAD;
  Node* n = new_node(y, op, rg | flags);
  if (!n) {
    pool::free_slots(s, nin);
    return nullptr;
  }
  n->aux = aux;
  n->args = s;
  n->nin = nin;
  for (uint32_t i = 0; i < nodes; ++i) incref(s[i].node);
  return wrap_new(n);
}

// A node for an n-ary op over node operands ops[0, k) and `nums` after them.
PyObject* make_nary(int op, double y, double aux, const std::vector<Operand>& ops, size_t k,
                    const double* nums, size_t nnums, uint8_t flags) {
  if (!grad_enabled || k == 0) return leaf_result(op, y);
  uint32_t nin = static_cast<uint32_t>(k + nnums);
  Slot* s = pool::alloc_slots(nin);
  if (!s) return PyErr_NoMemory();
  for (size_t i = 0; i < k; ++i) s[i].node = ops[i].node;
  for (size_t i = 0; i < nnums; ++i) s[k + i].num = nums[i];
  return node_over_slots(op, y, aux, s, nin, static_cast<uint32_t>(k), flags);
}

template <class S>
double forward_of(const std::vector<Operand>& ops, size_t count, double aux) {
  double y;
  S::f(count, [&](size_t i) { return ops[i].value(); }, aux, y);
  return y;
}

// The operand vectors are C++ allocations, which throw when memory runs out;
// CPython must see MemoryError, never an exception unwinding through it.
// Whatever the call had made is released by the destructors on the way out.
template <class F> PyObject* oom_guard(F f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return PyErr_NoMemory();
  } catch (const std::length_error&) {
    return PyErr_NoMemory();
  }
}

}  // namespace

// ---------------------------------------------------------------- fast paths
//
// A layer calls dot once per neuron and a loss calls sum once per batch, so
// the common shapes (lists or tuples of Values, or Values against floats)
// skip the general path's temporary vectors: one pass straight into the
// side-pool slots. Anything else returns nullptr without an error set and
// falls through to the general path.

namespace {

bool is_list_or_tuple(PyObject* o) { return PyList_CheckExact(o) || PyTuple_CheckExact(o); }

PyObject** items_of(PyObject* o, Py_ssize_t* n) {
  *n = PySequence_Fast_GET_SIZE(o);
  return PySequence_Fast_ITEMS(o);
}

// A sum or dot over slots the fast paths filled; takes the slots.
PyObject* finish_nary(int op, Slot* s, uint32_t nin, uint32_t nodes, uint8_t flags) {
  NaryShape sh = nary_shape(op, nin, flags & CONST_Y);
  auto x = [&](size_t i) { return slot_value(s, sh, i); };
  double y;
  if (op == DOT) Dot::f(sh.count, x, 0.0, y);
  else Sum::f(sh.count, x, 0.0, y);
  return node_over_slots(op, y, 0.0, s, nin, nodes, flags);
}

PyObject* fast_sum(PyObject* arg) {
  if (!is_list_or_tuple(arg)) return nullptr;
  Py_ssize_t n;
  PyObject** it = items_of(arg, &n);
  if (n == 0 || n > 0x7fffffff) return nullptr;
  for (Py_ssize_t i = 0; i < n; ++i)
    if (!is_value(it[i])) return nullptr;
  Slot* s = pool::alloc_slots(static_cast<uint32_t>(n));
  if (!s) return PyErr_NoMemory();
  for (Py_ssize_t i = 0; i < n; ++i) s[i].node = node_of(it[i]);
  return finish_nary(SUM, s, static_cast<uint32_t>(n), static_cast<uint32_t>(n), 0);
}

PyObject* fast_dot(PyObject* xs, PyObject* ys) {
  if (!is_list_or_tuple(xs) || !is_list_or_tuple(ys)) return nullptr;
  Py_ssize_t n, ny;
  PyObject** ix = items_of(xs, &n);
  PyObject** iy = items_of(ys, &ny);
  if (n != ny || n == 0 || n > 0x3fffffff) return nullptr;
  // Values against floats (either side) or Values against Values.
  bool x_values = is_value(ix[0]), y_values = is_value(iy[0]);
  if (!x_values && !y_values) return nullptr;
  if (!x_values) {
    std::swap(ix, iy);
    std::swap(x_values, y_values);
  }
  uint32_t un = static_cast<uint32_t>(n);
  Slot* s = pool::alloc_slots(2 * un);
  if (!s) return PyErr_NoMemory();
  for (uint32_t i = 0; i < un; ++i) {
    PyObject* x = ix[i];
    PyObject* y = iy[i];
    if (!is_value(x)) goto general;
    s[i].node = node_of(x);
    if (y_values) {
      if (!is_value(y)) goto general;
      s[un + i].node = node_of(y);
    } else if (PyFloat_CheckExact(y)) {
      s[un + i].num = PyFloat_AS_DOUBLE(y);
    } else {
      goto general;  // ints, numpy scalars, a Value among numbers: the general path
    }
  }
  return finish_nary(DOT, s, 2 * un, y_values ? 2 * un : un, y_values ? 0 : CONST_Y);
general:
  pool::free_slots(s, 2 * un);
  return nullptr;
}

}  // namespace

// ------------------------------------------------------------------- sum

static PyObject* sum_of(PyObject* arg) {
  if (PyObject* r = fast_sum(arg)) return r;
  if (PyErr_Occurred()) return nullptr;
  std::vector<Operand> ops;
  Ref hold;
  if (!gather_values(arg, "sum", ops, hold)) return nullptr;
  // Numbers fold into the node's constant term; only Values become slots.
  double c = 0.0;
  std::vector<Operand> nodes;
  nodes.reserve(ops.size());
  for (const Operand& o : ops) {
    if (o.node) nodes.push_back(o);
    else c += o.num;
  }
  double y = forward_of<Sum>(nodes, nodes.size(), c);
  return make_nary(SUM, y, c, nodes, nodes.size(), nullptr, 0, 0);
}

// ---------------------------------------------------- mean and logsumexp

// One node over all operands, numbers made constant leaves.
template <int OP, class S>
static PyObject* over_all(PyObject* arg, const char* fn) {
  std::vector<Operand> ops;
  Ref hold;
  if (!gather_values(arg, fn, ops, hold)) return nullptr;
  double y = forward_of<S>(ops, ops.size(), 0.0);
  Keep keep;
  if (grad_enabled && !nodes_for_numbers(ops, keep)) return nullptr;
  return make_nary(OP, y, 0.0, ops, ops.size(), nullptr, 0, 0);
}

static PyObject* py_sum(PyObject*, PyObject* arg) {
  return oom_guard([&] { return sum_of(arg); });
}
static PyObject* py_mean(PyObject*, PyObject* arg) {
  return oom_guard([&] { return over_all<MEAN, Mean>(arg, "mean"); });
}
static PyObject* py_logsumexp(PyObject*, PyObject* arg) {
  return oom_guard([&] { return over_all<LOGSUMEXP, LogSumExp>(arg, "logsumexp"); });
}

// ------------------------------------------------------------------- dot

static PyObject* dot_of(PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_Format(PyExc_TypeError, "dot() takes 2 arguments (xs, ys), got %zd", nargs);
    return nullptr;
  }
  if (PyObject* r = fast_dot(args[0], args[1])) return r;
  if (PyErr_Occurred()) return nullptr;
  std::vector<Operand> xs, ys;
  Ref hold_x, hold_y;
  if (!gather(args[0], "dot", "xs", xs, hold_x) || !gather(args[1], "dot", "ys", ys, hold_y)) return nullptr;
  if (xs.size() != ys.size()) {
    PyErr_Format(PyExc_ValueError, "dot(): xs and ys must have the same length, got %zu and %zu", xs.size(),
                 ys.size());
    return nullptr;
  }
  if (!nonempty(xs, "dot") || !fits(2 * xs.size(), "dot")) return nullptr;
  size_t n = xs.size();
  auto all_numbers = [](const std::vector<Operand>& v) {
    for (const Operand& o : v)
      if (o.node) return false;
    return true;
  };
  // A neuron's inputs are often plain floats: keep them as numbers in the
  // side pool (CONST_Y) rather than allocating a constant leaf for each.
  if (!all_numbers(ys) && all_numbers(xs)) std::swap(xs, ys);
  bool const_y = all_numbers(ys);
  std::vector<Operand> slots(xs);
  slots.insert(slots.end(), ys.begin(), ys.end());
  double y = forward_of<Dot>(slots, n, 0.0);
  Keep keep;
  if (grad_enabled && const_y) {
    // All ys are numbers: nodes for any numbers among the xs only.
    std::vector<Operand> head(slots.begin(), slots.begin() + n);
    if (!nodes_for_numbers(head, keep)) return nullptr;
    std::vector<double> nums(n);
    for (size_t i = 0; i < n; ++i) nums[i] = slots[n + i].num;
    return make_nary(DOT, y, 0.0, head, n, nums.data(), n, CONST_Y);
  }
  if (grad_enabled && !nodes_for_numbers(slots, keep)) return nullptr;
  return make_nary(DOT, y, 0.0, slots, 2 * n, nullptr, 0, 0);
}

static PyObject* py_dot(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  return oom_guard([&] { return dot_of(args, nargs); });
}

// --------------------------------------------------------------- softmax

// softmax: a hidden node (Softmax) computes logsumexp L as its value and
// every output y_i at once, and keeps the y_i and pointers to its outputs in
// its slots; then one node per output reads (x_i, that node), aux = i. The
// outputs' backward is the hidden node's: dx from all the outputs' gradients
// at once, O(n), no exp.
static PyObject* softmax_of(PyObject* arg) {
  std::vector<Operand> ops;
  Ref hold;
  if (!gather_values(arg, "softmax", ops, hold)) return nullptr;
  const size_t n = ops.size();
  if (!fits(3 * n, "softmax")) return nullptr;
  std::vector<double> y(n);
  double L;
  Softmax::f(n, [&](size_t i) { return ops[i].value(); }, [&](size_t i) -> double& { return y[i]; }, L);
  if (anomaly_enabled) {
    if (!std::isfinite(L)) return raise_anomaly("softmax", "forward", L);
    for (double v : y)
      if (!std::isfinite(v)) return raise_anomaly("softmax", "forward", v);
  }
  PyObject* out = PyList_New(static_cast<Py_ssize_t>(n));
  if (!out) return nullptr;
  Keep keep;
  PyObject* hw = nullptr;
  if (grad_enabled) {
    Slot* s = nodes_for_numbers(ops, keep) ? pool::alloc_slots(uint32_t(3 * n)) : nullptr;
    if (s) {
      for (size_t i = 0; i < n; ++i) {
        s[i].node = ops[i].node;
        s[n + i].num = y[i];
        s[2 * n + i].node = nullptr;
      }
      hw = node_over_slots(SOFTMAX, L, 0.0, s, uint32_t(3 * n), uint32_t(n), 0);
    } else if (!PyErr_Occurred()) {
      PyErr_NoMemory();
    }
    if (!hw) {
      Py_DECREF(out);
      return nullptr;
    }
  }
  Node* h = hw ? node_of(hw) : nullptr;
  for (size_t i = 0; i < n; ++i) {
    Node* c = new_node(y[i], h ? SOFTMAX_OUT : LEAF, h ? h->flags & REQUIRES_GRAD : 0);
    PyObject* w = nullptr;
    if (c && h) {
      c->in[0] = ops[i].node;
      c->in[1] = h;
      c->aux = double(i);
      incref(c->in[0]);
      incref(h);
      softmax_output_slot(h, uint32_t(i)) = c;
    }
    if (c) w = wrap_new(c);
    if (!w) {
      Py_DECREF(out);  // releases the outputs made so far, then the hidden node via hw
      Py_XDECREF(hw);
      return nullptr;
    }
    PyList_SET_ITEM(out, i, w);
  }
  Py_XDECREF(hw);  // the outputs keep the hidden node alive
  return out;
}

// log_softmax: a hidden logsumexp node L, then one binary node per output
// reading (x_i, L): y_i = x_i - L.
static PyObject* log_softmax_of(PyObject* arg) {
  std::vector<Operand> ops;
  Ref hold;
  if (!gather_values(arg, "log_softmax", ops, hold)) return nullptr;
  size_t n = ops.size();
  double L = forward_of<LogSumExp>(ops, n, 0.0);
  if (anomaly_enabled) {
    if (!std::isfinite(L)) return raise_anomaly("log_softmax", "forward", L);
    for (size_t i = 0; i < n; ++i) {
      double y;
      LogSoftmaxOut::f(ops[i].value(), L, y);
      if (!std::isfinite(y)) return raise_anomaly("log_softmax", "forward", y);
    }
  }
  PyObject* out = PyList_New(static_cast<Py_ssize_t>(n));
  if (!out) return nullptr;
  if (!grad_enabled) {
    for (size_t i = 0; i < n; ++i) {
      double y;
      LogSoftmaxOut::f(ops[i].value(), L, y);
      Node* c = new_node(y, LEAF, 0);
      PyObject* w = c ? wrap_new(c) : nullptr;
      if (!w) {
        Py_DECREF(out);
        return nullptr;
      }
      PyList_SET_ITEM(out, i, w);
    }
    return out;
  }
  Keep keep;
  if (!nodes_for_numbers(ops, keep)) {
    Py_DECREF(out);
    return nullptr;
  }
  PyObject* lw = make_nary(LOGSUMEXP, L, 0.0, ops, n, nullptr, 0, 0);
  if (!lw) {
    Py_DECREF(out);
    return nullptr;
  }
  Node* l = node_of(lw);
  for (size_t i = 0; i < n; ++i) {
    double y;
    LogSoftmaxOut::f(ops[i].node->data, L, y);
    Node* c = new_node(y, LOG_SOFTMAX_OUT, l->flags & REQUIRES_GRAD);
    PyObject* w = nullptr;
    if (c) {
      c->in[0] = ops[i].node;
      c->in[1] = l;
      incref(c->in[0]);
      incref(l);
      w = wrap_new(c);
    }
    if (!w) {
      Py_DECREF(out);  // releases the outputs made so far, then L via lw
      Py_DECREF(lw);
      return nullptr;
    }
    PyList_SET_ITEM(out, i, w);
  }
  Py_DECREF(lw);  // the outputs keep L alive
  return out;
}

static PyObject* py_softmax(PyObject*, PyObject* arg) {
  return oom_guard([&] { return softmax_of(arg); });
}
static PyObject* py_log_softmax(PyObject*, PyObject* arg) {
  return oom_guard([&] { return log_softmax_of(arg); });
}

static PyMethodDef fused_ops[] = {
    {"sum", py_sum, METH_O, "sum($module, values, /)\n--\n\nThe sum of Values and numbers: a Value, one node."},
    {"mean", py_mean, METH_O, "mean($module, values, /)\n--\n\nThe arithmetic mean: a Value, one node."},
    {"dot", (PyCFunction)(void (*)(void))py_dot, METH_FASTCALL,
     "dot($module, xs, ys, /)\n--\n\nThe sum of xs[i] * ys[i]: a Value, one node; lengths must match."},
    {"logsumexp", py_logsumexp, METH_O, "logsumexp($module, values, /)\n--\n\nlog(sum(exp(v))), max-shifted: a Value, one node."},
    {"softmax", py_softmax, METH_O, "softmax($module, values, /)\n--\n\nexp(v_i) / sum(exp(v)) for each i, stable: a list of Values."},
    {"log_softmax", py_log_softmax, METH_O, "log_softmax($module, values, /)\n--\n\nv_i - logsumexp(v) for each i: a list of Values."},
    {nullptr, nullptr, 0, nullptr}};

bool add_fused_ops(PyObject* module) { return PyModule_AddFunctions(module, fused_ops) == 0; }

}  // namespace ag
