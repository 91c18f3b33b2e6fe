// TextBuffer: a growable byte buffer like std::string, except that growing does not write
// zeros. std::string::resize() fills every new byte before the caller overwrites it; for the
// multi-megabyte processRecords messages that fill was as costly as writing them. Move-only;
// not NUL-terminated.
#pragma once

#include <algorithm>
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
      std::free(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      capacity_ = std::exchange(o.capacity_, 0);
    }
    return *this;
  }
  ~TextBuffer() { std::free(data_); }

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
    void* p = std::realloc(data_, n);
    if (p == nullptr) throw std::bad_alloc();
    data_ = static_cast<char*>(p);
    capacity_ = n;
  }

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
  char* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace shardline::detail
