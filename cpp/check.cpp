// The engine's invariant checker, for tests and fuzzing: walks every chunk of
// the arena and verifies what the fast paths take for granted. O(nodes); never
// called by the engine itself.
#include <pybind11/pybind11.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "graph.hpp"
#include "value.hpp"

namespace py = pybind11;

namespace ag {

std::vector<Node*> compiled_refs();  // compile.cpp: nodes held by live compiled graphs

static void fail(const std::string& what) { throw std::runtime_error("engine invariant violated: " + what); }

py::dict check_invariants() {
  const size_t per = pool::chunk_nodes();
  std::unordered_map<const Node*, size_t> expected;  // references each live node should have
  size_t live = 0, wrapped = 0;
  auto in_arena = [&](const Node* p) {
    for (size_t c = 0; c < pool::chunk_count(); ++c) {
      const Node* base = pool::chunk(c);
      if (p >= base && p < base + per) return (reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(base)) % sizeof(Node) == 0;
    }
    return false;
  };
  // Pass 1: live nodes, their wrappers, their inputs.
  for (size_t c = 0; c < pool::chunk_count(); ++c) {
    Node* base = pool::chunk(c);
    for (size_t i = 0; i < per; ++i) {
      Node* n = base + i;
      if (n->op == OP_FREE) continue;
      ++live;
      if (n->op >= NUM_OPS) fail("node with unknown op code " + std::to_string(n->op));
      if (n->refs == 0) fail("live node with no references (op " + std::string(op_name(n->op)) + ")");
      if (n->stamp > current_epoch()) fail("stamp from the future");
      if (n->py) {
        ++wrapped;
        if (Py_TYPE(n->py) != &ValueType || node_of(n->py) != n) fail("wrapper does not point back to its node");
        if (Py_REFCNT(n->py) <= 0) fail("wrapper with a non-positive reference count");
        expected[n] += 1;
      }
      if (is_nary(n->op)) {
        if (n->nin == 0 || !n->args) fail("n-ary node without operands");
        if ((n->flags & CONST_Y) && (n->op != DOT || n->nin % 2)) fail("CONST_Y on a node that is not a dot");
      } else if (is_binary(n->op)) {
        if (!n->in[0] != bool(n->flags & CONST_A) || !n->in[1] != bool(n->flags & CONST_B))
          fail("binary node whose constant flags disagree with its inputs");
      } else if (is_unary(n->op)) {
        if (!n->in[0] || n->in[1]) fail("unary node without exactly one input");
      } else if (n->in[0] || n->in[1]) {
        fail("leaf with inputs");
      }
      // An op node requires grad iff one of its inputs did when it was built.
      // Op nodes never change the flag, leaves may (the requires_grad setter,
      // as in torch: the existing graph keeps what it was built with).
      bool op_input_rg = false, leaf_input = false;
      for_each_input(n, [&](Node* in) {
        if (!in_arena(in)) fail("input pointer outside the arena");
        if (in->op == OP_FREE) fail("input that has been freed (op " + std::string(op_name(n->op)) + ")");
        expected[in] += 1;
        if (in->op == LEAF) leaf_input = true;
        else op_input_rg |= bool(in->flags & REQUIRES_GRAD);
      });
      bool rg = n->flags & REQUIRES_GRAD;
      if (n->op != LEAF && ((op_input_rg && !rg) || (rg && !op_input_rg && !leaf_input)))
        fail("requires_grad of an op node does not follow from its inputs'");
    }
  }
  for (Node* n : compiled_refs()) expected[n] += 1;
  // Pass 2: counts.
  for (const auto& kv : expected) {
    if (kv.first->op == OP_FREE) fail("a compiled graph holds a freed node");
    if (kv.first->refs != kv.second)
      fail("reference count " + std::to_string(kv.first->refs) + " but " + std::to_string(kv.second) +
           " references found (op " + op_name(kv.first->op) + ")");
  }
  if (expected.size() != live) fail("a live node that nothing refers to (leaked)");
  if (live != pool::live) fail("live count " + std::to_string(pool::live) + " but " + std::to_string(live) + " live nodes");
  // The free list holds exactly the free nodes.
  size_t free_count = 0;
  for (Node* f = pool::free_head; f; f = f->next_free) {
    if (++free_count > pool::capacity()) fail("the free list has a cycle");
    if (!in_arena(f)) fail("free list entry outside the arena");
    if (f->op != OP_FREE) fail("a live node on the free list");
  }
  if (free_count + live != pool::capacity()) fail("free list and live nodes do not add up to the arena");
  py::dict d;
  d["live_nodes"] = live;
  d["wrapped"] = wrapped;
  d["free_nodes"] = free_count;
  return d;
}

}  // namespace ag
