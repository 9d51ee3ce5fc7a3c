// The Python Value type: a small CPython object holding one node.
//
// Value is written against the CPython C API rather than through pybind11
// because a graph is built one Python operator at a time: the number slots
// (nb_add, nb_multiply, ...) called directly cost ~35 ns, a pybind11 operator
// ~230 ns (docs/architecture.md). Each node has at most one Value wrapping it
// (node->py), so `a.inputs[0] is b` holds and Values hash by identity.
//
// The type is a GC type only so that attributes can hold cycles (a
// micrograd-style _backward closure refers to its own Value): a wrapper is
// tracked by the collector only once it has a __dict__.
#pragma once
#include <Python.h>

#include "errors.hpp"
#include "modes.hpp"
#include "node.hpp"
#include "ops.hpp"

namespace ag {

struct PyValue {
  PyObject_HEAD
  Node* node;
  PyObject* dict;  // label and other attributes, made on first use (micrograd's Values have a __dict__)
};

extern PyTypeObject ValueType;

// Values and instances of Python subclasses of Value. The exact test comes
// first: it is the one every op takes.
inline bool is_value(PyObject* o) { return Py_TYPE(o) == &ValueType || PyType_IsSubtype(Py_TYPE(o), &ValueType); }
inline Node* node_of(PyObject* o) { return reinterpret_cast<PyValue*>(o)->node; }

// The Value for n: its existing wrapper, or a new one (new reference).
PyObject* wrap(Node* n);

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

// Writes d as a Value's data, as assigning to .data does: an int (from_int)
// makes the Value show as an int, a float drops that (n-ary nodes keep their
// flags: theirs mean something else).
inline void store_data(Node* n, double d, bool from_int) {
  n->data = d;
  if (!is_nary(n->op)) n->flags = from_int ? (n->flags | INT_DATA) : (n->flags & ~INT_DATA);
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

// Value.backward's sweep (graph.hpp's backward) with its Python errors
// raised; None, or null with an error set.
PyObject* run_backward(PyObject* self, double seed, bool keep_intermediate);

// Registers arenagrad.micrograd's Value class (a subclass with no slots of
// its own): nodes flagged MICROGRAD are wrapped in it. False with an error set.
bool set_micrograd_class(PyObject* cls);

bool init_value_type();  // PyType_Ready and friends; false with an error set

}  // namespace ag
