// nnfast's own thread pool: the threads of every CPU driver.
//
// A parallel call hands out the indices [0, count) of its tasks from one shared
// counter: the calling thread and every worker that is running claim the next
// index until none is left, so a call finishes as soon as its tasks are done and
// never waits for a worker the OS has not scheduled (on a busy machine it simply
// runs more of them itself). Each thread works through a range of its own, the
// others steal from its end once theirs is empty. Workers poll for the next call
// for 300 us after one, then sleep. The pool starts on the first parallel call,
// and a forked child starts with a fresh, empty pool (pthread_atfork), so a
// process forked after a parallel call (multiprocessing's "fork" start method,
// data-loader workers) runs its own calls; the parent's pool keeps working.
//
// A call made while another thread's call holds the pool runs on its caller
// alone, as does every call on one thread.
#pragma once

#include <cstdint>

namespace nnfast::cpu {

// The most threads a call may use (set_num_threads refuses more).
constexpr int kMaxThreads = 1024;

// Runs task(context, i) for every i in [0, count), each exactly once, on at most
// `threads` threads (the caller included), and returns when all have run.
void run_tasks(int64_t count, int threads, void (*task)(void* context, int64_t index),
               void* context);

}  // namespace nnfast::cpu
