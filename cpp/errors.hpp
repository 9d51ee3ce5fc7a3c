// Python-side errors and number arguments (errors.cpp).
#pragma once
#include <Python.h>

#include "ops.hpp"

namespace ag {

// 1 and *out set if o is a real number (float, int, bool, numpy scalar),
// 0 if it is not (caller returns NotImplemented or raises TypeError),
// -1 with a Python error set (an int too large for a float).
int as_number(PyObject* o, double* out);

// A number argument named `what` in messages: false with TypeError ("<what>
// must be a real number") or OverflowError (an int too large for a float) set.
bool number_arg(PyObject* o, const char* what, double* out);

// repr(float(d)) as a new str; nullptr with an error set.
PyObject* float_repr(double d);

// Raises the Python exception for a failed op; always returns nullptr.
PyObject* raise_op_error(const char* op, Err e, double a, double b, bool binary);

// Raises FloatingPointError for an op whose result or gradient is not finite
// (naming nan, inf or -inf); always returns nullptr.
PyObject* raise_anomaly(const char* op, const char* where, double y);

}  // namespace ag
