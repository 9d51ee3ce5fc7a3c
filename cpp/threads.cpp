// The pool behind threads::run. Threads are started on first use and never
// stopped: they sleep on a condition variable between jobs, so a batch of a
// few hundred microseconds does not pay for starting threads. Nothing here is
// ever destroyed (a static destructor at exit could run under a sleeping or
// working thread), and a forked child starts with an empty pool, since
// fork() copies only the thread that called it.
#include "threads.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace ag {
namespace threads {

struct Pool {
  // Set by the call that owns the pool: an atomic, not a mutex, since a
  // signal handler that a call's `between` runs may ask again on the same
  // thread (a second try_lock of a mutex the thread holds is undefined).
  std::atomic<bool> busy{false};
  std::mutex m;
  std::condition_variable wake, done;
  size_t started = 0;     // pool threads running (workers 1..started)
  size_t generation = 0;  // bumped for each job
  size_t wanted = 0;      // pool threads taking part in the current job
  size_t active = 0;      // pool threads still working on it
  const std::function<void(size_t, size_t)>* body = nullptr;
  std::atomic<size_t> next{0};
  size_t end = 0;

  void work(size_t worker, const std::function<bool()>* between = nullptr);

  void loop(size_t worker) {
    size_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(m);
        wake.wait(lock, [&] { return generation != seen && worker <= wanted; });
        seen = generation;
      }
      work(worker);
      std::lock_guard<std::mutex> lock(m);
      if (--active == 0) done.notify_one();
    }
  }
};

static Pool* pool = new Pool;
static std::atomic<size_t> n_threads{std::max(1u, std::thread::hardware_concurrency())};

static void forget_pool_in_child() { pool = new Pool; }  // the old one's threads did not survive fork
static const int at_fork = pthread_atfork(nullptr, nullptr, forget_pool_in_child);

void Pool::work(size_t worker, const std::function<bool()>* between) {
  for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < end;) {
    (*body)(i, worker);
    // A signal handler `between` ran may have forked: this is then the
    // child, where the pool threads and their items are gone.
    if (between && (!(*between)() || pool != this)) next.store(end, std::memory_order_relaxed);
  }
}

size_t count() { return n_threads; }
void set_count(size_t n) { n_threads = std::max<size_t>(1, n); }

bool run(size_t begin, size_t end, size_t workers, const std::function<void(size_t, size_t)>& body,
         const std::function<bool()>& between) {
  (void)at_fork;
  Pool& p = *pool;
  size_t helpers = std::min(workers, end > begin ? end - begin : 0);
  helpers = helpers > 0 ? helpers - 1 : 0;
  if (helpers == 0 || p.busy.exchange(true, std::memory_order_acquire)) {
    for (size_t i = begin; i < end; ++i) {
      body(i, 0);
      if (between && !between()) break;
    }
    return true;
  }
  {
    std::lock_guard<std::mutex> lock(p.m);
    while (p.started < helpers) {
      size_t worker = ++p.started;
      try {
        std::thread([worker] { pool->loop(worker); }).detach();
      } catch (...) {  // no thread to be had: fewer helpers
        --p.started;
        break;
      }
    }
    helpers = std::min(helpers, p.started);
    p.body = &body;
    p.next.store(begin);
    p.end = end;
    p.wanted = helpers;
    p.active = helpers;
    ++p.generation;
  }
  p.wake.notify_all();
  p.work(0, between ? &between : nullptr);
  if (pool != &p) return false;  // the forked child: no thread will finish, nor unlock p.m
  {
    std::unique_lock<std::mutex> lock(p.m);
    p.done.wait(lock, [&] { return p.active == 0; });
  }
  p.busy.store(false, std::memory_order_release);
  return true;
}

}  // namespace threads
}  // namespace ag
