// The invariant checker (check.cpp), for tests and fuzzing.
#pragma once
#include <pybind11/pybind11.h>

namespace ag {

// Walks the whole arena; raises RuntimeError naming the first violation.
pybind11::dict check_invariants();

}  // namespace ag
