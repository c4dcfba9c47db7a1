// Little-endian byte serialisation for model files, with bounds-checked reading.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "septa/error.h"

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace septa::crf {

/*
 * Asks the kernel to back the 2 MiB-aligned part of [p, p + bytes) with transparent huge pages
 * (this machine's THP mode is madvise): a tagging run reads a 30 MB model's arrays at random, and
 * with 4 KiB pages most of those reads also missed the TLB; the copy at load takes one fault per
 * 2 MiB instead of one per 4 KiB. Only for memory not yet touched; a no-op elsewhere.
 */
inline void advise_huge_pages(const void* p, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t kHuge = std::uintptr_t{1} << 21;
  const auto begin = (reinterpret_cast<std::uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

class ByteWriter {
 public:
  ByteWriter() = default;
  // A writer that passes its bytes on to `sink`, in order, instead of keeping them (a piece
  // whenever about `chunk` bytes are pending, one for each large vector, and the rest at
  // flush()): it holds at most about `chunk` bytes, whatever it writes.
  explicit ByteWriter(std::function<void(const char*, std::size_t)> sink,
                      std::size_t chunk = std::size_t{1} << 20)
      : sink_(std::move(sink)), chunk_(chunk) {}
  void u8(uint8_t v) { raw(&v, 1); }
  void u32(uint32_t v) { raw(&v, sizeof v); }
  void u64(uint64_t v) { raw(&v, sizeof v); }
  void f64(double v) { raw(&v, sizeof v); }
  void str(const std::string& s) {
    u64(s.size());
    raw(s.data(), s.size());
  }
  template <typename T, typename A>
  void vec(const std::vector<T, A>& v) {
    u64(v.size());
    raw(v.data(), v.size() * sizeof(T));
  }
  void strings(const std::vector<std::string>& v) {
    u64(v.size());
    for (const std::string& s : v) str(s);
  }
  // The bytes written and not passed on (all of them without a sink).
  const std::string& bytes() const { return bytes_; }
  std::string& bytes() { return bytes_; }
  // With a sink: passes the pending bytes on.
  void flush() {
    if (!sink_ || bytes_.empty()) return;
    sink_(bytes_.data(), bytes_.size());
    passed_ += bytes_.size();
    bytes_.clear();
  }
  // Bytes written so far (passed on or pending).
  uint64_t size() const { return passed_ + bytes_.size(); }

 private:
  void raw(const void* p, std::size_t n) {
    if (sink_ && bytes_.size() + n >= chunk_) {
      flush();
      if (n >= chunk_) {  // a large piece goes straight through, uncopied
        sink_(static_cast<const char*>(p), n);
        passed_ += n;
        return;
      }
    }
    bytes_.append(static_cast<const char*>(p), n);
  }
  std::string bytes_;
  std::function<void(const char*, std::size_t)> sink_;
  std::size_t chunk_ = 0;
  uint64_t passed_ = 0;
};

class ByteReader {
 public:
  ByteReader(const char* data, std::size_t size, std::string name)
      : data_(data), size_(size), name_(std::move(name)) {}
  uint8_t u8() { uint8_t v; raw(&v, 1); return v; }
  uint32_t u32() { uint32_t v; raw(&v, sizeof v); return v; }
  uint64_t u64() { uint64_t v; raw(&v, sizeof v); return v; }
  double f64() { double v; raw(&v, sizeof v); return v; }
  std::string str() {
    const uint64_t n = count(1);
    std::string s(data_ + pos_, n);
    pos_ += n;
    return s;
  }
  // The n elements of T that a length field announces: `first` at their bytes, the position
  // moved past them, and an empty vector with room for them (huge pages from kHugeAbove bytes).
  template <typename T>
  std::vector<T> take_room(uint64_t& n, const char*& first) {
    n = count(sizeof(T));
    first = data_ + pos_;
    pos_ += n * sizeof(T);
    std::vector<T> v;
    v.reserve(n);
    if (n * sizeof(T) >= kHugeAbove) advise_huge_pages(v.data(), n * sizeof(T));
    return v;
  }
  // Copied straight from the bytes (no zero fill first: for a 30 MB model the fill touched
  // every page once more than the copy).
  template <typename T>
  std::vector<T> vec() {
    static_assert(std::is_trivially_copyable_v<T>);
    uint64_t n;
    const char* first;
    std::vector<T> v = take_room<T>(n, first);
    v.insert(v.end(), Unaligned<T>{first}, Unaligned<T>{first + n * sizeof(T)});
    return v;
  }
  std::vector<std::string> strings() {
    const uint64_t n = count(8);
    std::vector<std::string> v;
    v.reserve(n);
    for (uint64_t i = 0; i < n; ++i) v.push_back(str());
    return v;
  }
  // The same as views into the bytes being read (valid while they are).
  std::vector<std::string_view> string_views() {
    const uint64_t n = count(8);
    std::vector<std::string_view> v;
    v.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t length = count(1);
      v.emplace_back(data_ + pos_, length);
      pos_ += length;
    }
    return v;
  }
  // A dimension (label, attribute or class count) stored in the file. Every such count names
  // things that the file also stores, so one larger than the file's size is corrupt; bounding
  // it here keeps products such as L * L or A + 1 far from wrapping.
  uint64_t dimension() {
    const uint64_t n = u64();
    if (n > size_) fail("dimension field exceeds the file");
    return n;
  }
  // A vector of doubles that must all be finite (weights): copied and checked a block at a
  // time while the block is in the cache, the check a branch-free exponent test that vectorises.
  std::vector<double> finite_doubles() {
    uint64_t n;
    const char* first;
    std::vector<double> v = take_room<double>(n, first);
    constexpr uint64_t kBlock = 2048;  // doubles (16 KiB)
    constexpr uint64_t kExponent = 0x7ff0000000000000ULL;  // all ones: infinity or NaN
    for (uint64_t at = 0; at < n; at += kBlock) {
      const uint64_t m = std::min(kBlock, n - at);
      const char* p = first + at * sizeof(double);
      v.insert(v.end(), Unaligned<double>{p}, Unaligned<double>{p + m * sizeof(double)});
      bool bad = false;
      for (uint64_t i = 0; i < m; ++i) {
        uint64_t bits;
        std::memcpy(&bits, p + i * sizeof(double), sizeof bits);
        bad |= (bits & kExponent) == kExponent;
      }
      if (bad) fail("non-finite weight");
    }
    return v;
  }
  bool at_end() const { return pos_ == size_; }
  std::size_t remaining() const { return size_ - pos_; }
  // The model-file format version of the bytes being read (set by the model reader).
  uint32_t version() const { return version_; }
  void set_version(uint32_t version) { version_ = version; }
  // Throws ModelError naming the file.
  [[noreturn]] void fail(const std::string& what) const {
    throw ModelError(name_ + ": corrupt model: " + what);
  }

 private:
  static constexpr std::size_t kHugeAbove = std::size_t{2} << 20;  // vectors of 2 MiB or more
  // A random-access iterator over the (possibly unaligned) elements of T stored at p.
  template <typename T>
  struct Unaligned {
    using iterator_category = std::random_access_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = const T*;
    using reference = T;
    const char* p;
    T operator*() const {
      T v;
      std::memcpy(&v, p, sizeof v);
      return v;
    }
    T operator[](difference_type i) const { return *(*this + i); }
    Unaligned& operator++() { p += sizeof(T); return *this; }
    Unaligned operator++(int) { Unaligned old = *this; p += sizeof(T); return old; }
    Unaligned& operator--() { p -= sizeof(T); return *this; }
    Unaligned operator--(int) { Unaligned old = *this; p -= sizeof(T); return old; }
    Unaligned& operator+=(difference_type n) { p += n * static_cast<difference_type>(sizeof(T)); return *this; }
    Unaligned& operator-=(difference_type n) { p -= n * static_cast<difference_type>(sizeof(T)); return *this; }
    Unaligned operator+(difference_type n) const { Unaligned r = *this; return r += n; }
    Unaligned operator-(difference_type n) const { Unaligned r = *this; return r -= n; }
    difference_type operator-(const Unaligned& o) const {
      return (p - o.p) / static_cast<difference_type>(sizeof(T));
    }
    bool operator==(const Unaligned& o) const { return p == o.p; }
    bool operator!=(const Unaligned& o) const { return p != o.p; }
    bool operator<(const Unaligned& o) const { return p < o.p; }
    bool operator>(const Unaligned& o) const { return p > o.p; }
    bool operator<=(const Unaligned& o) const { return p <= o.p; }
    bool operator>=(const Unaligned& o) const { return p >= o.p; }
  };
  uint64_t count(std::size_t element_size) {
    const uint64_t n = u64();
    if (n > (size_ - pos_) / element_size) fail("length field exceeds the file");
    return n;
  }
  void raw(void* p, std::size_t n) {
    if (n > size_ - pos_) fail("unexpected end of data");
    if (n == 0) return;  // p may be null (an empty vector's data())
    std::memcpy(p, data_ + pos_, n);
    pos_ += n;
  }
  const char* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  std::string name_;
  uint32_t version_ = 0;
};

/*
 * Model-file checksum: FNV-1a over 8-byte little-endian words in 4 interleaved lanes (word i
 * goes to lane i mod 4), then the tail bytes into lane 0, then the lanes folded with FNV-1a.
 * Four independent multiply chains run ~10x faster than byte-wise FNV-1a (which costs ~40 ms
 * per 30 MB model, most of the load time).
 */
inline uint64_t checksum64(const char* data, std::size_t size) {
  constexpr uint64_t kPrime = 1099511628211ULL;
  uint64_t lane[4] = {1469598103934665603ULL, 0x84222325CBF29CE4ULL, 0x9E3779B97F4A7C15ULL,
                      0xC2B2AE3D27D4EB4FULL};
  const std::size_t words = size / 8;
  std::size_t i = 0;
  for (; i + 4 <= words; i += 4)
    for (int k = 0; k < 4; ++k) {
      uint64_t word;
      std::memcpy(&word, data + 8 * (i + k), 8);
      lane[k] = (lane[k] ^ word) * kPrime;
    }
  for (; i < words; ++i) {
    uint64_t word;
    std::memcpy(&word, data + 8 * i, 8);
    lane[i % 4] = (lane[i % 4] ^ word) * kPrime;
  }
  for (std::size_t b = 8 * words; b < size; ++b)
    lane[0] = (lane[0] ^ static_cast<unsigned char>(data[b])) * kPrime;
  uint64_t h = 1469598103934665603ULL;
  for (uint64_t x : lane) h = (h ^ x) * kPrime;
  return h;
}

// checksum64 of bytes that arrive in pieces of any size: value() after update(a), update(b)
// is checksum64 of a then b.
class Checksum64 {
 public:
  void update(const char* data, std::size_t size) {
    while (size > 0 && pending_ > 0) {  // complete the word begun by the previous piece
      word_[pending_++] = data[0];
      ++data;
      --size;
      if (pending_ == 8) {
        add(word_);
        pending_ = 0;
      }
    }
    // Whole words: one at a time up to a lane-0 word, then blocks of 4 words on the lanes kept
    // in registers (one word at a time through lane_[words_ % 4], each multiply waited for the
    // store of the previous one: saving a 31 MB model spent 8 ms here), then the rest.
    for (; size >= 8 && words_ % 4 != 0; data += 8, size -= 8) add(data);
    if (size >= 32) {
      uint64_t lane[4] = {lane_[0], lane_[1], lane_[2], lane_[3]};
      for (; size >= 32; data += 32, size -= 32, words_ += 4)
        for (int k = 0; k < 4; ++k) {
          uint64_t word;
          std::memcpy(&word, data + 8 * k, 8);
          lane[k] = (lane[k] ^ word) * kPrime;
        }
      for (int k = 0; k < 4; ++k) lane_[k] = lane[k];
    }
    for (; size >= 8; data += 8, size -= 8) add(data);
    for (; size > 0; ++data, --size) word_[pending_++] = data[0];
  }
  uint64_t value() const {
    uint64_t lane[4] = {lane_[0], lane_[1], lane_[2], lane_[3]};
    for (std::size_t b = 0; b < pending_; ++b)
      lane[0] = (lane[0] ^ static_cast<unsigned char>(word_[b])) * kPrime;
    uint64_t h = 1469598103934665603ULL;
    for (uint64_t x : lane) h = (h ^ x) * kPrime;
    return h;
  }

 private:
  static constexpr uint64_t kPrime = 1099511628211ULL;
  void add(const char* bytes) {
    uint64_t word;
    std::memcpy(&word, bytes, 8);
    uint64_t& lane = lane_[words_++ % 4];
    lane = (lane ^ word) * kPrime;
  }
  uint64_t lane_[4] = {1469598103934665603ULL, 0x84222325CBF29CE4ULL, 0x9E3779B97F4A7C15ULL,
                       0xC2B2AE3D27D4EB4FULL};
  uint64_t words_ = 0;
  char word_[8] = {};
  std::size_t pending_ = 0;
};

}  // namespace septa::crf
