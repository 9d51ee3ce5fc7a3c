// The Value type's number slots, methods and attributes.
#include "value.hpp"

#include <cstdint>

#include "graph.hpp"

namespace ag {

thread_local bool grad_enabled = true;
thread_local bool anomaly_enabled = false;

PyObject* raise_anomaly(const char* op, const char* where, double y) {
  PyErr_Format(PyExc_FloatingPointError, "%s produced %s in %s (ag.detect_anomaly() is on)", op,
               std::isnan(y) ? "nan" : (y > 0 ? "inf" : "-inf"), where);
  return nullptr;
}

// ------------------------------------------------------------ wrapper objects

// Recycled Value objects: allocation is a large share of an op's cost.
static constexpr int FREE_MAX = 4096;
static PyValue* free_values[FREE_MAX];
static int nfree = 0;

PyObject* wrap(Node* n) {
  if (n->py) {
    Py_INCREF(n->py);
    return n->py;
  }
  PyValue* v;
  if (nfree) {
    v = free_values[--nfree];
  } else {
    v = static_cast<PyValue*>(PyObject_Malloc(sizeof(PyValue)));
    if (!v) return PyErr_NoMemory();
  }
  PyObject_Init(reinterpret_cast<PyObject*>(v), &ValueType);
  v->node = n;
  n->py = reinterpret_cast<PyObject*>(v);
  incref(n);
  return reinterpret_cast<PyObject*>(v);
}

static void value_dealloc(PyObject* self) {
  Node* n = node_of(self);
  n->py = nullptr;
  decref(n);
  if (nfree < FREE_MAX) free_values[nfree++] = reinterpret_cast<PyValue*>(self);
  else PyObject_Free(self);
}

// ------------------------------------------------------------------ numbers

// numpy.number and numpy.complexfloating, or None when numpy is absent.
static PyObject* numpy_number = nullptr;
static PyObject* numpy_complex = nullptr;

int as_number(PyObject* o, double* out) {
  if (PyFloat_Check(o)) {  // float and numpy.float64
    *out = PyFloat_AS_DOUBLE(o);
    return 1;
  }
  if (PyLong_Check(o)) {  // int and bool
    double d = PyLong_AsDouble(o);
    if (d == -1.0 && PyErr_Occurred()) return -1;
    *out = d;
    return 1;
  }
  if (!numpy_number) {
    PyObject* np = PyImport_ImportModule("numpy");
    if (np) {
      numpy_number = PyObject_GetAttrString(np, "number");
      numpy_complex = PyObject_GetAttrString(np, "complexfloating");
      Py_DECREF(np);
    }
    if (!numpy_number || !numpy_complex) {
      PyErr_Clear();
      Py_XDECREF(numpy_number);
      Py_XDECREF(numpy_complex);
      Py_INCREF(Py_None);
      Py_INCREF(Py_None);
      numpy_number = numpy_complex = Py_None;
    }
  }
  if (numpy_number != Py_None && PyObject_TypeCheck(o, reinterpret_cast<PyTypeObject*>(numpy_number)) &&
      !PyObject_TypeCheck(o, reinterpret_cast<PyTypeObject*>(numpy_complex))) {
    double d = PyFloat_AsDouble(o);
    if (d == -1.0 && PyErr_Occurred()) return -1;
    *out = d;
    return 1;
  }
  return 0;
}

bool number_arg(PyObject* o, const char* what, double* out) {
  int r = as_number(o, out);
  if (r == 0) {
    PyErr_Format(PyExc_TypeError, "%s must be a real number, not '%.200s'", what, Py_TYPE(o)->tp_name);
  } else if (r < 0 && PyErr_ExceptionMatches(PyExc_OverflowError)) {
    PyErr_Clear();
    PyErr_Format(PyExc_OverflowError, "%s is too large to convert to a float", what);
  }
  return r > 0;
}

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

static PyObject* float_repr(double d) {
  char* s = PyOS_double_to_string(d, 'r', 0, Py_DTSF_ADD_DOT_0, nullptr);
  if (!s) return nullptr;
  PyObject* r = PyUnicode_FromString(s);
  PyMem_Free(s);
  return r;
}

PyObject* raise_op_error(const char* op, Err e, double a, double b, bool binary) {
  PyObject* sa = float_repr(a);
  PyObject* sb = binary ? float_repr(b) : nullptr;
  if (!sa || (binary && !sb)) {
    Py_XDECREF(sa);
    Py_XDECREF(sb);
    return nullptr;
  }
  PyObject* exc = e == ERR_ZERODIV ? PyExc_ZeroDivisionError
                  : e == ERR_OVERFLOW ? PyExc_OverflowError
                                      : PyExc_ValueError;
  const char* why = e == ERR_ZERODIV ? "division by zero"
                    : e == ERR_OVERFLOW ? "math range error (result too large)"
                                        : "math domain error";
  if (binary) PyErr_Format(exc, "(%U) %s (%U): %s", sa, op, sb, why);
  else PyErr_Format(exc, "%s(%U): %s", op, sa, why);
  Py_DECREF(sa);
  Py_XDECREF(sb);
  return nullptr;
}

// --------------------------------------------------------------- op builders

template <int OP, class S>
static PyObject* apply_unary(Node* a, double p) {
  double y;
  Err e = S::f(a->data, p, y);
  if (e) return raise_op_error(S::name, e, a->data, 0, false);
  if (anomalous(y)) return raise_anomaly(S::name, "forward", y);
  Node* n = new_node(y, grad_enabled ? OP : LEAF, grad_enabled ? (a->flags & REQUIRES_GRAD) : 0);
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
  int r = operand(a, &na, &va);
  if (r > 0) r = operand(b, &nb, &vb);
  if (r <= 0) {
    if (r < 0) return nullptr;
    Py_RETURN_NOTIMPLEMENTED;
  }
  double y;
  Err e = S::f(va, vb, y);
  if (e) return raise_op_error(S::name, e, va, vb, true);
  if (anomalous(y)) return raise_anomaly(S::name, "forward", y);
  if (!grad_enabled) {
    Node* n = new_node(y, LEAF, 0);
    return n ? wrap_new(n) : nullptr;
  }
  uint8_t flags = 0;
  double aux = 0.0;
  if (na) flags |= na->flags & REQUIRES_GRAD;
  else { flags |= CONST_A; aux = va; }
  if (nb) flags |= nb->flags & REQUIRES_GRAD;
  else { flags |= CONST_B; aux = vb; }
  Node* n = new_node(y, OP, flags);
  if (!n) return nullptr;
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

#define AG_UNARY_METHOD(E, S) \
  static PyObject* method_##E(PyObject* self, PyObject*) { return apply_unary<E, S>(node_of(self), 0.0); }
AG_UNARY_METHOD(RELU, Relu)
AG_UNARY_METHOD(TANH, Tanh)
AG_UNARY_METHOD(SIGMOID, Sigmoid)
AG_UNARY_METHOD(EXP, Exp)
AG_UNARY_METHOD(LOG, Log)
AG_UNARY_METHOD(SQRT, Sqrt)
AG_UNARY_METHOD(SOFTPLUS, Softplus)
AG_UNARY_METHOD(SIN, Sin)
AG_UNARY_METHOD(COS, Cos)
AG_UNARY_METHOD(ABS, Abs)
#undef AG_UNARY_METHOD

static PyObject* method_leaky_relu(PyObject* self, PyObject* args, PyObject* kw) {
  static const char* names[] = {"slope", nullptr};
  PyObject* slope_obj = nullptr;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:leaky_relu", const_cast<char**>(names), &slope_obj)) return nullptr;
  double slope = 0.01;
  if (slope_obj && !number_arg(slope_obj, "leaky_relu(): slope", &slope)) return nullptr;
  return apply_unary<LEAKY_RELU, LeakyRelu>(node_of(self), slope);
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
  if (!reserve_traversal()) return PyErr_NoMemory();
  Anomaly bad = backward(n, g, anomaly_enabled);
  if (bad.node) return raise_anomaly(op_name(bad.node->op), "backward", bad.grad);
  Py_RETURN_NONE;
}

static PyObject* method_detach(PyObject* self, PyObject*) {
  Node* n = new_node(node_of(self)->data, LEAF, 0);
  return n ? wrap_new(n) : nullptr;
}

static PyObject* method_item(PyObject* self, PyObject*) { return PyFloat_FromDouble(node_of(self)->data); }

static PyMethodDef value_methods[] = {
    {"relu", method_RELU, METH_NOARGS, "max(0, x)."},
    {"leaky_relu", (PyCFunction)(void (*)(void))method_leaky_relu, METH_VARARGS | METH_KEYWORDS,
     "leaky_relu(slope=0.01): x if x > 0 else slope * x."},
    {"tanh", method_TANH, METH_NOARGS, "Hyperbolic tangent."},
    {"sigmoid", method_SIGMOID, METH_NOARGS, "1 / (1 + exp(-x)), computed without overflow."},
    {"exp", method_EXP, METH_NOARGS, "e**x; OverflowError when the result does not fit a float."},
    {"log", method_LOG, METH_NOARGS, "Natural logarithm; ValueError for x <= 0."},
    {"sqrt", method_SQRT, METH_NOARGS, "Square root; ValueError for x < 0."},
    {"softplus", method_SOFTPLUS, METH_NOARGS, "log(1 + exp(x)), stable for large |x|."},
    {"sin", method_SIN, METH_NOARGS, "Sine."},
    {"cos", method_COS, METH_NOARGS, "Cosine."},
    {"abs", method_ABS, METH_NOARGS, "|x| (also abs(v))."},
    {"backward", (PyCFunction)(void (*)(void))method_backward, METH_VARARGS | METH_KEYWORDS,
     "backward(gradient=1.0): accumulate d(self)/d(leaf) into every leaf's .grad."},
    {"detach", method_detach, METH_NOARGS, "A new leaf with the same data that requires no grad."},
    {"item", method_item, METH_NOARGS, "The data as a Python float."},
    {nullptr, nullptr, 0, nullptr}};

// ---------------------------------------------------------------- attributes

static PyObject* get_data(PyObject* self, void*) { return PyFloat_FromDouble(node_of(self)->data); }
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
static int set_data(PyObject* self, PyObject* v, void*) { return set_float_field(self, v, &Node::data, "Value.data"); }
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
static PyObject* get_op(PyObject* self, void*) {
  PyObject* s = op_names[node_of(self)->op];
  Py_INCREF(s);
  return s;
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
    {"_op", get_op, nullptr, "micrograd's name for .op.", nullptr},
    {"inputs", get_inputs, nullptr, "The Values this one was computed from (numbers are not listed).", nullptr},
    {"_prev", get_prev, nullptr, "micrograd's name for set(.inputs).", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

// ----------------------------------------------------- construction, compare

static PyObject* value_new(PyTypeObject*, PyObject* args, PyObject* kw) {
  static const char* names[] = {"data", "requires_grad", nullptr};
  PyObject* data_obj;
  int requires_grad = 1;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|p:Value", const_cast<char**>(names), &data_obj, &requires_grad))
    return nullptr;
  double d;
  if (!number_arg(data_obj, "Value(): data", &d)) return nullptr;
  Node* n = new_node(d, LEAF, requires_grad ? REQUIRES_GRAD : 0);
  return n ? wrap_new(n) : nullptr;
}

static PyObject* value_repr(PyObject* self) {
  PyObject* d = float_repr(node_of(self)->data);
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
  int r = operand(a, &na, &x);
  if (r > 0) r = operand(b, &nb, &y);
  if (r <= 0) {
    if (r < 0) return nullptr;
    Py_RETURN_NOTIMPLEMENTED;
  }
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
  ValueType.tp_flags = Py_TPFLAGS_DEFAULT;
  ValueType.tp_doc =
      "Value(data, requires_grad=True)\n\n"
      "A scalar in the autograd graph. Arithmetic with Values or numbers builds new\n"
      "Values; .backward() fills .grad of every Value the result depends on.";
  ValueType.tp_richcompare = value_richcompare;
  ValueType.tp_methods = value_methods;
  ValueType.tp_getset = value_getset;
  ValueType.tp_new = value_new;
  ValueType.tp_free = PyObject_Free;
  if (PyType_Ready(&ValueType) < 0) return false;
  for (int op = 0; op < NUM_OPS; ++op) {
    op_names[op] = PyUnicode_InternFromString(op_name(op));
    if (!op_names[op]) return false;
  }
  return true;
}

}  // namespace ag
