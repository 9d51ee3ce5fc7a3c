// A small pool of C++ threads for batched replay (threads.cpp).
#pragma once
#include <cstddef>
#include <functional>

namespace ag {
namespace threads {

// The number of threads batched work uses (the calling thread included):
// the machine's cores until set_count changes it.
size_t count();
void set_count(size_t n);

// Runs body(item, worker) for every item in [begin, end), items handed out in
// increasing order to the calling thread (worker 0) and up to workers - 1
// pool threads (workers 1...). Returns when every item is done. body must not
// throw and must not touch Python. If another call holds the pool (a second
// Python thread replaying at the same time, or a signal handler that
// `between` runs), this one runs alone on the calling thread: the answer is
// the same, only slower. `between`, if given, runs on the calling thread
// after each of its items, the pool threads working on meanwhile; once it
// returns false no more items are handed out (those under way finish).
// Returns false only in a child forked by something `between` ran, where
// the items the pool threads had under way are left undone.
bool run(size_t begin, size_t end, size_t workers, const std::function<void(size_t item, size_t worker)>& body,
         const std::function<bool()>& between = nullptr);

}  // namespace threads
}  // namespace ag
