// The Python Value type: a small CPython object holding one node.
//
// Value is written against the CPython C API rather than through pybind11
// because a graph is built one Python operator at a time: the number slots
// (nb_add, nb_multiply, ...) called directly cost ~35 ns, a pybind11 operator
// ~230 ns (see shared/design.md). Each node has at most one Value wrapping it
// (node->py), so `a.inputs[0] is b` holds and Values hash by identity.
#pragma once
#include <Python.h>

#include <cmath>

#include "node.hpp"
#include "ops.hpp"

namespace ag {

struct PyValue {
  PyObject_HEAD
  Node* node;
};

extern PyTypeObject ValueType;

inline bool is_value(PyObject* o) { return Py_TYPE(o) == &ValueType; }
inline Node* node_of(PyObject* o) { return reinterpret_cast<PyValue*>(o)->node; }

// The Value for n: its existing wrapper, or a new one (new reference).
PyObject* wrap(Node* n);

// 1 and *out set if o is a real number (float, int, bool, numpy scalar),
// 0 if it is not (caller returns NotImplemented or raises TypeError),
// -1 with a Python error set (an int too large for a float).
int as_number(PyObject* o, double* out);

// A number argument named `what` in messages: false with TypeError ("<what>
// must be a real number") or OverflowError (an int too large for a float) set.
bool number_arg(PyObject* o, const char* what, double* out);

// Raises the Python exception for a failed op; always returns nullptr.
PyObject* raise_op_error(const char* op, Err e, double a, double b, bool binary);

// Gradient recording mode (`with ag.no_grad():`), per thread as in PyTorch.
extern thread_local bool grad_enabled;

// `with ag.detect_anomaly():` per thread: the first NaN or infinity an op
// produces, forward or backward, raises FloatingPointError naming the op.
extern thread_local bool anomaly_enabled;

// Raises FloatingPointError for an op whose result is not finite; nullptr.
PyObject* raise_anomaly(const char* op, const char* where, double y);

// The forward check: free unless the result is NaN or infinite.
inline bool anomalous(double y) { return !std::isfinite(y) && anomaly_enabled; }

// A fresh node: zero grad, no wrapper, no references yet. nullptr (with
// MemoryError set) if the system is out of memory.
inline Node* new_node(double data, int op, uint8_t flags) {
  Node* n = pool::alloc();
  if (!n) {
    PyErr_NoMemory();
    return nullptr;
  }
  n->data = data;
  n->grad = 0.0;
  n->aux = 0.0;
  n->in[0] = n->in[1] = nullptr;
  n->py = nullptr;
  n->refs = 0;
  n->stamp = 0;
  n->op = static_cast<uint8_t>(op);
  n->flags = flags;
  return n;
}

// A leaf that holds a number and never receives a gradient.
inline Node* const_node(double v) { return new_node(v, LEAF, NUMBER); }

// Wraps a node that nothing refers to yet; frees it if the wrapper fails.
inline PyObject* wrap_new(Node* n) {
  PyObject* v = wrap(n);
  if (!v) {
    n->refs = 1;
    decref(n);
  }
  return v;
}

bool init_value_type();  // PyType_Ready and friends; false with an error set

}  // namespace ag
