// TextBuffer: a growable byte buffer like std::string, except that growing does not write
// zeros. std::string::resize() fills every new byte before the caller overwrites it; for the
// multi-megabyte processRecords messages that fill was as costly as writing them. Move-only;
// not NUL-terminated.
//
// Buffers of kHugeBytes and more are mapped in whole 2 MiB pages and offered to the kernel for
// transparent huge pages (madvise): a processRecords message of a few MB is then a couple of
// TLB entries instead of a thousand, and handing it to the child's pipe (vmsplice) pins a
// couple of huge pages instead of walking a page table per 4 KiB. Where THP is off this is an
// ordinary mapping.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

namespace shardline::detail {

class TextBuffer {
 public:
  TextBuffer() = default;
  TextBuffer(const TextBuffer&) = delete;
  TextBuffer& operator=(const TextBuffer&) = delete;
  TextBuffer(TextBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        capacity_(std::exchange(o.capacity_, 0)) {}
  TextBuffer& operator=(TextBuffer&& o) noexcept {
    if (this != &o) {
      release(data_, capacity_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      capacity_ = std::exchange(o.capacity_, 0);
    }
    return *this;
  }
  ~TextBuffer() { release(data_, capacity_); }

  char* data() noexcept { return data_; }
  const char* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  std::string_view view() const noexcept { return {data_, size_}; }
  operator std::string_view() const noexcept { return view(); }  // NOLINT: like std::string

  void clear() noexcept { size_ = 0; }
  void swap(TextBuffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(capacity_, o.capacity_);
  }

  /// Room for at least `n` bytes in all; the contents are kept. Throws std::bad_alloc.
  void reserve(std::size_t n) {
    if (n <= capacity_) return;
    if (n < kHugeBytes) {
      void* p = std::realloc(data_, n);
      if (p == nullptr) throw std::bad_alloc();
      data_ = static_cast<char*>(p);
      capacity_ = n;
      return;
    }
    const std::size_t cap = (n + kHugePage - 1) / kHugePage * kHugePage;
    char* p = map_huge(cap);
    if (size_ != 0) std::memcpy(p, data_, size_);
    release(data_, capacity_);
    data_ = p;
    capacity_ = cap;
  }

  /// From this size on, buffers are mapped for huge pages.
  static constexpr std::size_t kHugeBytes = std::size_t{1} << 20;

  /// The first byte past the contents: write up to capacity() - size() bytes there, then
  /// commit them with set_size().
  char* end() noexcept { return data_ + size_; }
  /// The contents are now the first `n` bytes (n <= capacity()), however they were written.
  void set_size(std::size_t n) noexcept { size_ = n; }

  void append(std::string_view s) {
    if (s.empty()) return;
    if (size_ + s.size() > capacity_) reserve(std::max(size_ + s.size(), capacity_ * 2));
    std::memcpy(data_ + size_, s.data(), s.size());
    size_ += s.size();
  }

 private:
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;

  // `cap` bytes (a multiple of kHugePage) at a kHugePage boundary.
  static char* map_huge(std::size_t cap) {
    void* m = ::mmap(nullptr, cap + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    auto* base = static_cast<char*>(m);
    const auto addr = reinterpret_cast<std::uintptr_t>(base);
    char* p = base + ((kHugePage - addr % kHugePage) % kHugePage);
    // Unmap the slack before and after the aligned range.
    if (p != base) ::munmap(base, static_cast<std::size_t>(p - base));
    const std::size_t after = static_cast<std::size_t>(base + cap + kHugePage - (p + cap));
    if (after != 0) ::munmap(p + cap, after);
    (void)::madvise(p, cap, MADV_HUGEPAGE);
    return p;
  }
  static void release(char* p, std::size_t cap) noexcept {
    if (p == nullptr) return;
    if (cap >= kHugeBytes) {
      ::munmap(p, cap);
    } else {
      std::free(p);
    }
  }

  char* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace shardline::detail
