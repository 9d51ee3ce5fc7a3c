// _gather(params, field) and _scatter(params, field, values): what
//   np.array([p.<field> for p in params], dtype=np.float64)
//   for p, v in zip(params, values): p.<field> = v
// do, in one C loop, for numbers. A Value (the exact type) is read and
// written in its node; anything else (a micrograd Value, a Value subclass
// that may override the attribute) through Python's attribute protocol, as
// the loops above.
#include "params.hpp"

#include <pybind11/numpy.h>

#include <stdexcept>
#include <string>

#include "batch.hpp"
#include "value.hpp"

namespace py = pybind11;

namespace ag {

namespace {

enum Field { DATA, GRAD };

Field field_arg(const std::string& name) {
  if (name == "data") return DATA;
  if (name == "grad") return GRAD;
  throw py::value_error("field must be 'data' or 'grad', not '" + name + "'");
}

// Whether params is a list of Values only (exactly the type: a subclass's
// attributes may run Python code).
bool list_of_values(py::handle params) {
  if (!PyList_CheckExact(params.ptr())) return false;
  const Py_ssize_t n = PyList_GET_SIZE(params.ptr());
  for (Py_ssize_t i = 0; i < n; ++i)
    if (Py_TYPE(PyList_GET_ITEM(params.ptr(), i)) != &ValueType) return false;
  return true;
}

// The parameters as a sequence to index: attribute access on a non-Value may
// run Python code that changes the caller's list, so a list holding anything
// else is copied into a tuple, which holds every item alive. A list of Values
// only (an optimizer's) is read as it is, through item(), which checks its
// size at every read: Python code can still run in between (a finalizer
// during an allocation, numpy's first import by pybind11).
py::object params_arg(py::handle params) {
  if (list_of_values(params)) return py::reinterpret_borrow<py::object>(params);
  PyObject* t = PySequence_Tuple(params.ptr());
  if (!t) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(t);
}

// Item i of params_arg's sequence (borrowed: a caller that may run Python
// code with it holds a reference first).
PyObject* item(const py::object& seq, size_t i) {
  if (!PyList_CheckExact(seq.ptr())) return PyTuple_GET_ITEM(seq.ptr(), i);
  if (i >= size_t(PyList_GET_SIZE(seq.ptr())))
    throw std::runtime_error("the list of parameters changed size while it was read");
  return PyList_GET_ITEM(seq.ptr(), i);
}

py::array_t<double> gather(py::handle params, const std::string& name) {
  const Field field = field_arg(name);
  py::object items = params_arg(params);
  const size_t n = size_t(Py_SIZE(items.ptr()));
  py::array_t<double> out(static_cast<py::ssize_t>(n));
  double* o = out.mutable_data();
  py::str attr(name);
  for (size_t i = 0; i < n; ++i) {
    PyObject* p = item(items, i);
    if (Py_TYPE(p) == &ValueType) {
      o[i] = field == DATA ? node_of(p)->data : node_of(p)->grad;
      continue;
    }
    py::object held = py::reinterpret_borrow<py::object>(p);
    PyObject* v = PyObject_GetAttr(held.ptr(), attr.ptr());
    if (!v) throw py::error_already_set();
    o[i] = PyFloat_AsDouble(v);
    Py_DECREF(v);
    if (o[i] == -1.0 && PyErr_Occurred()) throw py::error_already_set();
  }
  return out;
}

// values: an array of one number per parameter (written as floats), or one
// number for all (an int stays an int, as `p.data = 0` keeps it one).
void scatter(py::handle params, const std::string& name, py::handle values) {
  const Field field = field_arg(name);
  const bool all = PyFloat_Check(values.ptr()) || (PyLong_Check(values.ptr()) && !PyBool_Check(values.ptr()));
  double one = 0;
  py::array_t<double> arr;
  if (all) {
    one = PyFloat_AsDouble(values.ptr());
    if (one == -1.0 && PyErr_Occurred()) throw py::error_already_set();  // an int too large for a float
  } else {
    arr = numbers_array(values, "_scatter(): values");
  }
  py::object items = params_arg(params);
  const size_t n = size_t(Py_SIZE(items.ptr()));
  if (!all && (arr.ndim() != 1 || size_t(arr.shape(0)) != n))
    throw py::value_error("_scatter(): values must be one number per parameter (" + std::to_string(n) + ")");
  const bool from_int = all && PyLong_Check(values.ptr());
  const double* v = all ? nullptr : arr.data();
  py::str attr(name);
  for (size_t i = 0; i < n; ++i) {
    const double d = all ? one : v[i];
    PyObject* p = item(items, i);
    if (Py_TYPE(p) == &ValueType) {
      if (field == DATA) store_data(node_of(p), d, from_int);
      else node_of(p)->grad = d;
      continue;
    }
    PyObject* f = from_int ? Py_NewRef(values.ptr()) : PyFloat_FromDouble(d);
    if (!f) throw py::error_already_set();
    py::object held = py::reinterpret_borrow<py::object>(p);
    int r = PyObject_SetAttr(held.ptr(), attr.ptr(), f);
    Py_DECREF(f);
    if (r < 0) throw py::error_already_set();
  }
}

// Plain SGD's update, data -= lr * grad, in one pass over a list of Values
// only (an optimizer's): the same two roundings as numpy's p -= lr * g, with
// no arrays between. Anything else returns false, changing nothing (the
// caller then reads attributes, as gather does). Nothing between the check
// and the loop can run Python code.
bool sgd_update(py::handle params, double lr) {
  if (!list_of_values(params)) return false;
  const Py_ssize_t n = PyList_GET_SIZE(params.ptr());
  for (Py_ssize_t i = 0; i < n; ++i) {
    Node* node = node_of(PyList_GET_ITEM(params.ptr(), i));
    store_data(node, node->data - lr * node->grad, false);
  }
  return true;
}

}  // namespace

void bind_params(py::module_& m) {
  m.def("_gather", &gather, py::arg("params"), py::arg("field"),
        "Each parameter's .data or .grad (field) as a float64 array (numbers only).");
  m.def("_scatter", &scatter, py::arg("params"), py::arg("field"), py::arg("values"),
        "Sets each parameter's .data or .grad (field): to values[i] (a float), or to values for all if one number.");
  m.def("_sgd_update", &sgd_update, py::arg("params"), py::arg("lr"),
        "data -= lr * grad for each parameter of a list of Values only; False (nothing changed) for anything else.");
}

}  // namespace ag
