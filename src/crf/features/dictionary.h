// A bijection between strings and dense ids 0..size-1, in insertion order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "crf/io/binary_io.h"

namespace septa::crf {

/*
 * The index is an open-addressing hash table (linear probing, power-of-two size, load <= 1/2)
 * of ids, with each id's 64-bit hash kept beside the names so that probes compare strings only
 * on a full hash match and growing never rehashes a string. Compared with
 * std::unordered_map<std::string, int32_t> this allocates no node per entry (a model with
 * 330k attributes used to cost 330k allocations to load and as many frees at exit) and a
 * lookup touches one or two cache lines. The hash reads 8-byte words (see hash()).
 *
 * A model's attribute list (distinct strings, read once, then only looked up) is held pooled
 * (assign_distinct_pooled): its bytes in one block with offsets, no std::string per name, and
 * the index built without a lookup per string. name() and names() turn a pooled dictionary's
 * strings into std::strings on first use (dump, saving); anything that adds or releases does
 * so first.
 */
class Dictionary {
 public:
  // Id of `name`, or -1 when absent.
  int32_t find(std::string_view name) const { return find(name, hash(name)); }
  int32_t find(std::string_view name, uint64_t h) const {
    if (slots_.empty()) return -1;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const uint32_t slot = slots_[i];
      if (slot == 0) return -1;
      const uint32_t id = slot - 1;
      if (hashes_[id] == h && view(id) == name) return static_cast<int32_t>(id);
    }
  }
  // Id of `name`, adding it when absent.
  int32_t add(std::string_view name) {
    thaw();
    const uint64_t h = hash(name);
    const int32_t id = find(name, h);
    if (id >= 0) return id;
    names_.emplace_back(name);
    return insert_last(h);
  }
  int32_t add(const char* name) { return add(std::string_view(name)); }
  // Id of `name`, adding it (moved) when absent.
  int32_t add(std::string&& name) {
    thaw();
    const uint64_t h = hash(name);
    const int32_t id = find(name, h);
    if (id >= 0) return id;
    names_.push_back(std::move(name));
    return insert_last(h);
  }
  /*
   * Batched lookup and insertion. On a large table each lookup costs two or three dependent
   * cache misses (the slot, the id's hash, its name); one at a time they queue. These run the
   * lookups of n strings as a pipeline: lookup i + 2D has its home slot prefetched, lookup i + D
   * the hash and name of the id found there, then lookup i runs on warm lines, so up to 2D
   * misses overlap. Results and ids are those of find() / add() called in order.
   * name_at(i) gives the i-th string (a string_view); hashes [n] is caller scratch.
   */
  template <typename NameAt>
  void find_all(std::size_t n, NameAt name_at, uint64_t* hashes, int32_t* out) const {
    if (slots_.empty()) {
      std::fill(out, out + n, -1);
      return;
    }
    for (std::size_t i = 0; i < n; ++i) hashes[i] = hash(name_at(i));
    pipeline(n, hashes, [&](std::size_t i) { out[i] = find(name_at(i), hashes[i]); });
  }
  // find_all of strings whose hashes [n] (their hash()) are known: no hashing, the same ids.
  template <typename NameAt>
  void find_all_hashed(std::size_t n, NameAt name_at, const uint64_t* hashes, int32_t* out) const {
    if (slots_.empty()) {
      std::fill(out, out + n, -1);
      return;
    }
    pipeline(n, hashes, [&](std::size_t i) { out[i] = find(name_at(i), hashes[i]); });
  }
  // Appends names[i] (moved) for i in `which`, in order: strings known absent and distinct,
  // with hashes[i] their hash(); ids size(), size() + 1, ... as add() would give them.
  void append_absent(std::vector<std::string>& names, const std::vector<uint64_t>& hashes,
                     const std::vector<uint32_t>& which) {
    thaw();
    reserve(names_.size() + which.size());  // no growth below
    constexpr std::size_t kAhead = 8;
    const std::size_t mask = slots_.size() - 1, m = which.size();
    for (std::size_t k = 0; k < m; ++k) {
      if (k + kAhead < m) __builtin_prefetch(slots_.data() + (hashes[which[k + kAhead]] & mask));
      const uint32_t i = which[k];
      names_.push_back(std::move(names[i]));
      hashes_.push_back(hashes[i]);
      place(static_cast<uint32_t>(names_.size() - 1), hashes[i]);
    }
  }
  // add(name_at(i)) for i in [0, n), in order, each id into out [n] when out is not null.
  template <typename NameAt>
  void add_all(std::size_t n, NameAt name_at, uint64_t* hashes, int32_t* out) {
    thaw();
    // No growth inside (the prefetched slots stay valid); geometric growth across calls.
    const std::size_t needed = names_.size() + n;
    if (needed > names_.capacity() || 2 * needed > slots_.size())
      reserve(std::max(needed, 2 * names_.capacity()));
    for (std::size_t i = 0; i < n; ++i) hashes[i] = hash(name_at(i));
    pipeline(n, hashes, [&](std::size_t i) {
      int32_t id = find(name_at(i), hashes[i]);
      if (id < 0) {
        names_.emplace_back(name_at(i));
        id = insert_last(hashes[i]);
      }
      if (out) out[i] = id;
    });
  }
  /*
   * Replaces the contents by the n strings name_at(i), which must be distinct (a model file's
   * list), with ids in order: the bytes are copied into one block and each string is placed in
   * the index without a lookup, its probe comparing only the strings whose hash equals its own.
   * Returns false, leaving the dictionary empty, when two strings are equal.
   */
  template <typename NameAt>
  bool assign_distinct_pooled(std::size_t n, NameAt name_at) {
    *this = Dictionary();
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < n; ++i) bytes += name_at(i).size();
    // Tagging looks names up at random: huge pages spare most of those lookups a TLB miss.
    pool_.reserve(bytes);
    advise_huge_pages(pool_.data(), bytes);
    pool_.resize(bytes);
    pool_offsets_.reserve(n + 1);
    advise_huge_pages(pool_offsets_.data(), (n + 1) * sizeof(std::size_t));
    hashes_.reserve(n);
    advise_huge_pages(hashes_.data(), n * sizeof(uint64_t));
    pool_offsets_.push_back(0);
    for (std::size_t i = 0, at = 0; i < n; ++i) {
      const std::string_view name = name_at(i);
      if (!name.empty()) std::memcpy(&pool_[at], name.data(), name.size());
      at += name.size();
      pool_offsets_.push_back(at);
      hashes_.push_back(hash(name));
    }
    std::size_t size = 16;
    while (size < 2 * n) size *= 2;
    slots_.reserve(size);
    advise_huge_pages(slots_.data(), size * sizeof(uint32_t));
    slots_.assign(size, 0);
    const std::size_t mask = size - 1;
    constexpr std::size_t kAhead = 16;
    for (std::size_t id = 0; id < n; ++id) {
      if (id + kAhead < n) __builtin_prefetch(slots_.data() + (hashes_[id + kAhead] & mask));
      const uint64_t h = hashes_[id];
      std::size_t i = h & mask;
      for (; slots_[i] != 0; i = (i + 1) & mask) {
        const uint32_t other = slots_[i] - 1;
        if (hashes_[other] == h && view(other) == view(static_cast<uint32_t>(id))) {
          *this = Dictionary();
          return false;
        }
      }
      slots_[i] = static_cast<uint32_t>(id) + 1;
    }
    return true;
  }

  const std::string& name(int32_t id) const {
    materialize();
    return names_[static_cast<std::size_t>(id)];
  }
  // The string of `id` without materializing a pooled dictionary.
  std::string_view view(uint32_t id) const {
    if (pool_offsets_.empty()) return names_[id];
    return std::string_view(pool_.data() + pool_offsets_[id],
                            pool_offsets_[id + 1] - pool_offsets_[id]);
  }
  std::size_t size() const {
    if (released_ != 0) return released_;
    return pool_offsets_.empty() ? names_.size() : pool_offsets_.size() - 1;
  }

  /*
   * Training over MPI ranks needs only the count of the strings (the ids are in the encoded
   * data), and only the rank that writes the model needs the strings, at the end.
   * release() frees the strings and the index and keeps size(); pack(lo, hi) returns the
   * strings of ids [lo, hi) as one buffer (each a 4-byte length, then its bytes: about a third
   * of the dictionary's memory) and releases; unpack(parts) restores the dictionary from the
   * packs of consecutive id ranges, same ids. Between them only size() may be called.
   */
  void release() { release(size()); }
  void release(std::size_t size) {
    std::string().swap(pool_);
    std::vector<std::size_t>().swap(pool_offsets_);
    std::vector<std::string>().swap(names_);
    std::vector<uint64_t>().swap(hashes_);
    std::vector<uint32_t>().swap(slots_);
    released_ = size;
  }
  std::string pack(std::size_t lo, std::size_t hi) {
    std::string out = packed(lo, hi);
    release();
    return out;
  }
  // The same bytes, leaving the dictionary as it is (not after release()).
  std::string packed(std::size_t lo, std::size_t hi) const {
    hi = std::min(hi, released_ != 0 ? std::size_t{0} : size());
    std::size_t bytes = 0;
    for (std::size_t id = lo; id < hi; ++id) bytes += 4 + view(static_cast<uint32_t>(id)).size();
    std::string out;
    out.reserve(bytes);
    for (std::size_t id = lo; id < hi; ++id) {
      const std::string_view name = view(static_cast<uint32_t>(id));
      const auto n = static_cast<uint32_t>(name.size());
      out.append(reinterpret_cast<const char*>(&n), 4);
      out.append(name);
    }
    return out;
  }
  std::string pack() { return pack(0, size()); }
  void unpack(const std::vector<std::string>& parts) {
    restore_index();
    for (const std::string& packed : parts) append_packed(packed);
    place_unpacked();
  }
  void unpack(const std::string& packed) {
    restore_index();
    append_packed(packed);
    place_unpacked();
  }
  const std::vector<std::string>& names() const {
    materialize();
    return names_;
  }
  // [size] hash() of each name, by id.
  const std::vector<uint64_t>& hashes() const { return hashes_; }
  // Frees the index (find() then finds nothing) and keeps the names and their hashes: for a
  // dictionary that is only read by id from then on (the chunks of a parallel merge).
  void drop_index() { std::vector<uint32_t>().swap(slots_); }
  // Moves the strings out and empties the dictionary.
  std::vector<std::string> take_names() {
    thaw();
    std::vector<std::string> names = std::move(names_);
    *this = Dictionary();
    return names;
  }
  // Replaces the contents by `names` [n], distinct, in id order, with hashes [n] their hash().
  void assign_distinct(std::vector<std::string>&& names, std::vector<uint64_t>&& hashes) {
    std::string().swap(pool_);
    std::vector<std::size_t>().swap(pool_offsets_);
    names_ = std::move(names);
    hashes_ = std::move(hashes);
    released_ = 0;
    rehash(names_.size());
  }
  void reserve(std::size_t n) {
    thaw();
    names_.reserve(n);
    hashes_.reserve(n);
    if (n * 2 > slots_.size()) rehash(n);
  }

  // 64-bit hash of a string: 8-byte words folded by multiply-xorshift (the last, partial word
  // zero-padded and mixed with the length).
  static uint64_t hash(std::string_view s) {
    constexpr uint64_t kMul = 0x9E3779B97F4A7C15ULL;
    uint64_t h = 0x243F6A8885A308D3ULL ^ s.size();
    const char* p = s.data();
    std::size_t n = s.size();
    for (; n >= 8; n -= 8, p += 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      h = (h ^ w) * kMul;
      h ^= h >> 29;
    }
    if (n > 0) {
      // The last n < 8 bytes as a zero-padded little-endian word, without a byte loop (whose
      // byte stores, read back as one word, stalled store forwarding): from the 8 bytes that
      // end the string when it has them, else from overlapping loads of its few bytes.
      uint64_t w;
      if (s.size() >= 8) {
        std::memcpy(&w, p + n - 8, 8);
        w >>= 8 * (8 - n);
      } else if (n >= 4) {
        uint32_t lo, hi;
        std::memcpy(&lo, p, 4);
        std::memcpy(&hi, p + n - 4, 4);
        w = lo | (uint64_t{hi} << (8 * (n - 4)));
      } else {
        const auto byte = [&](std::size_t i) { return uint64_t{static_cast<unsigned char>(p[i])}; };
        w = byte(0) | (byte(n / 2) << (8 * (n / 2))) | (byte(n - 1) << (8 * (n - 1)));
      }
      h = (h ^ w) * kMul;
      h ^= h >> 29;
    }
    h = (h ^ (h >> 32)) * kMul;
    return h ^ (h >> 29);
  }

 private:
  // A pooled dictionary's strings as std::strings (names_), once; thread-safe for readers.
  void materialize() const {
    if (pool_offsets_.empty()) return;
    static std::mutex mutex;
    const std::lock_guard<std::mutex> lock(mutex);
    const std::size_t n = pool_offsets_.size() - 1;
    if (names_.size() == n) return;
    names_.reserve(n);
    for (std::size_t id = names_.size(); id < n; ++id)
      names_.emplace_back(view(static_cast<uint32_t>(id)));
  }
  // A pooled dictionary becomes an ordinary one (before anything that changes it).
  void thaw() {
    if (pool_offsets_.empty()) return;
    materialize();
    std::string().swap(pool_);
    std::vector<std::size_t>().swap(pool_offsets_);
  }
  // unpack(): an empty index sized for the released strings.
  void restore_index() {
    const std::size_t n = released_;
    released_ = 0;
    names_.reserve(n);
    hashes_.reserve(n);
    rehash(n);
  }
  void append_packed(const std::string& packed) {
    for (std::size_t at = 0; at < packed.size();) {
      uint32_t length;
      std::memcpy(&length, packed.data() + at, 4);
      names_.emplace_back(packed, at + 4, length);
      at += 4 + length;
      hashes_.push_back(hash(names_.back()));
    }
  }
  // unpack(): the index of the appended strings (distinct: no lookups), each one's home slot
  // prefetched 8 strings ahead (a random line of a table of 2-4 x size slots; placed one at a
  // time the misses queued: 0.05 s of the writing rank's CPU for CoNLL-2000's 0.34M strings).
  void place_unpacked() {
    if (names_.size() * 2 > slots_.size()) {
      rehash(names_.size());
      return;
    }
    constexpr std::size_t kAhead = 8;
    const std::size_t mask = slots_.size() - 1, n = hashes_.size();
    for (std::size_t id = 0; id < n; ++id) {
      if (id + kAhead < n) __builtin_prefetch(slots_.data() + (hashes_[id + kAhead] & mask));
      place(static_cast<uint32_t>(id), hashes_[id]);
    }
  }
  int32_t insert_last(uint64_t h) {
    const auto id = static_cast<uint32_t>(names_.size() - 1);
    hashes_.push_back(h);
    if (names_.size() * 2 > slots_.size()) {
      rehash(names_.size());
    } else {
      place(id, h);
    }
    return static_cast<int32_t>(id);
  }
  // Rebuilds the table for at least n entries (load <= 1/2) from the stored hashes.
  void rehash(std::size_t n) {
    std::size_t size = 16;
    while (size < 2 * n) size *= 2;
    slots_.assign(size, 0);
    for (std::size_t id = 0; id < hashes_.size(); ++id) place(static_cast<uint32_t>(id), hashes_[id]);
  }
  // step(i) for i in [0, n) with the lines of later lookups prefetched (see find_all).
  // (The prefetches are written out in the loop: gcc 12 drops __builtin_prefetch in lambdas.)
  template <typename Step>
  void pipeline(std::size_t n, const uint64_t* hashes, Step step) const {
    constexpr std::size_t kDistance = 8;
    const std::size_t mask = slots_.size() - 1;
    const uint32_t* slots = slots_.data();
    for (std::size_t i = 0; i < n + 2 * kDistance; ++i) {
      if (i < n) __builtin_prefetch(slots + (hashes[i] & mask));
      if (i >= kDistance && i - kDistance < n) {
        const uint32_t slot = slots[hashes[i - kDistance] & mask];
        if (slot != 0) {
          __builtin_prefetch(hashes_.data() + (slot - 1));
          if (pool_offsets_.empty())
            __builtin_prefetch(names_.data() + (slot - 1));
          else
            __builtin_prefetch(pool_offsets_.data() + (slot - 1));
        }
      }
      if (i >= 2 * kDistance) step(i - 2 * kDistance);
    }
  }
  void place(uint32_t id, uint64_t h) {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = h & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = id + 1;
  }

  mutable std::vector<std::string> names_;  // [size] id -> string (pooled: filled on demand)
  std::string pool_;                        // pooled: the strings' bytes, in id order
  std::vector<std::size_t> pool_offsets_;   // pooled: [size+1] where each string starts
  std::vector<uint64_t> hashes_;    // [size] id -> hash(name)
  std::vector<uint32_t> slots_;     // [power of two >= 2 size] id + 1, 0 empty
  std::size_t released_ = 0;        // size() after release() / pack(), else 0
};

}  // namespace septa::crf
