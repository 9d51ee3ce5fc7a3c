// The fused n-ary ops as module functions (nary.cpp): sum, mean, dot,
// logsumexp, softmax, log_softmax.
#pragma once
#include <Python.h>

namespace ag {

// Adds them to `module`; false with a Python error set.
bool add_fused_ops(PyObject* module);

}  // namespace ag
