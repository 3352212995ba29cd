#include "cpu/thread_pool.h"

#include <atomic>
#include <cstdint>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define NNFAST_HAVE_ATFORK 1
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace nnfast::cpu {

namespace {

using Task = void (*)(void*, int64_t);
using Clock = std::chrono::steady_clock;

// How long an idle worker polls for the next call before it sleeps: long enough to
// bridge the Python between the calls of one training step, short enough that
// idle workers leave a busy machine's cores to others.
constexpr auto kWorkerSpin = std::chrono::microseconds(50);
// How long a caller whose tasks are all claimed polls for the last ones before it
// yields its core (to the worker running them, if they share it).
constexpr auto kCallerSpin = std::chrono::microseconds(20);
// A gap this long between two clock reads of a poll (64 pauses, a microsecond or
// two) means the OS took the thread's core away: the machine is oversubscribed.
constexpr auto kPreempted = std::chrono::microseconds(40);
// After that, for this long, workers sleep as soon as a call is done instead of
// polling (a polling worker uses up its time slice and is preempted in the middle
// of the next call, which then waits for it, while a worker woken from sleep
// starts with a fresh slice and the scheduler favours it), and only long calls
// wake them (waking a thread costs a system call, and on a busy machine it may
// not run before a short call is over).
constexpr auto kQuietAfterPreemption = std::chrono::milliseconds(50);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

enum class Poll { done, timed_out, preempted };

// Polls done() (with a clock read every 64 polls) for at most `limit`, or until
// the thread is seen to have been preempted.
template <class Done>
Poll poll_for(std::chrono::microseconds limit, const Done& done) {
  const Clock::time_point start = Clock::now();
  Clock::time_point last = start;
  for (unsigned polls = 1;; ++polls) {
    if (done()) return Poll::done;
    cpu_relax();
    if (polls % 64 == 0) {
      const Clock::time_point now = Clock::now();
      if (now - last > kPreempted) return Poll::preempted;
      if (now - start > limit) return Poll::timed_out;
      last = now;
    }
  }
}

class Pool {
 public:
  void run(uint32_t count, int threads, bool long_call, Task task, void* context) {
    std::unique_lock<std::mutex> owner(call_mutex_, std::try_to_lock);
    if (!owner.owns_lock()) {  // another thread's call holds the pool: run on this one
      for (uint32_t i = 0; i < count; ++i) task(context, i);
      return;
    }
    start_workers(threads - 1);
    task_.store(task, std::memory_order_relaxed);
    context_.store(context, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    participants_.store(threads - 1, std::memory_order_relaxed);
    // Publishes the call (release: the fields above are seen by whoever claims).
    next_.store(pack(0, count), std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0 && (long_call || !quiet())) {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      wake_.notify_all();
    }
    claim_and_run();
    const Poll last = poll_for(kCallerSpin, [&] { return done_.load(std::memory_order_acquire) == count; });
    if (last == Poll::preempted) go_quiet();
    if (last != Poll::done) {
      while (done_.load(std::memory_order_acquire) != count) std::this_thread::yield();
    }
  }

 private:
  // The claim word: the next unclaimed index of the call in its low 32 bits and the
  // call's task count in its high 32. A claim is one compare-and-swap from (i, n)
  // to (i + 1, n) with i < n; a value (i, n) is only ever a state of the call that
  // holds the pool, so a worker that read it during an earlier call and claims late
  // claims a task of the current call, validly, and never one past its end.
  static uint64_t pack(uint32_t index, uint32_t count) {
    return (static_cast<uint64_t>(count) << 32) | index;
  }

  void claim_and_run() {
    uint64_t word = next_.load(std::memory_order_acquire);
    for (;;) {
      const uint32_t index = static_cast<uint32_t>(word);
      if (index >= static_cast<uint32_t>(word >> 32)) return;
      if (!next_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel,
                                       std::memory_order_acquire))
        continue;
      task_.load(std::memory_order_relaxed)(context_.load(std::memory_order_relaxed), index);
      done_.fetch_add(1, std::memory_order_release);
      word = next_.load(std::memory_order_acquire);
    }
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

  // Whether a thread of the pool was preempted in the last kQuietAfterPreemption.
  bool quiet() const {
    return Clock::now().time_since_epoch().count() < quiet_until_.load(std::memory_order_relaxed);
  }
  void go_quiet() {
    quiet_until_.store((Clock::now() + kQuietAfterPreemption).time_since_epoch().count(),
                       std::memory_order_relaxed);
  }

  [[noreturn]] void work(int index, uint32_t seen) {
    for (;;) {
      const auto called = [&] { return generation_.load(std::memory_order_acquire) != seen; };
      const Poll poll = quiet() ? Poll::timed_out : poll_for(kWorkerSpin, called);
      if (poll == Poll::preempted) go_quiet();
      if (poll != Poll::done) sleep_until_called(seen);
      seen = generation_.load(std::memory_order_acquire);
      if (index < participants_.load(std::memory_order_relaxed)) claim_and_run();
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

  std::atomic<uint64_t> next_{0};
  std::atomic<uint32_t> done_{0};
  std::atomic<Task> task_{nullptr};
  std::atomic<void*> context_{nullptr};
  std::atomic<int> participants_{0};  // workers with a smaller index take part

  std::atomic<uint32_t> generation_{0};  // one more per call: what idle workers wait for
  std::atomic<Clock::rep> quiet_until_{0};
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

void run_tasks(int64_t count, int threads, bool long_call, Task task, void* context) {
  // (The claim word holds 32-bit indices; 2^32 tasks, chunks of at least 2,048
  // elements or tensors of a list, are more than any memory holds.)
  if (threads <= 1 || count <= 1 || count > UINT32_MAX) {
    for (int64_t i = 0; i < count; ++i) task(context, i);
    return;
  }
  pool().run(static_cast<uint32_t>(count), threads < kMaxThreads ? threads : kMaxThreads, long_call,
             task, context);
}

}  // namespace nnfast::cpu
