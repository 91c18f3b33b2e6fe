// StringPool: strings kept with their capacity for reuse, across threads. The decoded Data of
// GetRecords responses are allocated on the HTTP thread and freed on worker threads once
// processed; without reuse, glibc gave that memory back to the system after each batch (its
// trim threshold stays at 128 KiB unless a larger mmap'd block was freed) and page-faulted it
// in again for the next response (with the pool, a one-shard consumer spends about 5 % less
// CPU per record; docs/performance.md).
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace shardline::detail {

class StringPool {
 public:
  /// The process-wide pool of decoded record data.
  static StringPool& records() {
    static StringPool* pool = new StringPool();  // never destroyed: used until exit
    return *pool;
  }

  /// A string to overwrite, with pooled capacity when there is some (thread-safe). It keeps
  /// its old length and bytes (this process's own earlier data), so that a writer that
  /// overwrites them, as base64_decode() does, needs no zero fill first; empty if none.
  std::string take() {
    std::lock_guard lock(mu_);
    if (free_.empty()) return {};
    std::string s = std::move(free_.back());
    free_.pop_back();
    bytes_ -= s.capacity();
    return s;
  }

  /// Keeps `s`'s capacity for take(), unless it is small or the pool is full (thread-safe).
  void give(std::string&& s) {
    if (s.capacity() < kMinCapacity) return;
    std::string keep = std::move(s);
    std::lock_guard lock(mu_);
    if (bytes_ + keep.capacity() > kMaxBytes || free_.size() >= kMaxCount) return;
    bytes_ += keep.capacity();
    free_.push_back(std::move(keep));
  }

  std::size_t pooled_bytes() {
    std::lock_guard lock(mu_);
    return bytes_;
  }

  static constexpr std::size_t kMinCapacity = 4096;
  static constexpr std::size_t kMaxBytes = 32u << 20;
  static constexpr std::size_t kMaxCount = 2048;

 private:
  std::mutex mu_;
  std::vector<std::string> free_;
  std::size_t bytes_ = 0;
};

}  // namespace shardline::detail
