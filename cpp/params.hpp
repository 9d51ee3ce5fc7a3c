// Bulk reads and writes of many Values' data or grad (params.cpp), for the
// optimizers: on a scalar engine a step's cost is the per-parameter Python
// attribute traffic, which these replace with one C loop.
#pragma once
#include <pybind11/pybind11.h>

namespace ag {

void bind_params(pybind11::module_& m);

}  // namespace ag
