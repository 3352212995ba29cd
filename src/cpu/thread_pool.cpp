#include "cpu/thread_pool.h"

#include <atomic>
#include <cstdint>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define NNFAST_HAVE_ATFORK 1
#endif

namespace nnfast::cpu {

namespace {

using Task = void (*)(void*, int64_t);
using Clock = std::chrono::steady_clock;

// How long an idle worker polls for the next call before it sleeps: long enough to
// bridge the Python between the calls of one training step (waking a sleeping
// thread takes from microseconds on bare metal to a few hundred under a
// hypervisor, whose idle virtual CPU must be woken too), short enough that idle
// workers leave a busy machine's cores to others.
constexpr auto kWorkerSpin = std::chrono::microseconds(300);
// How long a caller whose tasks are all claimed polls for the last ones before it
// yields its core (to the worker running them, if they share it).
constexpr auto kCallerSpin = std::chrono::microseconds(20);

// Between two polls. Not x86's PAUSE: under a hypervisor a PAUSE loop is taken for
// a spin-lock waiter and the virtual CPU is descheduled (pause-loop exiting, AMD's
// pause filter), which left a polling worker with 3% of the chunks of 100,000-element
// calls instead of 23-45%. (Each poll is an atomic load, which no compiler
// merges; the fence only keeps the loop from being reordered around it.)
inline void between_polls() { std::atomic_signal_fence(std::memory_order_seq_cst); }

// Polls done() (with a clock read every 64 polls) for at most `limit`; true if it
// became true.
template <class Done>
bool poll_for(std::chrono::microseconds limit, const Done& done) {
  const Clock::time_point start = Clock::now();
  for (unsigned polls = 1;; ++polls) {
    if (done()) return true;
    between_polls();
    if (polls % 64 == 0 && Clock::now() - start > limit) return false;
  }
}

class Pool {
 public:
  void run(uint32_t count, int threads, Task task, void* context) {
    std::unique_lock<std::mutex> owner(call_mutex_, std::try_to_lock);
    if (!owner.owns_lock()) {  // another thread's call holds the pool: run on this one
      for (uint32_t i = 0; i < count; ++i) task(context, i);
      return;
    }
    start_workers(threads - 1);
    task_.store(task, std::memory_order_relaxed);
    context_.store(context, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    ranges_in_use_.store(threads, std::memory_order_relaxed);
    // Publishes the call (release: the fields above are seen by whoever claims).
    for (int r = 0; r < threads; ++r)
      ranges_[r].word.store(pack(static_cast<uint32_t>(uint64_t{count} * r / threads),
                                 static_cast<uint32_t>(uint64_t{count} * (r + 1) / threads)),
                            std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      wake_.notify_all();
    }
    claim_and_run(0);
    if (!poll_for(kCallerSpin, [&] { return done_.load(std::memory_order_acquire) == count; })) {
      while (done_.load(std::memory_order_acquire) != count) std::this_thread::yield();
    }
  }

 private:
  // The tasks of a call are cut into one contiguous range per thread (range 0 the
  // caller's, range w + 1 worker w's), so that each thread streams through memory
  // in order and, call after call, works on the same elements (a working set that
  // fits in the caches stays in its core's). A range's word holds its next
  // unclaimed index in the low 32 bits and its end in the high 32. Its own thread
  // claims from the front, (i, e) -> (i + 1, e); a thread whose range is empty
  // steals from the back of another's, (i, e) -> (i, e - 1): each one
  // compare-and-swap, made only while i < e. All ranges are empty between calls,
  // so a word with i < e is only ever a state of the call that holds the pool: a
  // worker that read one during an earlier call and claims late claims a task of
  // the current call, validly, and never one outside it.
  static uint64_t pack(uint32_t next, uint32_t end) { return (uint64_t{end} << 32) | next; }

  // A task claimed from range r's front (or back), or -1 if the range is empty.
  int64_t claim(int r, bool back) {
    std::atomic<uint64_t>& word = ranges_[r].word;
    uint64_t w = word.load(std::memory_order_acquire);
    for (;;) {
      const uint32_t next = static_cast<uint32_t>(w), end = static_cast<uint32_t>(w >> 32);
      if (next >= end) return -1;
      const uint64_t claimed = back ? pack(next, end - 1) : pack(next + 1, end);
      if (word.compare_exchange_weak(w, claimed, std::memory_order_acq_rel,
                                     std::memory_order_acquire))
        return back ? end - 1 : next;
    }
  }

  // Runs tasks of range `own` (none if it is not in use), then steals until every
  // range is empty; the tasks run are counted once, at the end.
  void claim_and_run(int own) {
    const int ranges = ranges_in_use_.load(std::memory_order_relaxed);
    uint32_t ran = 0;
    for (;;) {
      int64_t task = own < ranges ? claim(own, false) : -1;
      for (int k = 1; task < 0 && k < ranges; ++k) task = claim((own + k) % ranges, true);
      if (task < 0) break;
      task_.load(std::memory_order_relaxed)(context_.load(std::memory_order_relaxed), task);
      ++ran;
    }
    if (ran) done_.fetch_add(ran, std::memory_order_release);
  }

  void start_workers(int wanted) {
    while (static_cast<int>(workers_.size()) < wanted) {
      const int index = static_cast<int>(workers_.size());
      const uint32_t seen = generation_.load(std::memory_order_relaxed);
      try {
        workers_.emplace_back([this, index, seen] { work(index, seen); });
      } catch (const std::system_error&) {
        return;  // the OS refuses more threads: the calls run on those there are
      }
    }
  }

  [[noreturn]] void work(int index, uint32_t seen) {
    for (;;) {
      const auto called = [&] { return generation_.load(std::memory_order_acquire) != seen; };
      if (!poll_for(kWorkerSpin, called)) sleep_until_called(seen);
      seen = generation_.load(std::memory_order_acquire);
      if (index + 1 < ranges_in_use_.load(std::memory_order_relaxed)) claim_and_run(index + 1);
    }
  }

  // (The sleeper count and the generation are seq_cst on both sides, so a caller
  // either sees this worker asleep and wakes it, or this worker sees the new call.)
  void sleep_until_called(uint32_t seen) {
    std::unique_lock<std::mutex> lock(sleep_mutex_);
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    wake_.wait(lock, [&] { return generation_.load(std::memory_order_seq_cst) != seen; });
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }

  struct alignas(64) Range {  // a cache line each: every thread claims from its own
    std::atomic<uint64_t> word{0};
  };
  std::unique_ptr<Range[]> ranges_{new Range[kMaxThreads]};
  std::atomic<int> ranges_in_use_{0};  // the call's thread count: workers past it stay out
  std::atomic<uint32_t> done_{0};
  std::atomic<Task> task_{nullptr};
  std::atomic<void*> context_{nullptr};

  std::atomic<uint32_t> generation_{0};  // one more per call: what idle workers wait for
  std::atomic<int> sleepers_{0};
  std::mutex sleep_mutex_;
  std::condition_variable wake_;

  std::mutex call_mutex_;  // held by the call running on the pool
  // Never joined or destroyed: the pool lives as long as the process (a forked
  // child abandons its copy, whose threads do not exist there).
  std::vector<std::thread> workers_;
};

std::atomic<Pool*> g_pool{nullptr};

#if defined(NNFAST_HAVE_ATFORK)
// The child of a fork has only the forking thread: the parent's workers, and any
// lock they held, are not there. It gets a fresh pool on its first call.
void abandon_pool_in_child() { g_pool.store(nullptr, std::memory_order_relaxed); }
#endif

Pool& pool() {
  Pool* p = g_pool.load(std::memory_order_acquire);
  if (p) return *p;
#if defined(NNFAST_HAVE_ATFORK)
  static const int registered = pthread_atfork(nullptr, nullptr, abandon_pool_in_child);
  (void)registered;
#endif
  Pool* fresh = new Pool;
  if (g_pool.compare_exchange_strong(p, fresh, std::memory_order_acq_rel)) return *fresh;
  delete fresh;  // another thread's came first (it has started no thread yet)
  return *p;
}

}  // namespace

void run_tasks(int64_t count, int threads, Task task, void* context) {
  // (The claim word holds 32-bit indices; 2^32 tasks, chunks of at least 2,048
  // elements or tensors of a list, are more than any memory holds.)
  if (threads <= 1 || count <= 1 || count > UINT32_MAX) {
    for (int64_t i = 0; i < count; ++i) task(context, i);
    return;
  }
  pool().run(static_cast<uint32_t>(count), threads < kMaxThreads ? threads : kMaxThreads, task,
             context);
}

}  // namespace nnfast::cpu
