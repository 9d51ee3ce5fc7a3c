// Python-side errors and number arguments, shared by every file that talks
// to Python: how a Python number becomes a double, and how a failed op or an
// anomaly becomes the exception a Python user expects.
#include "errors.hpp"

namespace ag {

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

PyObject* float_repr(double d) {
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

PyObject* raise_anomaly(const char* op, const char* where, double y) {
  PyErr_Format(PyExc_FloatingPointError, "%s produced %s in %s (ag.detect_anomaly() is on)", op,
               std::isnan(y) ? "nan" : (y > 0 ? "inf" : "-inf"), where);
  return nullptr;
}

}  // namespace ag
