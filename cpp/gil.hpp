// Taking the GIL back after work that ran without it (replay, batched replay).
#pragma once
#include <Python.h>

#include <chrono>
#include <thread>

namespace ag {

// PyEval_RestoreThread, except at interpreter exit. Before 3.14, CPython ends
// a daemon thread that takes the GIL back once finalization has begun
// (pthread_exit), unwinding the C++ frames above, whose Python objects are
// then released with no interpreter to release them to: a crash from 3.12,
// where each interpreter has its own allocator. The thread waits here
// instead, for the process to end (or, in a subinterpreter being finalized,
// for ever), as 3.14 makes every such thread wait.
inline void take_gil_back(PyThreadState* ts) {
  try {
    PyEval_RestoreThread(ts);
  } catch (...) {  // the forced unwind: a handler that never returns need not rethrow it
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
  }
}

}  // namespace ag
