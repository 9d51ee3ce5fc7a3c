// The Value type's number slots, methods and attributes.
#include "value.hpp"

#include <cmath>
#include <cstdint>
#include <string>

#include "dialect.hpp"
#include "graph.hpp"
#include "pickle.hpp"

namespace ag {

// ------------------------------------------------------------ wrapper objects

// Recycled Value objects: allocation is a large share of an op's cost.
static constexpr int FREE_MAX = 4096;
static PyValue* free_values[FREE_MAX];
static int nfree = 0;

// arenagrad.micrograd's Value class: the wrapper of every MICROGRAD node.
static PyTypeObject* micrograd_class = nullptr;

bool set_micrograd_class(PyObject* cls) {
  if (!PyType_Check(cls) || !PyType_IsSubtype(reinterpret_cast<PyTypeObject*>(cls), &ValueType) ||
      reinterpret_cast<PyTypeObject*>(cls)->tp_basicsize != ValueType.tp_basicsize) {
    PyErr_SetString(PyExc_TypeError, "expected a subclass of Value with __slots__ = ()");
    return false;
  }
  Py_INCREF(cls);
  Py_XSETREF(micrograd_class, reinterpret_cast<PyTypeObject*>(cls));
  return true;
}

// A new instance of a Python subclass (tp_alloc zeroes it and tracks it, as
// every instance of a Python class) as n's wrapper; null if out of memory.
static PyObject* wrap_in(PyTypeObject* type, Node* n) {
  PyObject* o = type->tp_alloc(type, 0);
  if (!o) return nullptr;
  reinterpret_cast<PyValue*>(o)->node = n;
  n->py = o;
  n->flags |= PY_TRACKED;
  incref(n);
  return o;
}

PyObject* wrap(Node* n) {
  if (n->py) {
    Py_INCREF(n->py);
    return n->py;
  }
  if ((n->flags & MICROGRAD) && micrograd_class) return wrap_in(micrograd_class, n);
  PyValue* v;
  if (nfree) {
    v = free_values[--nfree];
    PyObject_Init(reinterpret_cast<PyObject*>(v), &ValueType);
  } else {
    v = PyObject_GC_New(PyValue, &ValueType);  // not tracked until it has a __dict__
    if (!v) return nullptr;
  }
  v->node = n;
  v->dict = nullptr;
  n->py = reinterpret_cast<PyObject*>(v);
  incref(n);
  return reinterpret_cast<PyObject*>(v);
}

static void value_dealloc(PyObject* self) {
  PyValue* v = reinterpret_cast<PyValue*>(self);
  Node* n = v->node;
  // A subclass instance is always tracked here (subtype_dealloc tracks it
  // again before calling its base's dealloc), even one that started as a
  // plain Value and had its __class__ assigned.
  if ((n->flags & PY_TRACKED) || Py_TYPE(self) != &ValueType) PyObject_GC_UnTrack(self);
  // Detach from the node before the attributes go: freeing them runs Python
  // code, which must not find this dying wrapper through the node.
  n->flags &= ~(PY_TRACKED | OWNS_PY);
  n->py = nullptr;
  decref(n);
  Py_CLEAR(v->dict);
  if (Py_TYPE(self) == &ValueType && nfree < FREE_MAX) free_values[nfree++] = v;
  else Py_TYPE(self)->tp_free(self);
}

// ------------------------------------------------------------------ numbers

// An operand of a binary op or comparison: a Value (*node set) or a number
// (*node null). As as_number: 1, 0 for neither, -1 with an error set.
static inline int operand(PyObject* o, Node** node, double* v) {
  if (is_value(o)) {
    *node = node_of(o);
    *v = (*node)->data;
    return 1;
  }
  *node = nullptr;
  return as_number(o, v);
}

// Both operands of a binary op or comparison, with operand's 1 / 0 / -1.
static inline int operands(PyObject* a, PyObject* b, Node** na, double* va, Node** nb, double* vb) {
  int r = operand(a, na, va);
  return r > 0 ? operand(b, nb, vb) : r;
}

// What a binary slot returns when operands() gave 0 or -1.
static PyObject* declined(int r) {
  if (r < 0) return nullptr;
  Py_RETURN_NOTIMPLEMENTED;
}

// Whether n's data is an int's (INT_DATA, a bit n-ary nodes use as CONST_Y),
// and still integral and exact: replay and set_data write floats over it.
static inline bool is_int(const Node* n) {
  return (n->flags & INT_DATA) && !is_nary(n->op) && n->data == std::floor(n->data) &&
         std::fabs(n->data) < 9007199254740992.0;  // 2**53
}

// --------------------------------------------------------------- op builders

template <int OP, class S>
static PyObject* apply_unary(Node* a, double p) {
  double y;
  Err e = S::f(a->data, p, y);
  if (e) return raise_op_error(S::name, e, a->data, 0, false);
  if (anomalous(y)) return raise_anomaly(S::name, "forward", y);
  uint8_t mg = a->flags & MICROGRAD;
  uint8_t ints = (OP == RELU || OP == NEG || OP == ABS) && is_int(a) ? INT_DATA : 0;  // as int arithmetic
  Node* n = new_node(y, grad_enabled ? OP : LEAF, uint8_t((grad_enabled ? (a->flags & REQUIRES_GRAD) : 0) | mg | ints));
  if (!n) return nullptr;
  if (grad_enabled) {
    n->aux = p;
    n->in[0] = a;
    incref(a);
  }
  return wrap_new(n);
}

template <int OP, class S>
static PyObject* apply_binary(PyObject* a, PyObject* b) {
  Node *na, *nb;
  double va, vb;
  int r = operands(a, b, &na, &va, &nb, &vb);
  if (r <= 0) return declined(r);
  double y;
  Err e = S::f(va, vb, y);
  if (e) return raise_op_error(S::name, e, va, vb, true);
  if (anomalous(y)) return raise_anomaly(S::name, "forward", y);
  uint8_t mg = ((na ? na->flags : 0) | (nb ? nb->flags : 0)) & MICROGRAD;
  // Python's int arithmetic stays int for + - * and a power to an int >= 0.
  bool a_int = na ? is_int(na) : PyLong_Check(a);
  bool b_int = nb ? is_int(nb) : PyLong_Check(b);
  uint8_t ints = (a_int && b_int && (OP == ADD || OP == SUB || OP == MUL || (OP == POW && vb >= 0))) ? INT_DATA : 0;
  if (!grad_enabled) {
    Node* n = new_node(y, LEAF, uint8_t(mg | ints));
    return n ? wrap_new(n) : nullptr;
  }
  // micrograd makes every number in an op a Value of its own (so it shows in
  // _prev and in drawings), except a power's exponent.
  Node* made = nullptr;
  if (mg && (!na || (!nb && OP != POW))) {
    made = new_node(na ? vb : va, LEAF, uint8_t(REQUIRES_GRAD | MICROGRAD | (PyLong_Check(na ? b : a) ? INT_DATA : 0)));
    if (!made) return nullptr;
    (na ? nb : na) = made;
  }
  uint8_t flags = uint8_t(mg | ints);
  double aux = 0.0;
  if (na) flags |= na->flags & REQUIRES_GRAD;
  else { flags |= CONST_A; aux = va; }
  if (nb) flags |= nb->flags & REQUIRES_GRAD;
  else { flags |= CONST_B; aux = vb; }
  Node* n = new_node(y, OP, flags);
  if (!n) {
    if (made) pool::free_node(made);
    return nullptr;
  }
  n->aux = aux;
  n->in[0] = na;
  n->in[1] = nb;
  if (na) incref(na);
  if (nb) incref(nb);
  return wrap_new(n);
}

// -------------------------------------------------------------- number slots

static PyObject* nb_power(PyObject* a, PyObject* b, PyObject* mod) {
  if (mod != Py_None) Py_RETURN_NOTIMPLEMENTED;  // pow(x, y, m) is for integers
  return apply_binary<POW, Pow>(a, b);
}

static PyObject* nb_negative(PyObject* self) { return apply_unary<NEG, Neg>(node_of(self), 0.0); }
static PyObject* nb_absolute(PyObject* self) { return apply_unary<ABS, Abs>(node_of(self), 0.0); }
static PyObject* nb_positive(PyObject* self) {
  Py_INCREF(self);
  return self;
}
static PyObject* nb_float(PyObject* self) { return PyFloat_FromDouble(node_of(self)->data); }

static PyNumberMethods value_as_number = {};

// ------------------------------------------------------------------ methods

// One optional number argument named `name` (nullptr: none allowed), by
// position or keyword, in the fast-call convention; false with TypeError set.
static bool optional_number(const char* fn, const char* name, PyObject* const* args, Py_ssize_t nargs,
                            PyObject* kwnames, double* out) {
  Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  if (nargs + nkw == 0) return true;
  if (!name || nargs + nkw > 1) {
    PyErr_Format(PyExc_TypeError, "%s() takes %s argument%s (%zd given)", fn, name ? "at most 1" : "no",
                 name ? "" : "s", nargs + nkw);
    return false;
  }
  if (nkw && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), name) != 0) {
    PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fn, PyTuple_GET_ITEM(kwnames, 0));
    return false;
  }
  char what[128];
  PyOS_snprintf(what, sizeof what, "%s(): %s", fn, name);
  return number_arg(args[0], what, out);
}

// Every unary op with `method` is a Value method of its name, its parameter
// (if any) an optional argument: v.relu(), v.leaky_relu(slope=0.01).
template <int OP, class S>
static PyObject* unary_method(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  double p = S::param_default;
  if (!optional_number(S::name, S::param, args, nargs, kwnames, &p)) return nullptr;
  return apply_unary<OP, S>(node_of(self), p);
}

// The method's docstring, led by the signature line that inspect.signature
// and stubtest read. Built once per op and never freed (the static pointer
// keeps it reachable, so leak checkers do not report it).
template <class S> static const char* unary_doc() {
  static const std::string* doc = [] {
    std::string sig = std::string(S::name) + "($self, /";
    if (S::param) {
      char* d = PyOS_double_to_string(S::param_default, 'r', 0, 0, nullptr);  // repr: shortest exact
      sig += std::string(", ") + S::param + "=" + (d ? d : "0.0");
      PyMem_Free(d);
    }
    return new std::string(sig + ")\n--\n\n" + S::doc);
  }();
  return doc->c_str();
}

static PyObject* method_backward(PyObject* self, PyObject* args, PyObject* kw) {
  static const char* names[] = {"gradient", nullptr};
  PyObject* g_obj = nullptr;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:backward", const_cast<char**>(names), &g_obj)) return nullptr;
  double g = 1.0;
  if (g_obj && g_obj != Py_None && !number_arg(g_obj, "backward(): gradient", &g)) return nullptr;
  Node* n = node_of(self);
  if (!(n->flags & REQUIRES_GRAD)) {
    PyErr_SetString(PyExc_RuntimeError,
                    "backward(): this Value does not require grad (it was built only from Values "
                    "with requires_grad=False, or under ag.no_grad())");
    return nullptr;
  }
  return run_backward(self, g, false);
}

PyObject* run_backward(PyObject* self, double seed, bool keep_intermediate) {
  if (in_traversal()) {
    PyErr_SetString(PyExc_RuntimeError, "backward() cannot run inside a Python _backward: a backward is running");
    return nullptr;
  }
  if (!reserve_traversal()) return PyErr_NoMemory();
  Anomaly bad = backward(node_of(self), seed, anomaly_enabled, keep_intermediate);
  if (bad.python_error) return nullptr;
  if (bad.node) return raise_anomaly(op_name(bad.node->op), "backward", bad.grad);
  Py_RETURN_NONE;
}

static PyObject* method_detach(PyObject* self, PyObject*) {
  Node* n = new_node(node_of(self)->data, LEAF, 0);
  return n ? wrap_new(n) : nullptr;
}

static PyObject* method_item(PyObject* self, PyObject*) { return PyFloat_FromDouble(node_of(self)->data); }

// The methods that are not ops; init_value_type puts the op methods first.
static PyMethodDef other_methods[] = {
    {"backward", (PyCFunction)(void (*)(void))method_backward, METH_VARARGS | METH_KEYWORDS,
     "backward($self, /, gradient=None)\n--\n\n"
     "Accumulate d(self)/d(leaf) into every leaf's .grad (seeded with gradient, default 1.0)."},
    {"detach", method_detach, METH_NOARGS, "detach($self, /)\n--\n\nA new leaf with the same data that requires no grad."},
    {"item", method_item, METH_NOARGS, "item($self, /)\n--\n\nThe data as a Python float."},
    {"__reduce__", value_reduce, METH_NOARGS,
     "__reduce__($self, /)\n--\n\nFor pickle and copy: a leaf as itself, any other Value as its graph."},
};
static constexpr size_t NOTHER = sizeof other_methods / sizeof other_methods[0];
static PyMethodDef value_methods[UNARY_END + NOTHER + 1];  // ends with a zeroed sentinel

static void fill_methods() {
  size_t i = 0;
#define AG_METHOD_ROW(E, S)                                                                            \
  if (S::method)                                                                                       \
    value_methods[i++] = {S::name, (PyCFunction)(void (*)(void))unary_method<E, S>,                   \
                          METH_FASTCALL | METH_KEYWORDS, unary_doc<S>()};
  AG_UNARY_OPS(AG_METHOD_ROW)
#undef AG_METHOD_ROW
  for (const PyMethodDef& m : other_methods) value_methods[i++] = m;
}

// ---------------------------------------------------------------- attributes

static PyObject* get_data(PyObject* self, void*) {
  Node* n = node_of(self);
  if (is_int(n)) return PyLong_FromDouble(n->data);
  return PyFloat_FromDouble(n->data);
}
static PyObject* get_grad(PyObject* self, void*) { return PyFloat_FromDouble(node_of(self)->grad); }

static int set_float_field(PyObject* self, PyObject* v, double Node::*field, const char* name) {
  if (!v) {
    PyErr_Format(PyExc_AttributeError, "cannot delete %s", name);
    return -1;
  }
  double d;
  if (!number_arg(v, name, &d)) return -1;
  node_of(self)->*field = d;
  return 0;
}
static int set_data(PyObject* self, PyObject* v, void*) {
  if (!v) {
    PyErr_SetString(PyExc_AttributeError, "cannot delete Value.data");
    return -1;
  }
  double d;
  if (!number_arg(v, "Value.data", &d)) return -1;
  store_data(node_of(self), d, PyLong_Check(v) && !PyBool_Check(v));
  return 0;
}
static int set_grad(PyObject* self, PyObject* v, void*) { return set_float_field(self, v, &Node::grad, "Value.grad"); }

static PyObject* get_requires_grad(PyObject* self, void*) {
  return PyBool_FromLong(node_of(self)->flags & REQUIRES_GRAD);
}
static int set_requires_grad(PyObject* self, PyObject* v, void*) {
  if (!v) {
    PyErr_SetString(PyExc_AttributeError, "cannot delete Value.requires_grad");
    return -1;
  }
  Node* n = node_of(self);
  if (n->op != LEAF) {
    PyErr_SetString(PyExc_RuntimeError,
                    "requires_grad can only be changed on leaf Values; use .detach() for a non-leaf");
    return -1;
  }
  int t = PyObject_IsTrue(v);
  if (t < 0) return -1;
  n->flags = t ? (n->flags | REQUIRES_GRAD) : (n->flags & ~REQUIRES_GRAD);
  return 0;
}

static PyObject* get_is_leaf(PyObject* self, void*) { return PyBool_FromLong(node_of(self)->op == LEAF); }

static PyObject* op_names[NUM_OPS];
// The op's name; for a Value built as Value(data, children, op) (or a leaf
// given an op), the op it was given.
static PyObject* get_op(PyObject* self, void*) {
  Node* n = node_of(self);
  if (n->op == LEAF || n->op == CUSTOM) return given_op(self);
  PyObject* s = op_names[n->op];
  Py_INCREF(s);
  return s;
}

// micrograd's _op: the op, unless code set another name (micrograd's own
// classes name their nodes 'ReLU', '**2').
static PyObject* get_micrograd_op(PyObject* self, void*) {
  Node* n = node_of(self);
  if (n->op == LEAF || n->op == CUSTOM) return given_op(self);
  if (n->flags & MICROGRAD) {
    if (n->op == RELU) return PyUnicode_FromString("ReLU");
    if (n->op == POW && (n->flags & CONST_B)) {  // micrograd's f'**{other}'
      double k = n->aux;
      if (k == std::floor(k) && std::fabs(k) < 1e15) return PyUnicode_FromFormat("**%lld", (long long)k);
      PyObject* r = float_repr(k);
      PyObject* s = r ? PyUnicode_FromFormat("**%U", r) : nullptr;
      Py_XDECREF(r);
      return s;
    }
  }
  return get_given_op(self, op_names[n->op]);
}

static PyObject* get_inputs(PyObject* self, void*) {
  Node* n = node_of(self);
  Py_ssize_t k = 0;
  for_each_input(n, [&](Node* in) { k += !(in->flags & NUMBER); });
  PyObject* t = PyTuple_New(k);
  if (!t) return nullptr;
  Py_ssize_t i = 0;
  bool failed = false;
  for_each_input(n, [&](Node* in) {
    if (failed || (in->flags & NUMBER)) return;
    PyObject* w = wrap(in);
    if (!w) { failed = true; return; }
    PyTuple_SET_ITEM(t, i++, w);
  });
  if (failed) {
    Py_DECREF(t);
    return nullptr;
  }
  return t;
}

static PyObject* get_prev(PyObject* self, void*) {
  PyObject* t = get_inputs(self, nullptr);
  if (!t) return nullptr;
  PyObject* s = PySet_New(t);
  Py_DECREF(t);
  return s;
}

static PyGetSetDef value_getset[] = {
    {"data", get_data, set_data, "The value (float, settable).", nullptr},
    {"grad", get_grad, set_grad, "d(output)/d(self) after backward (float, settable).", nullptr},
    {"requires_grad", get_requires_grad, set_requires_grad, "Whether gradients flow into this Value.", nullptr},
    {"is_leaf", get_is_leaf, nullptr, "True for Values made directly, not by an op.", nullptr},
    {"op", get_op, nullptr, "The op that made this Value ('' for a leaf).", nullptr},
    {"_op", get_micrograd_op, set_given_op, "micrograd's name for .op (settable, as micrograd's is).", nullptr},
    {"inputs", get_inputs, nullptr, "The Values this one was computed from (numbers are not listed).", nullptr},
    {"_prev", get_prev, nullptr, "micrograd's name for set(.inputs).", nullptr},
    {"label", get_label, set_label, "A name for drawings (micrograd's label; '' unless set).", nullptr},
    {"_backward", get_backward, set_backward,
     "This node's local backward step (callable); settable on Values built as Value(data, children, op).", nullptr},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, "The Value's attributes.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

// ----------------------------------------------------- construction, compare

// A size-1 numpy array is its one element, as micrograd (which stores
// whatever it is given) computes with it.
static bool data_arg(PyObject* o, double* d) {
  if (!PyFloat_Check(o) && !PyLong_Check(o) && PyObject_HasAttrString(o, "__array_interface__")) {
    PyObject* size = PyObject_GetAttrString(o, "size");
    if (!size) return false;
    long k = PyLong_AsLong(size);
    Py_DECREF(size);
    if (k == -1 && PyErr_Occurred()) return false;
    if (k == 1) {
      PyObject* item = PyObject_CallMethod(o, "item", nullptr);
      if (!item) return false;
      bool ok = number_arg(item, "Value(): data", d);
      Py_DECREF(item);
      return ok;
    }
  }
  return number_arg(o, "Value(): data", d);
}

// Value(data, _children=(), _op='', label='', *, requires_grad=True): the
// signature micrograd and the lecture write positionally.
static PyObject* value_new(PyTypeObject* type, PyObject* args, PyObject* kw) {
  static const char* names[] = {"data", "_children", "_op", "label", "requires_grad", nullptr};
  PyObject *data_obj, *children_obj = nullptr, *op_obj = nullptr, *label_obj = nullptr;
  int requires_grad = 1;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOO$p:Value", const_cast<char**>(names), &data_obj, &children_obj,
                                   &op_obj, &label_obj, &requires_grad))
    return nullptr;
  double d;
  if (!data_arg(data_obj, &d)) return nullptr;
  PyObject* children = nullptr;  // a private tuple: iterating may run Python code
  if (children_obj) {
    if (PyUnicode_Check(children_obj) || !PyObject_HasAttrString(children_obj, "__iter__")) {
      PyErr_Format(PyExc_TypeError, "Value(): _children must be a tuple of Values, not '%s'",
                   Py_TYPE(children_obj)->tp_name);
      return nullptr;
    }
    children = PySequence_Tuple(children_obj);
    if (!children) return nullptr;
  }
  for (PyObject* o : {op_obj, label_obj})
    if (o && !PyUnicode_Check(o)) {
      Py_XDECREF(children);
      PyErr_Format(PyExc_TypeError, "Value(): %s must be a str, not '%s'", o == op_obj ? "_op" : "label",
                   Py_TYPE(o)->tp_name);
      return nullptr;
    }
  bool custom = children && PyTuple_GET_SIZE(children) > 0 && grad_enabled;
  uint8_t ints = PyLong_Check(data_obj) && !PyBool_Check(data_obj) ? INT_DATA : 0;  // Value(3): micrograd keeps 3
  Node* n = custom ? custom_node(d, children, requires_grad)
                   : new_node(d, LEAF, uint8_t((requires_grad ? REQUIRES_GRAD : 0) | ints));
  Py_XDECREF(children);
  if (!n) return nullptr;
  PyObject* self;
  if (type == &ValueType) {
    self = wrap_new(n);
  } else {  // a Python subclass
    if (micrograd_class && PyType_IsSubtype(type, micrograd_class)) n->flags |= MICROGRAD;
    self = wrap_in(type, n);
    if (!self) {
      n->refs = 1;
      decref(n);
    }
  }
  if (!self) return nullptr;
  if (!give_op_and_label(self, op_obj, label_obj)) {
    Py_DECREF(self);
    return nullptr;
  }
  if (custom) keep(self);  // the wrapper holds the node's _backward
  return self;
}

static PyObject* value_repr(PyObject* self) {
  PyObject* data = get_data(self, nullptr);  // an int's data reads as one, as micrograd prints it
  PyObject* d = data ? PyObject_Repr(data) : nullptr;
  Py_XDECREF(data);
  PyObject* g = float_repr(node_of(self)->grad);
  PyObject* r = (d && g) ? PyUnicode_FromFormat("Value(data=%U, grad=%U)", d, g) : nullptr;
  Py_XDECREF(d);
  Py_XDECREF(g);
  return r;
}

// == and hash are identity (Values live in sets, as in micrograd); the
// orderings compare .data, with numbers on either side.
static PyObject* value_richcompare(PyObject* a, PyObject* b, int op) {
  if (op == Py_EQ || op == Py_NE) {
    if (!is_value(a) || !is_value(b)) Py_RETURN_NOTIMPLEMENTED;
    Py_RETURN_RICHCOMPARE(a, b, op);
  }
  Node *na, *nb;
  double x, y;
  int r = operands(a, b, &na, &x, &nb, &y);
  if (r <= 0) return declined(r);
  Py_RETURN_RICHCOMPARE(x, y, op);
}

static Py_hash_t value_hash(PyObject* self) {
  uintptr_t p = reinterpret_cast<uintptr_t>(self);
  Py_hash_t h = static_cast<Py_hash_t>((p >> 4) | (p << (8 * sizeof(p) - 4)));
  return h == -1 ? -2 : h;
}

PyTypeObject ValueType = {PyVarObject_HEAD_INIT(nullptr, 0)};

bool init_value_type() {
  PyNumberMethods& nm = value_as_number;
  nm.nb_add = apply_binary<ADD, Add>;
  nm.nb_subtract = apply_binary<SUB, Sub>;
  nm.nb_multiply = apply_binary<MUL, Mul>;
  nm.nb_true_divide = apply_binary<DIV, Div>;
  nm.nb_power = nb_power;
  nm.nb_negative = nb_negative;
  nm.nb_positive = nb_positive;
  nm.nb_absolute = nb_absolute;
  nm.nb_float = nb_float;

  ValueType.tp_name = "arenagrad.Value";
  ValueType.tp_basicsize = sizeof(PyValue);
  ValueType.tp_dealloc = value_dealloc;
  ValueType.tp_repr = value_repr;
  ValueType.tp_as_number = &value_as_number;
  ValueType.tp_hash = value_hash;
  ValueType.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC;
  ValueType.tp_traverse = value_traverse;
  ValueType.tp_clear = value_clear;
  ValueType.tp_dictoffset = offsetof(PyValue, dict);
  ValueType.tp_setattro = value_setattro;
  ValueType.tp_doc =
      "Value(data, _children=(), _op='', label='', *, requires_grad=True)\n\n"
      "A scalar in the autograd graph. Arithmetic with Values or numbers builds new\n"
      "Values; .backward() fills .grad of every Value the result depends on.\n"
      "_children and _op build a node micrograd's way, its backward the closure\n"
      "assigned to ._backward.";
  ValueType.tp_richcompare = value_richcompare;
  fill_methods();
  ValueType.tp_methods = value_methods;
  ValueType.tp_getset = value_getset;
  ValueType.tp_new = value_new;
  ValueType.tp_free = PyObject_GC_Del;
  if (PyType_Ready(&ValueType) < 0) return false;
  // Tutorials add methods to Value at run time (Value.sigmoid = sigmoid);
  // PyType_Ready makes static types immutable, which Value is not meant to be.
  ValueType.tp_flags &= ~Py_TPFLAGS_IMMUTABLETYPE;
  if (!init_dialect()) return false;
  for (int op = 0; op < NUM_OPS; ++op) {
    op_names[op] = PyUnicode_InternFromString(op_name(op));
    if (!op_names[op]) return false;
  }
  return true;
}

}  // namespace ag
