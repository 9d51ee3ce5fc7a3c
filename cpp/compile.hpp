// Compiled replay (compile.cpp): the CompiledGraph class.
#pragma once
#include <pybind11/pybind11.h>

#include <vector>

#include "node.hpp"

namespace ag {

void bind_compile(pybind11::module_& m);

// Every node a live compiled graph holds a reference to, once per reference
// (for the invariant checker).
std::vector<Node*> compiled_refs();

}  // namespace ag
