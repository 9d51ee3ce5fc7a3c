// arenagrad._core: the Value type (CPython slots, value.cpp), the fused ops
// (raw fast-call functions, nary.cpp) and the engine controls bound with
// pybind11.
#include <pybind11/pybind11.h>

#include <string>

#include "check.hpp"
#include "compile.hpp"
#include "threads.hpp"
#include "graph.hpp"
#include "nary.hpp"
#include "params.hpp"
#include "pickle.hpp"
#include "value.hpp"

namespace py = pybind11;

// The op table as Python sees it: one dict per listed op, in op-code order.
static py::list op_table() {
  py::list ops;
  for (int code = ag::LEAF + 1; code < ag::NUM_OPS; ++code)
    ag::with_op<void>(code, [&](auto t) {
      using S = typename decltype(t)::op;
      if constexpr (!ag::Listed<S>::value) return;
      py::dict d;
      d["name"] = S::name;
      d["arity"] = t.arity == ag::UNARY ? "unary" : t.arity == ag::BINARY ? "binary" : "nary";
      d["kind"] = ag::KIND_NAMES[S::kind];
      d["doc"] = S::doc;
      d["method"] = py::none();
      d["param"] = py::none();
      if constexpr (t.arity == ag::UNARY) {
        if (S::method) d["method"] = S::name;
        if (S::param) d["param"] = py::make_tuple(S::param, S::param_default);
      }
      ops.append(d);
    });
  return ops;
}

PYBIND11_MODULE(_core, m) {
  m.doc() = "arenagrad's engine: the node arena, the Value type and the fused ops.";

  if (!ag::init_value_type()) throw py::error_already_set();
  Py_INCREF(&ag::ValueType);
  m.add_object("Value", reinterpret_cast<PyObject*>(&ag::ValueType));
  if (!ag::add_fused_ops(m.ptr())) throw py::error_already_set();

  // A mode is a bool: pybind11 would also take None (as False) and 0.5 (as
  // True). The flag is thread_local, so it is reached through a function run
  // on the calling thread, never captured by reference.
  auto def_mode_setter = [&m](const char* name, bool& (*flag)(), const char* doc) {
    m.def(
        name,
        [name, flag](py::handle on) {
          if (!PyBool_Check(on.ptr()))
            throw py::type_error(std::string(name) + "(): mode must be a bool, not '" + Py_TYPE(on.ptr())->tp_name + "'");
          bool was = flag();
          flag() = on.ptr() == Py_True;
          return was;
        },
        py::arg("mode"), doc);
  };
  def_mode_setter("set_grad_enabled", [] () -> bool& { return ag::grad_enabled; },
                  "Turn graph recording on or off for this thread; returns the previous mode.");
  def_mode_setter("set_detect_anomaly", [] () -> bool& { return ag::anomaly_enabled; },
                  "Turn NaN/inf detection on or off for this thread; returns the previous mode.");
  m.def(
      "_backward_keeping_intermediate",
      [](py::handle v) {
        if (!ag::is_value(v.ptr())) throw py::type_error("expected a Value");
        if (!(ag::node_of(v.ptr())->flags & ag::REQUIRES_GRAD))
          throw std::runtime_error("backward(): this Value does not require grad");
        PyObject* r = ag::run_backward(v.ptr(), 1.0, true);
        if (!r) throw py::error_already_set();
        return py::reinterpret_steal<py::object>(r);
      },
      py::arg("value"),
      "micrograd's backward: seeds 1.0 and adds into intermediate gradients instead of recomputing them.");
  m.def(
      "_set_micrograd_class",
      [](py::handle cls) {
        if (!ag::set_micrograd_class(cls.ptr())) throw py::error_already_set();
      },
      py::arg("cls"), "Wrap the nodes arenagrad.micrograd makes in `cls`, and make its numbers nodes.");
  static PyMethodDef restore_def = {"_restore", ag::value_restore, METH_VARARGS,
                                    "Rebuild a Value from what Value.__reduce__ gave (pickle, copy)."};
  m.add_object("_restore", py::reinterpret_steal<py::object>(PyCFunction_NewEx(&restore_def, nullptr, m.attr("__name__").ptr())));
  m.def(
      "is_anomaly_enabled", [] { return ag::anomaly_enabled; }, "Whether NaN/inf detection is on for this thread.");
  m.def(
      "is_grad_enabled", [] { return ag::grad_enabled; }, "Whether ops on this thread record a graph.");
  m.def(
      "engine_stats",
      [] {
        py::dict d;
        d["live_nodes"] = ag::pool::live();
        d["capacity_nodes"] = ag::pool::capacity();
        d["chunks"] = ag::pool::chunk_count();
        d["node_bytes"] = sizeof(ag::Node);
        d["side_slots_live"] = ag::pool::slots_live();
        return d;
      },
      "Arena counters: live nodes, nodes carved, bytes per node, side-pool slots in use.");
  m.attr("NODE_BYTES") = sizeof(ag::Node);
  m.def(
      "set_num_threads",
      [](py::handle n) {
        if (!PyLong_Check(n.ptr()) || PyBool_Check(n.ptr()))
          throw py::type_error("set_num_threads(): n must be an int, not '" + std::string(Py_TYPE(n.ptr())->tp_name) +
                               "'");
        long long v = PyLong_AsLongLong(n.ptr());
        if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
        if (v < 1 || v > 1024) throw py::value_error("set_num_threads(): n must be between 1 and 1024, got " + std::to_string(v));
        ag::threads::set_count(static_cast<size_t>(v));
      },
      py::arg("n"),
      "Threads for batched replay (CompiledGraph.forward(rows)); results are the same bits for any n.");
  m.def(
      "get_num_threads", [] { return ag::threads::count(); },
      "Threads batched replay uses: the machine's cores unless set_num_threads changed it.");
  m.def("ops", &op_table,
        "The op table, one dict per op: name, arity ('unary', 'binary', 'nary'), kind\n"
        "('arithmetic', 'activation', 'exp_log'), doc, method (the Value method's name or None)\n"
        "and param ((name, default) of the method's optional argument, or None).");
  m.def(
      "_set_traversal_epoch",
      [](uint32_t e) {
        if (e < ag::current_epoch()) throw py::value_error("the traversal epoch only moves forward");
        ag::set_epoch(e);
      },
      py::arg("epoch"), "Tests only: move the traversal counter forward (to exercise its wrap-around).");
  m.def(
      "_arena_position",
      [](py::handle v) {
        if (!ag::is_value(v.ptr())) throw py::type_error("_arena_position() takes a Value");
        return ag::pool::position(ag::node_of(v.ptr()));
      },
      py::arg("value"), "Tests only: a Value's node's place in the arena (free nodes are reused lowest first).");
  m.def(
      "_fail_next_grow",
      [](int step) {
        if (step < 0 || step > 3) throw py::value_error("step must be 0 (the chunk) to 3 (a bitmap's room)");
        ag::pool::fail_grow_at(step);
      },
      py::arg("step"), "Tests only: the arena's next growth fails at this step, as if out of memory.");
  m.def("_check_invariants", &ag::check_invariants,
        "Walk the whole arena and check reference counts, wrappers, inputs and the free nodes;\n"
        "raises RuntimeError naming the first violation. O(nodes): for tests and fuzzing.");
  ag::bind_compile(m);
  ag::bind_params(m);
}
