// micrograd's dialect on the Value type: attributes (a lazy __dict__, the
// label, the op a user gave), _backward, and CUSTOM nodes built from
// children, with what the cycle collector needs to see of them.
#pragma once
#include <Python.h>

#include "node.hpp"

namespace ag {

bool init_dialect();  // interned names and backward's hook; false with an error set

// The cycle collector's view of a wrapper, and attribute setting (which
// puts a wrapper under the collector once it has a __dict__).
// A wrapper that carries something of its own (attributes, a CUSTOM node's
// closure) lives as long as its node: the node
// holds it (OWNS_PY) and the collector frees the pair. Without that, a
// temporary's label or class would be gone when .inputs wraps the node anew.
void keep(PyObject* self);
int value_traverse(PyObject* self, visitproc visit, void* arg);
int value_clear(PyObject* self);
int value_setattro(PyObject* self, PyObject* name, PyObject* value);

// The op given to Value(data, children, op), '' if none (new reference;
// null with an error set).
PyObject* given_op(PyObject* self);
// The _op a user set (new reference), or `otherwise`; null with an error set.
PyObject* get_given_op(PyObject* self, PyObject* otherwise);
int set_given_op(PyObject* self, PyObject* v, void*);
// Stores Value()'s _op and label arguments (either may be null or empty).
bool give_op_and_label(PyObject* self, PyObject* op, PyObject* label);

// A CUSTOM node over `children` (a tuple); null with an error set.
Node* custom_node(double data, PyObject* children, bool requires_grad);

PyObject* get_label(PyObject* self, void*);
int set_label(PyObject* self, PyObject* v, void*);
PyObject* get_backward(PyObject* self, void*);
int set_backward(PyObject* self, PyObject* v, void*);

}  // namespace ag
