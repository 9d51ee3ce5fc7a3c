// Pickling and deep-copying Values (pickle.hpp).
#include "pickle.hpp"

#include <vector>

#include "graph.hpp"
#include "value.hpp"

namespace ag {

// The flags a node's meaning depends on (the rest are bookkeeping).
static constexpr uint8_t KEPT_FLAGS = REQUIRES_GRAD | CONST_A | CONST_B | CONST_Y | INT_DATA | MICROGRAD;

static PyObject* restore_function() {
  PyObject* m = PyImport_ImportModule("arenagrad._core");
  if (!m) return nullptr;
  PyObject* f = PyObject_GetAttrString(m, "_restore");
  Py_DECREF(m);
  return f;
}

static PyObject* attrs_or_none(PyObject* wrapper) {
  PyObject* d = wrapper ? reinterpret_cast<PyValue*>(wrapper)->dict : nullptr;
  if (d && PyDict_GET_SIZE(d)) return PyDict_Copy(d);
  Py_RETURN_NONE;
}

PyObject* value_reduce(PyObject* self, PyObject*) {
  Node* root = node_of(self);
  PyObject* restore = restore_function();
  if (!restore) return nullptr;
  PyObject* cls = reinterpret_cast<PyObject*>(Py_TYPE(self));
  if (root->op == LEAF) {
    PyObject* attrs = attrs_or_none(self);
    PyObject* data = attrs ? PyObject_GetAttrString(self, "data") : nullptr;  // an int stays an int
    PyObject* r = data ? Py_BuildValue("(N(OOdOO))", restore, cls, data, root->grad,
                                       (root->flags & REQUIRES_GRAD) ? Py_True : Py_False, attrs)
                       : nullptr;
    Py_XDECREF(data);
    Py_XDECREF(attrs);
    if (!r) Py_DECREF(restore);
    return r;
  }
  if (in_traversal()) {
    Py_DECREF(restore);
    PyErr_SetString(PyExc_RuntimeError, "cannot pickle a graph inside a Python _backward");
    return nullptr;
  }
  if (!reserve_traversal()) {
    Py_DECREF(restore);
    return PyErr_NoMemory();
  }
  // Every reachable node, consumers first; reversed, inputs come first.
  std::vector<Node*> order;
  try {
    Traversing busy;
    auto all = [](Node*) { return true; };
    count_consumers(&root, 1, all, [](Node*) {});
    consumers_first(&root, 1, all, [&](Node* n) { order.push_back(n); });
  } catch (const std::bad_alloc&) {
    Py_DECREF(restore);
    return PyErr_NoMemory();
  }
  for (Node* n : order)
    if (n->op == CUSTOM) {
      Py_DECREF(restore);
      PyErr_SetString(PyExc_TypeError,
                      "cannot pickle or copy a graph with a Python _backward (Value(data, children, op)); "
                      "its closure refers to the Values of this process");
      return nullptr;
    }
  // Numbering: leaves 0..L-1 in order of appearance, then the other nodes.
  std::vector<Node*> leaves, ops;
  for (size_t i = order.size(); i-- > 0;) (order[i]->op == LEAF ? leaves : ops).push_back(order[i]);
  for (size_t i = 0; i < leaves.size(); ++i) leaves[i]->index = static_cast<uint32_t>(i);
  for (size_t i = 0; i < ops.size(); ++i) ops[i]->index = static_cast<uint32_t>(leaves.size() + i);
  PyObject *leaf_list = PyList_New(0), *table = PyList_New(0), *attrs = PyDict_New();
  bool ok = leaf_list && table && attrs;
  for (size_t i = 0; ok && i < leaves.size(); ++i) {
    PyObject* w = wrap(leaves[i]);
    ok = w && PyList_Append(leaf_list, w) == 0;
    Py_XDECREF(w);
  }
  for (size_t i = 0; ok && i < ops.size(); ++i) {
    Node* n = ops[i];
    PyObject* operands;
    if (is_nary(n->op)) {
      NaryShape sh = nary_shape(n);
      // A softmax node's last third points at its outputs, which restore re-links.
      const uint32_t kept = n->op == SOFTMAX ? 2 * sh.nodes : n->nin;
      operands = PyTuple_New(kept);
      for (uint32_t k = 0; operands && k < kept; ++k) {
        PyObject* o = k < sh.nodes ? PyLong_FromUnsignedLong(n->args[k].node->index) : PyFloat_FromDouble(n->args[k].num);
        if (!o) Py_CLEAR(operands);
        else PyTuple_SET_ITEM(operands, k, o);
      }
    } else {
      PyObject* a = n->in[0] ? PyLong_FromUnsignedLong(n->in[0]->index) : (Py_INCREF(Py_None), Py_None);
      PyObject* b = n->in[1] ? PyLong_FromUnsignedLong(n->in[1]->index) : (Py_INCREF(Py_None), Py_None);
      operands = (a && b) ? PyTuple_Pack(2, a, b) : nullptr;
      Py_XDECREF(a);
      Py_XDECREF(b);
    }
    PyObject* row = operands ? Py_BuildValue("(iidddN)", int(n->op), int(n->flags & KEPT_FLAGS), n->data, n->grad,
                                             n->aux, operands)
                             : nullptr;
    ok = row && PyList_Append(table, row) == 0;
    Py_XDECREF(row);
    if (ok && n->py) {
      PyObject* a = attrs_or_none(n->py);
      if (!a) ok = false;
      else if (a != Py_None) {
        PyObject* key = PyLong_FromSize_t(leaves.size() + i);
        ok = key && PyDict_SetItem(attrs, key, a) == 0;
        Py_XDECREF(key);
      }
      Py_XDECREF(a);
    }
  }
  if (!ok) {
    Py_DECREF(restore);
    Py_XDECREF(leaf_list);
    Py_XDECREF(table);
    Py_XDECREF(attrs);
    return nullptr;
  }
  return Py_BuildValue("(N(ONNNI))", restore, reinterpret_cast<PyObject*>(Py_TYPE(self)), leaf_list, table, attrs,
                       unsigned(root->index));
}

// ------------------------------------------------------------------ restore

static PyObject* bad(const char* what) {
  PyErr_Format(PyExc_ValueError, "cannot restore a Value: %s (a corrupted or foreign pickle?)", what);
  return nullptr;
}

// Sets the attributes in `attrs` (a dict or None) on `obj`; false with an error set.
static bool set_attrs(PyObject* obj, PyObject* attrs) {
  if (attrs == Py_None) return true;
  if (!PyDict_Check(attrs)) return bad("attributes are not a dict"), false;
  Py_ssize_t pos = 0;
  PyObject *k, *v;
  while (PyDict_Next(attrs, &pos, &k, &v))
    if (!PyUnicode_Check(k) || PyObject_SetAttr(obj, k, v) < 0) {
      if (!PyErr_Occurred()) bad("an attribute name is not a str");
      return false;
    }
  return true;
}

static PyObject* restore_leaf(PyObject* cls, PyObject* args) {
  double grad;
  int rg;
  PyObject *cls_again, *data_obj, *attrs;
  if (!PyArg_ParseTuple(args, "OOdpO", &cls_again, &data_obj, &grad, &rg, &attrs)) return nullptr;
  // (value_restore sent only an int or a float here.) The class's own constructor, which also marks an int's data as one.
  PyObject* a = Py_BuildValue("(O)", data_obj);
  PyObject* kw = a ? Py_BuildValue("{s:O}", "requires_grad", rg ? Py_True : Py_False) : nullptr;
  PyObject* obj = kw ? PyObject_Call(cls, a, kw) : nullptr;
  Py_XDECREF(a);
  Py_XDECREF(kw);
  if (!obj) return nullptr;
  if (!is_value(obj)) {  // a subclass whose __new__ made something else
    Py_DECREF(obj);
    return bad("the class made something that is not a Value");
  }
  node_of(obj)->grad = grad;
  if (!set_attrs(obj, attrs)) Py_CLEAR(obj);
  return obj;
}

// Reads an operand index: an int below `limit`; -1 with an error set.
static long operand_index(PyObject* o, size_t limit) {
  long k = PyLong_Check(o) ? PyLong_AsLong(o) : -1;
  if (k < 0 || size_t(k) >= limit) {
    if (!PyErr_Occurred()) bad("an operand refers to a node that is not before it");
    else PyErr_Clear(), bad("an operand index is out of range");
    return -1;
  }
  return k;
}

// Builds node `row` of the table over `nodes` (those before it); null with an error set.
static Node* restore_node(PyObject* row, const std::vector<Node*>& nodes) {
  int op, flags;
  double data, grad, aux;
  PyObject* operands;
  if (!PyTuple_Check(row) || !PyArg_ParseTuple(row, "iidddO!", &op, &flags, &data, &grad, &aux, &PyTuple_Type, &operands)) {
    PyErr_Clear();
    return bad("a malformed node"), nullptr;
  }
  bool valid_op = (is_unary(op) || is_binary(op) || (is_nary(op) && op != CUSTOM));
  if (!valid_op || (flags & ~KEPT_FLAGS)) return bad("an unknown op or flag"), nullptr;
  Py_ssize_t k = PyTuple_GET_SIZE(operands);
  Node* n;
  if (!is_nary(op)) {
    if (k != 2) return bad("a unary or binary node without two operand entries"), nullptr;
    Node* in[2] = {nullptr, nullptr};
    for (int s = 0; s < 2; ++s) {
      PyObject* o = PyTuple_GET_ITEM(operands, s);
      bool constant = o == Py_None;
      bool want_constant = is_unary(op) ? s == 1 : bool(flags & (s ? CONST_B : CONST_A));
      if (constant != want_constant) return bad("operands that do not match the node's flags"), nullptr;
      if (constant) continue;
      long ix = operand_index(o, nodes.size());
      if (ix < 0) return nullptr;
      in[s] = nodes[ix];
    }
    if (is_binary(op) && !in[0] && !in[1]) return bad("a binary node with no Value operand"), nullptr;
    if (op == SOFTMAX_OUT) {
      Node probe{};
      probe.in[0] = in[0];
      probe.in[1] = in[1];
      probe.aux = aux;
      if (!softmax_output_matches(&probe) || softmax_output_slot(in[1], uint32_t(aux)))
        return bad("a softmax output that does not match its softmax node"), nullptr;
    }
    n = new_node(data, op, uint8_t(flags));
    if (!n) return nullptr;
    n->in[0] = in[0];
    n->in[1] = in[1];
    for (Node* x : in)
      if (x) incref(x);
    if (op == SOFTMAX_OUT) softmax_output_slot(in[1], uint32_t(aux)) = n;
  } else {
    bool cy = flags & CONST_Y;
    if (k == 0 || k > (1 << 30) || ((op == DOT || op == SOFTMAX) && k % 2) || (cy && op != DOT))
      return bad("an n-ary node with a wrong number of operands"), nullptr;
    uint32_t nn = cy || op == SOFTMAX ? uint32_t(k / 2) : uint32_t(k);
    // A softmax node gets a last third for its outputs, which link themselves as they are restored.
    const uint32_t nin = op == SOFTMAX ? uint32_t(k / 2 * 3) : uint32_t(k);
    std::vector<Slot> slots(nin);
    for (Py_ssize_t s = 0; s < k; ++s) {
      PyObject* o = PyTuple_GET_ITEM(operands, s);
      if (uint32_t(s) < nn) {
        long ix = operand_index(o, nodes.size());
        if (ix < 0) return nullptr;
        slots[s].node = nodes[ix];
      } else {
        if (!PyFloat_Check(o)) return bad("a constant operand that is not a float"), nullptr;
        slots[s].num = PyFloat_AS_DOUBLE(o);
      }
    }
    Slot* sl = pool::alloc_slots(nin);
    n = sl ? new_node(data, op, uint8_t(flags)) : nullptr;
    if (!n) {
      if (sl) pool::free_slots(sl, nin);
      else PyErr_NoMemory();
      return nullptr;
    }
    for (uint32_t s = 0; s < nin; ++s) {
      sl[s] = slots[s];
      if (s < nn) incref(sl[s].node);
    }
    n->args = sl;
    n->nin = nin;
  }
  n->grad = grad;
  n->aux = aux;
  return n;
}

static PyObject* restore_graph(PyObject* cls, PyObject* leaves, PyObject* table, PyObject* attrs, Py_ssize_t root) {
  if (!PyList_Check(leaves) || !PyList_Check(table) || !PyDict_Check(attrs)) return bad("a malformed graph");
  std::vector<Node*> nodes;
  Py_ssize_t L = PyList_GET_SIZE(leaves), T = PyList_GET_SIZE(table);
  if (root < L || root >= L + T) return bad("the root is not one of the graph's nodes");
  try {
    nodes.reserve(size_t(L + T));
  } catch (const std::exception&) {
    return PyErr_NoMemory();
  }
  for (Py_ssize_t i = 0; i < L; ++i) {
    PyObject* w = PyList_GET_ITEM(leaves, i);
    if (!is_value(w) || node_of(w)->op != LEAF) return bad("a leaf that is not a leaf Value");
    nodes.push_back(node_of(w));
  }
  // Each restored node is held here (refs + 1) until the root holds what it needs.
  auto drop_restored = [&]() {
    for (size_t i = size_t(L); i < nodes.size(); ++i) decref(nodes[i]);
  };
  for (Py_ssize_t i = 0; i < T; ++i) {
    Node* n = restore_node(PyList_GET_ITEM(table, i), nodes);
    if (!n) {
      drop_restored();
      return nullptr;
    }
    incref(n);
    nodes.push_back(n);
  }
  PyObject* out = wrap(nodes[root]);
  bool ok = out != nullptr;
  Py_ssize_t pos = 0;
  PyObject *k, *v;
  while (ok && PyDict_Next(attrs, &pos, &k, &v)) {
    long ix = operand_index(k, nodes.size());
    PyObject* w = ix >= 0 ? wrap(nodes[ix]) : nullptr;
    ok = w && set_attrs(w, v);
    Py_XDECREF(w);
  }
  drop_restored();
  if (!ok) Py_CLEAR(out);
  (void)cls;  // non-leaf results are plain Values (or micrograd's, by their flag), as ops make them
  return out;
}

PyObject* value_restore(PyObject*, PyObject* args) {
  if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) != 5) return bad("wrong number of fields");
  PyObject* cls = PyTuple_GET_ITEM(args, 0);
  if (!PyType_Check(cls) || !PyType_IsSubtype(reinterpret_cast<PyTypeObject*>(cls), &ValueType))
    return bad("the class is not a Value class");
  PyObject* second = PyTuple_GET_ITEM(args, 1);
  if (PyFloat_Check(second) || PyLong_Check(second)) return restore_leaf(cls, args);
  Py_ssize_t root = PyLong_Check(PyTuple_GET_ITEM(args, 4)) ? PyLong_AsSsize_t(PyTuple_GET_ITEM(args, 4)) : -1;
  if (root == -1 && PyErr_Occurred()) PyErr_Clear();
  return restore_graph(cls, second, PyTuple_GET_ITEM(args, 2), PyTuple_GET_ITEM(args, 3), root);
}

}  // namespace ag
