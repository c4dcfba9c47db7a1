#include "crf/features/dictionary.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace septa::crf {
namespace {

// Random strings of every length 0..40 (so that the hash's word loop and zero-padded tail are
// both exercised), with repeats, NUL bytes and prefixes of one another.
std::vector<std::string> random_strings(std::size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) {
    if (!out.empty() && rng() % 4 == 0) {  // a repeat or a prefix of an earlier string
      const std::string& earlier = out[rng() % out.size()];
      out.push_back(rng() % 2 ? earlier : earlier.substr(0, earlier.size() / 2));
      continue;
    }
    std::string s(rng() % 41, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 4 == 0 ? 0 : 'a' + rng() % 3);
    out.push_back(s);
  }
  return out;
}

TEST(Dictionary, AgreesWithAHashMapThroughGrowth) {
  const std::vector<std::string> strings = random_strings(20000, 7);
  Dictionary dictionary;
  std::unordered_map<std::string, int32_t> reference;
  std::vector<std::string> order;
  for (const std::string& s : strings) {
    const auto [it, inserted] = reference.try_emplace(s, static_cast<int32_t>(order.size()));
    if (inserted) order.push_back(s);
    ASSERT_EQ(dictionary.add(s), it->second);
  }
  ASSERT_EQ(dictionary.size(), order.size());
  EXPECT_EQ(dictionary.names(), order);
  for (const auto& [s, id] : reference) {
    EXPECT_EQ(dictionary.find(s), id);
    EXPECT_EQ(dictionary.name(id), s);
  }
  // Absent strings, including a one-byte extension of every present one.
  for (const std::string& s : random_strings(5000, 8))
    EXPECT_EQ(dictionary.find(s), reference.count(s) ? reference.at(s) : -1);
  for (const std::string& s : order) EXPECT_EQ(dictionary.find(s + "x"), reference.count(s + "x") ? reference.at(s + "x") : -1);
}

// The batched, prefetching paths against add() and find() one at a time: the same ids, in the
// same order, from an empty and from a filled dictionary, for batches shorter and longer than
// the prefetch distance.
TEST(Dictionary, BatchedAddAndFindAgreeWithOneAtATime) {
  const std::vector<std::string> first = random_strings(3000, 11);
  const std::vector<std::string> second = random_strings(3000, 12);
  for (std::size_t batch : {std::size_t{1}, std::size_t{5}, std::size_t{40}, std::size_t{3000}}) {
    Dictionary one, batched;
    for (const std::vector<std::string>* strings : {&first, &second}) {
      std::vector<int32_t> expected, got(strings->size());
      std::vector<uint64_t> hashes(strings->size());
      for (const std::string& s : *strings) expected.push_back(one.add(s));
      for (std::size_t at = 0; at < strings->size(); at += batch) {
        const std::size_t n = std::min(batch, strings->size() - at);
        batched.add_all(
            n, [&](std::size_t i) { return std::string_view((*strings)[at + i]); },
            hashes.data(), got.data() + at);
      }
      ASSERT_EQ(got, expected) << "batch " << batch;
      ASSERT_EQ(batched.names(), one.names());
    }
    std::vector<std::string> probes = random_strings(2000, 13);
    for (const std::string& s : first) probes.push_back(s + "y");
    std::vector<int32_t> found(probes.size());
    std::vector<uint64_t> hashes(probes.size());
    batched.find_all(
        probes.size(), [&](std::size_t i) { return std::string_view(probes[i]); },
        hashes.data(), found.data());
    for (std::size_t i = 0; i < probes.size(); ++i) ASSERT_EQ(found[i], one.find(probes[i]));
  }
  Dictionary empty;
  std::vector<int32_t> found(2, 7);
  std::vector<uint64_t> hashes(2);
  empty.find_all(
      2, [](std::size_t) { return std::string_view("a"); }, hashes.data(), found.data());
  EXPECT_EQ(found, std::vector<int32_t>({-1, -1}));
}

TEST(Dictionary, MovedAndReservedAndCopiedDictionariesFindTheSameIds) {
  Dictionary a;
  a.reserve(3);
  EXPECT_EQ(a.find("x"), -1);
  EXPECT_EQ(a.add(std::string("B-NP")), 0);
  EXPECT_EQ(a.add("I-NP"), 1);
  EXPECT_EQ(a.add(std::string_view("B-NP")), 0);
  a.reserve(1000);  // rebuilds the index from the stored hashes
  Dictionary b = a;
  EXPECT_EQ(b.find("I-NP"), 1);
  EXPECT_EQ(b.add("O"), 2);
  EXPECT_EQ(a.find("O"), -1);
  Dictionary c = std::move(b);
  EXPECT_EQ(c.find("O"), 2);
  EXPECT_EQ(c.find(""), -1);
  EXPECT_EQ(c.add(""), 3);
  EXPECT_EQ(c.find(""), 3);
}

// A model's attribute list, pooled: the same ids, finds and names as one built by add(), for
// present and absent strings; equal strings are refused; copies, and adding to it (it becomes an
// ordinary dictionary first), keep every id.
TEST(Dictionary, PooledDictionaryAgreesWithAddedOne) {
  Dictionary added;
  for (const std::string& s : random_strings(20000, 21)) added.add(s);
  const std::vector<std::string> names = added.names();
  Dictionary pooled;
  pooled.add("stale");  // replaced
  ASSERT_TRUE(pooled.assign_distinct_pooled(
      names.size(), [&](std::size_t i) { return std::string_view(names[i]); }));
  ASSERT_EQ(pooled.size(), names.size());
  for (std::size_t id = 0; id < names.size(); ++id) {
    ASSERT_EQ(pooled.find(names[id]), static_cast<int32_t>(id));
    ASSERT_EQ(pooled.view(static_cast<uint32_t>(id)), names[id]);
  }
  std::vector<std::string> probes = random_strings(3000, 22);
  for (const std::string& s : names) probes.push_back(s + "z");
  std::vector<int32_t> found(probes.size());
  std::vector<uint64_t> hashes(probes.size());
  pooled.find_all(
      probes.size(), [&](std::size_t i) { return std::string_view(probes[i]); }, hashes.data(),
      found.data());
  for (std::size_t i = 0; i < probes.size(); ++i) ASSERT_EQ(found[i], added.find(probes[i]));
  EXPECT_EQ(pooled.find("stale"), added.find("stale"));
  const Dictionary copy = pooled;
  EXPECT_EQ(copy.names(), names);
  EXPECT_EQ(pooled.name(7), names[7]);
  EXPECT_EQ(pooled.add(names[3]), 3);
  EXPECT_EQ(pooled.add("new string"), static_cast<int32_t>(names.size()));
  EXPECT_EQ(pooled.find(names.back()), static_cast<int32_t>(names.size() - 1));
  EXPECT_EQ(copy.find("new string"), -1);

  const std::vector<std::string> twice = {"a", "bb", "", "c", "bb"};
  Dictionary refused;
  EXPECT_FALSE(refused.assign_distinct_pooled(
      twice.size(), [&](std::size_t i) { return std::string_view(twice[i]); }));
  EXPECT_EQ(refused.size(), 0u);
  EXPECT_TRUE(refused.assign_distinct_pooled(
      4, [&](std::size_t i) { return std::string_view(twice[i]); }));
  EXPECT_EQ(refused.find(""), 2);
}

TEST(Dictionary, HashDependsOnEveryByteAndTheLength) {
  EXPECT_NE(Dictionary::hash(std::string_view("a\0", 2)), Dictionary::hash("a"));
  EXPECT_NE(Dictionary::hash("abcdefgh"), Dictionary::hash("abcdefgi"));
  EXPECT_NE(Dictionary::hash("abcdefghX"), Dictionary::hash("abcdefghY"));
  EXPECT_EQ(Dictionary::hash(std::string("U00:word")), Dictionary::hash("U00:word"));
}

// hash() against its definition (8-byte words, the last partial word zero-padded byte by
// byte), for every length 0..40 and views starting anywhere in a larger buffer: the tail's
// overlapping loads read only the view's own bytes.
TEST(Dictionary, HashEqualsItsWordwiseDefinition) {
  const auto reference = [](std::string_view s) {
    constexpr uint64_t kMul = 0x9E3779B97F4A7C15ULL;
    uint64_t h = 0x243F6A8885A308D3ULL ^ s.size();
    std::size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      h = (h ^ w) * kMul;
      h ^= h >> 29;
    }
    if (i < s.size()) {
      uint64_t w = 0;
      for (std::size_t k = 0; i + k < s.size(); ++k)
        w |= uint64_t{static_cast<unsigned char>(s[i + k])} << (8 * k);
      h = (h ^ w) * kMul;
      h ^= h >> 29;
    }
    h = (h ^ (h >> 32)) * kMul;
    return h ^ (h >> 29);
  };
  std::mt19937 rng(5);
  std::string buffer(64, '\0');
  for (char& c : buffer) c = static_cast<char>(rng() & 0xff);
  for (std::size_t length = 0; length <= 40; ++length)
    for (std::size_t start = 0; start + length <= buffer.size(); start += 3) {
      const std::string_view view(buffer.data() + start, length);
      ASSERT_EQ(Dictionary::hash(view), reference(view)) << length << " at " << start;
      ASSERT_EQ(Dictionary::hash(std::string(view)), reference(view));
    }
}

TEST(Dictionary, PackAndUnpackKeepTheIdsAndReleaseKeepsTheSize) {
  const std::vector<std::string> strings = random_strings(3000, 11);
  Dictionary d;
  for (const std::string& s : strings) d.add(s);
  const std::size_t n = d.size();
  ASSERT_GT(n, 1000u);
  Dictionary copy = d;
  const std::string packed = d.pack();
  EXPECT_EQ(d.size(), n);
  EXPECT_TRUE(d.names().empty());
  d.unpack(packed);
  ASSERT_EQ(d.size(), n);
  EXPECT_EQ(d.names(), copy.names());
  for (const std::string& s : strings) EXPECT_EQ(d.find(s), copy.find(s));
  EXPECT_EQ(d.find("not in it"), -1);
  EXPECT_EQ(d.add("new string"), static_cast<int32_t>(n));  // grows on from the restored size
  copy.release();
  EXPECT_EQ(copy.size(), n);
  EXPECT_TRUE(copy.names().empty());
  Dictionary empty;
  empty.unpack(empty.pack());
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(empty.add("a"), 0);
}

}  // namespace
}  // namespace septa::crf
