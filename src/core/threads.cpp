#include <omp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "sinklab/core.h"

namespace sinklab {
namespace {

// Runs body(task, slot) for every task in [0, n) on the calling thread (slot 0)
// and on idle pool workers (slots 1..threads-1). Tasks are claimed one at a
// time and the caller waits only for tasks that were claimed, never for a
// worker that has not started: on a machine whose cores are busy with other
// processes, a worker the OS has not scheduled costs nothing (an OpenMP team
// would wait for it at the join).
// Decode calls this ~100 times per token, so idle workers spin briefly before
// they sleep. Kernels on the decode path use this pool and not OpenMP: an
// OpenMP team spinning after its region would take the CPU from these workers.
class TaskPool {
 public:
  using Body = std::function<void(int64_t, int)>;

  static TaskPool& instance() {
    static TaskPool pool;
    return pool;
  }

  void run(int64_t n, int threads, const Body& body) {
    std::unique_lock<std::mutex> exclusive(run_mu_, std::try_to_lock);
    if (n <= 1 || threads <= 1 || !exclusive.owns_lock()) {  // serial, or another caller holds the pool
      for (int64_t c = 0; c < n; ++c) body(c, 0);
      return;
    }
    uint32_t gen;
    {
      std::lock_guard<std::mutex> lk(mu_);
      while (int(workers_.size()) < threads - 1) {
        const int index = int(workers_.size());
        workers_.emplace_back([this, index] { worker_loop(index); });
      }
      gen = ++generation_;
      body_ = &body;
      n_chunks_ = n;
      active_workers_ = threads - 1;
      done_.store(0, std::memory_order_relaxed);
      cursor_.store(uint64_t(gen) << 32, std::memory_order_release);
      published_.store(gen, std::memory_order_release);
      if (sleepers_ > 0) cv_.notify_all();
    }
    claim(gen, n, 0, body);
    // Workers finish their last task within microseconds: spin first (a yield
    // is a system call), and yield only if one was descheduled mid-task.
    for (int spin = 0; done_.load(std::memory_order_acquire) < n; ++spin) {
      if (spin < 20000)
        __builtin_ia32_pause();
      else
        std::this_thread::yield();
    }
  }

  ~TaskPool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      published_.store(generation_ + 1, std::memory_order_release);
    }
    cv_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

 private:
  TaskPool() = default;

  void claim(uint32_t gen, int64_t n, int slot, const Body& body) {
    uint64_t cur = cursor_.load(std::memory_order_acquire);
    for (;;) {
      if (uint32_t(cur >> 32) != gen || int64_t(cur & 0xffffffffu) >= n) return;
      if (!cursor_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) continue;
      body(int64_t(cur & 0xffffffffu), slot);
      done_.fetch_add(1, std::memory_order_release);
      cur = cursor_.load(std::memory_order_acquire);
    }
  }

  void worker_loop(int index) {
    uint32_t seen = 0;
    for (;;) {
      for (int spin = 0; spin < 20000 && published_.load(std::memory_order_acquire) == seen; ++spin)
        __builtin_ia32_pause();
      const Body* body;
      int64_t n;
      {
        std::unique_lock<std::mutex> lk(mu_);
        ++sleepers_;
        cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
        --sleepers_;
        if (stop_) return;
        seen = generation_;
        if (index >= active_workers_) continue;
        body = body_;
        n = n_chunks_;
      }
      claim(seen, n, index + 1, *body);
    }
  }

  std::mutex run_mu_;  // one caller at a time
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
  uint32_t generation_ = 0;  // guarded by mu_
  const Body* body_ = nullptr;
  int64_t n_chunks_ = 0;
  int active_workers_ = 0;
  int sleepers_ = 0;
  bool stop_ = false;
  std::atomic<uint32_t> published_{0};  // generation_, readable without the lock
  std::atomic<uint64_t> cursor_{0};     // (generation << 32) | next chunk
  std::atomic<int64_t> done_{0};
};

}  // namespace


void set_num_threads(int n) { omp_set_num_threads(n > 0 ? n : omp_get_num_procs()); }
int num_threads() { return omp_get_max_threads(); }

void parallel_tasks(int64_t n, int threads, const std::function<void(int64_t, int)>& body) {
  TaskPool::instance().run(n, threads, body);
}

namespace {

// One thread's part of a parallel_ranges call: the pieces [begin, end) still
// unclaimed, packed into one word so that the owner (from the front) and a
// thief (from the back) claim with one compare-and-swap. Own cache lines (two,
// as adjacent-line prefetchers fetch pairs) so owners never share one.
struct alignas(128) RangePart {
  std::atomic<uint64_t> span{0};  // (begin << 32) | end, in pieces
};

bool claim_piece(RangePart& part, bool from_front, int64_t& piece) {
  uint64_t cur = part.span.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t begin = cur >> 32, end = cur & 0xffffffffu;
    if (begin >= end) return false;
    const uint64_t next = from_front ? ((begin + 1) << 32) | end : (begin << 32) | (end - 1);
    if (part.span.compare_exchange_weak(cur, next, std::memory_order_relaxed)) {
      piece = int64_t(from_front ? begin : end - 1);
      return true;
    }
  }
}

}  // namespace

void parallel_ranges(int64_t n, int64_t grain, int threads,
                     const std::function<void(int64_t, int64_t, int)>& body) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t pieces = (n + grain - 1) / grain;
  check(pieces < (int64_t(1) << 32), "parallel_ranges: too many pieces");
  const int parts = int(std::clamp<int64_t>(threads, 1, pieces));
  if (parts == 1) {
    for (int64_t begin = 0; begin < n; begin += grain) body(begin, std::min(n, begin + grain), 0);
    return;
  }
  std::unique_ptr<RangePart[]> part(new RangePart[size_t(parts)]);
  for (int p = 0; p < parts; ++p) {
    const uint64_t begin = uint64_t(pieces * p / parts), end = uint64_t(pieces * (p + 1) / parts);
    part[size_t(p)].span.store((begin << 32) | end, std::memory_order_relaxed);
  }
  const auto run_piece = [&](int64_t piece, int slot) {
    body(piece * grain, std::min(n, (piece + 1) * grain), slot);
  };
  // Task p: part p front to back, then the other parts from their backs.
  parallel_tasks(parts, parts, [&](int64_t p, int slot) {
    int64_t piece;
    while (claim_piece(part[size_t(p)], true, piece)) run_piece(piece, slot);
    for (int o = 1; o < parts; ++o)
      while (claim_piece(part[size_t((p + o) % parts)], false, piece)) run_piece(piece, slot);
  });
}

}  // namespace sinklab
