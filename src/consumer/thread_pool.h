// A fixed-size thread pool: post() queues a job, one of N threads runs it. No per-shard threads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/signals.h"

namespace shardline::detail {

class ThreadPool {
 public:
  explicit ThreadPool(std::size_t threads) {
    if (threads == 0) threads = 1;
    for (std::size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { loop(); });
  }
  ~ThreadPool() { stop(); }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void post(std::function<void()> job) {
    {
      std::lock_guard lk(mu_);
      if (stopping_) return;
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

  /// Runs `job(0..n-1)` on the pool and waits for all of them.
  void parallel_for(std::size_t n, const std::function<void(std::size_t)>& job) {
    std::mutex m;
    std::condition_variable done_cv;
    std::size_t done = 0;
    for (std::size_t i = 0; i < n; ++i) {
      post([&, i] {
        job(i);
        std::lock_guard lk(m);
        if (++done == n) done_cv.notify_one();
      });
    }
    std::unique_lock lk(m);
    done_cv.wait(lk, [&] { return done == n; });
  }

  /// Finish the queued jobs, then join.
  void stop() {
    {
      std::lock_guard lk(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  std::size_t size() const noexcept { return workers_.size(); }

 private:
  void loop() {
    block_sigpipe_in_this_thread();  // see core/signals.h
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace shardline::detail
