// Pickling and deep-copying Values: a graph leaves as a flat table (leaves
// first, then every other node after its inputs) and comes back from it,
// without recursion at either end.
#pragma once
#include <Python.h>

namespace ag {

// Value.__reduce__: (arenagrad._core._restore, (class, data, grad,
// requires_grad, attrs)) for a leaf; for any other node (_restore,
// (class, leaves, table, attrs, root)), the leaves as their own Values so
// that pickle's memo shares them with the rest of what is pickled.
PyObject* value_reduce(PyObject* self, PyObject*);

// _core._restore: the inverse. Rejects a malformed table with ValueError or
// TypeError (a pickle may come from anywhere).
PyObject* value_restore(PyObject* module, PyObject* args);

}  // namespace ag
