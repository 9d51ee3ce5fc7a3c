// Batched replay (batch.cpp): one compiled graph over many rows of inputs.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "compile.hpp"

namespace ag {

// The plan for replaying a compiled graph over rows: which entries vary by
// row (an input, or computed from one) and which are the same for every row
// (uniform: shared leaves, numbers and what is computed from them alone).
// Varying entries are computed lane-major, a block of rows at a time (lanes
// of one entry contiguous, so the inner loop over rows vectorises); uniform
// ones are computed once and broadcast as scalars into the lane loops.
struct Batch {
  size_t width = 0;                   // most lanes (rows) per block (a run may take fewer: Run::W)
  std::vector<uint32_t> input_entry;  // per input column: its entry, or NONE if the graph does not read it
  std::vector<uint32_t> slot;         // per entry: its lane block, or NONE if uniform
  std::vector<uint32_t> kept_slot;    // per entry: the lane block of what forward keeps for backward (Keeps), or NONE
  uint32_t nslots = 0;                // lane blocks: the inputs the graph reads, then `vary` (and what they keep)
  std::vector<uint32_t> vary;         // varying computed entries, topological order
  std::vector<uint32_t> uniform;      // uniform computed entries, topological order
  std::vector<uint8_t> sweep;         // per entry: batched backward passes through it
  std::vector<uint32_t> gslot;        // per entry: its gradient lane block, reused (see plan_gradient_blocks), or NONE
  size_t ngrad = 0;                   // gradient lane blocks
  std::vector<uint32_t> bound;        // per entry: its index among uniform entries fed by varying ones, or NONE
  size_t nbound = 0;
  size_t max_slots = 0;               // the most operand slots of a varying n-ary entry
  std::vector<uint32_t> bcast_at;     // per varying n-ary entry: its first broadcast lane block (NONE: Src operands)
  size_t nbcast = 0;                  // broadcast lane blocks in all (uniform operands, numbers)
  double row_work = 0;                // a row's operand reads over `vary`: the work of a row, for threads

  // The last batched forward: its rows and the uniform values it used.
  std::vector<double> rows;
  // The rows of the call in progress, a copy (rows may be a view of memory
  // Python can change), kept between calls: a fresh one faulted its pages in
  // every call (and freeing it trimmed the heap, so the result arrays did too),
  // 15% of a 1,000-row value_and_grad on a 1,000-op graph. Kept up to
  // KEEP_ROWS_BYTES: a larger one would hold a big batch's memory twice.
  std::vector<double> next_rows;
  static constexpr size_t KEEP_ROWS_BYTES = size_t(64) << 20;
  size_t nrows = 0;
  bool ready = false;
  std::vector<double> uval;

  std::vector<std::vector<double>> work;  // per worker: one block's values and gradients
  std::vector<double> sums;               // per chunk of rows: gradients summed into bound entries
};

// The plan for c's graph with `inputs` (entries, or NONE) varying by row.
std::unique_ptr<Batch> plan_batch(const Compiled& c, const std::vector<uint32_t>& inputs);

// forward(X) and backward(grad_outputs) of a graph compiled with inputs.
pybind11::object batch_forward(Compiled& c, pybind11::handle X);
pybind11::object batch_backward(Compiled& c, pybind11::handle grad_outputs);
// Both in one pass over the rows (each row's values are computed once, not
// again for backward): (forward(rows)'s result, backward's input gradients),
// shared leaves' .grad added to as backward does.
pybind11::object batch_value_and_grad(Compiled& c, pybind11::handle rows, pybind11::handle grad_outputs);

// An array argument as float64, C order; numbers only (numpy would turn None
// into NaN and '1.5' into 1.5 without a word). `what` names it in errors.
pybind11::array_t<double> numbers_array(pybind11::handle array, const std::string& what);

// A shape as numpy writes it: "(3,)", "(2, 5)".
std::string shape_text(const std::vector<pybind11::ssize_t>& shape);

// A graph's rows argument as an (N, k) float64 array, k = its inputs; `what`
// names it in errors ("forward(): rows").
pybind11::array_t<double> rows_array(const Compiled& c, pybind11::handle rows, const std::string& what);

// Runs body(item, worker) for items [0, items) on the pool without the GIL
// (item_work: about the lane-ops of one item); every few ms of its own items
// the calling thread retakes the GIL to let Ctrl-C in. Stops handing out
// items once `failed` is set (not SIZE_MAX). Returns, every item under way
// done, false with the Python error set if a signal handler raised (or, in
// a child a handler forked, RuntimeError). body must not touch Python.
bool run_on_pool(size_t items, double item_work, size_t workers, const std::atomic<size_t>& failed,
                 const std::function<void(size_t item, size_t worker)>& body);

// Re-raises the Python error being raised with " (in row i of the batch)"
// added, keeping its type.
[[noreturn]] void raise_in_row(size_t row);

}  // namespace ag
