#include "crf/parallel/collective.h"

#include <algorithm>
#include <cstring>

#include "crf/io/binary_io.h"
#include "septa/error.h"

namespace septa::crf {

namespace {

/*
 * With slices: rank 0 alone merges. The other ranks send it their names (an alltoall in which
 * only the buffers to rank 0 are non-empty); rank 0 keeps its own dictionary (its names are the
 * merged one's first ids) and adds the other ranks' names in rank order, then sends each rank r
 * the size, the merged ids of r's names and r's packed slice. Before (28 Nov), every rank built
 * the whole merged dictionary from the allgathered names (rank r > 0 inserting all of rank 0's
 * names and then looking its own up) only to keep its ids, the count and its slice: CoNLL-2000
 * at 2 ranks, rank 1's merge 0.046 s of CPU against rank 0's 0.034, which waited for it.
 */
std::vector<int32_t> merge_at_rank0(Dictionary& dictionary, Communicator& comm, std::string& slice) {
  const std::size_t R = static_cast<std::size_t>(comm.size());
  const std::size_t me = static_cast<std::size_t>(comm.rank());
  std::vector<std::string> to(R);
  if (me != 0) {
    ByteWriter out;
    out.strings(dictionary.names());
    dictionary = Dictionary();
    to[0] = std::move(out.bytes());
  }
  std::vector<std::string> parts = comm.alltoall(to);
  std::vector<int32_t> local_to_global;
  if (me == 0) {
    local_to_global.resize(dictionary.size());
    for (std::size_t i = 0; i < local_to_global.size(); ++i) local_to_global[i] = static_cast<int32_t>(i);
    std::size_t total = dictionary.size(), largest = dictionary.size();  // strings (repeats included)
    for (std::size_t r = 1; r < R; ++r) {
      ByteReader in(parts[r].data(), parts[r].size(), "rank " + std::to_string(r) + " dictionary");
      const std::size_t n = in.u64();
      total += n;
      largest = std::max(largest, n);
    }
    dictionary.reserve(std::min(total, 2 * largest));
    std::vector<std::vector<int32_t>> ids(R);  // [R][names of rank r] their merged ids
    std::vector<uint64_t> hashes;              // [names of the part] add_all's scratch
    for (std::size_t r = 1; r < R; ++r) {
      ByteReader in(parts[r].data(), parts[r].size(), "rank " + std::to_string(r) + " dictionary");
      const std::vector<std::string_view> names = in.string_views();
      // Batched (pipelined lookups): the same ids as adding the names one at a time, in order.
      hashes.resize(names.size());
      ids[r].resize(names.size());
      dictionary.add_all(names.size(), [&](std::size_t i) { return names[i]; }, hashes.data(),
                         ids[r].data());
      std::string().swap(parts[r]);
    }
    for (std::size_t r = 1; r < R; ++r) {
      const auto [lo, hi] = name_slice(dictionary.size(), static_cast<int>(r), static_cast<int>(R));
      ByteWriter out;
      out.u64(dictionary.size());
      out.vec(ids[r]);
      std::vector<int32_t>().swap(ids[r]);
      out.bytes().append(dictionary.packed(lo, hi));
      to[r] = std::move(out.bytes());
    }
  } else {
    to[0].clear();
  }
  parts = comm.alltoall(to);
  to.clear();
  if (me != 0) {
    const std::string& reply = parts[0];
    ByteReader in(reply.data(), reply.size(), "rank 0 merged dictionary");
    const std::size_t size = static_cast<std::size_t>(in.u64());
    local_to_global = in.vec<int32_t>();
    slice.assign(reply, reply.size() - in.remaining(), std::string::npos);
    dictionary.release(size);
  }
  return local_to_global;
}

}  // namespace

std::vector<int32_t> merge_dictionary(Dictionary& dictionary, Communicator& comm,
                                      std::string* slice) {
  if (slice) return merge_at_rank0(dictionary, comm, *slice);
  ByteWriter out;
  out.strings(dictionary.names());
  // Rank 0's names are the merged dictionary's first ids, in its order: rank 0 keeps its
  // dictionary and adds the other ranks' names to it (it had rebuilt its own part from the
  // received copy, 1/R of the merge on every rank). The other ranks' strings are in `out` now.
  const bool keep_own = comm.rank() == 0;
  if (!keep_own) dictionary = Dictionary();
  std::vector<std::string> parts = comm.allgather(std::move(out.bytes()));
  std::size_t total = 0, largest = 0;  // strings over all ranks (repeats included), of one
  for (std::size_t r = 0; r < parts.size(); ++r) {
    ByteReader in(parts[r].data(), parts[r].size(), "rank " + std::to_string(r) + " dictionary");
    const std::size_t n = in.u64();
    total += n;
    largest = std::max(largest, n);
  }
  Dictionary merged;
  std::vector<int32_t> local_to_global;
  if (keep_own) {
    std::string().swap(parts[0]);
    merged = std::move(dictionary);
    dictionary = Dictionary();
    local_to_global.resize(merged.size());
    for (std::size_t i = 0; i < local_to_global.size(); ++i) local_to_global[i] = static_cast<int32_t>(i);
  }
  merged.reserve(std::min(total, 2 * largest));
  std::vector<uint64_t> hashes;  // [names of the part] add_all's scratch
  std::vector<int32_t> ids;      // [names of the part] their merged ids (other ranks' parts)
  for (int r = keep_own ? 1 : 0; r < comm.size(); ++r) {
    ByteReader in(parts[r].data(), parts[r].size(), "rank " + std::to_string(r) + " dictionary");
    const std::vector<std::string_view> names = in.string_views();
    // Batched (pipelined lookups): the same ids as adding the names one at a time, in order.
    std::vector<int32_t>& out = r == comm.rank() ? local_to_global : ids;
    hashes.resize(names.size());
    out.resize(names.size());
    merged.add_all(names.size(), [&](std::size_t i) { return names[i]; }, hashes.data(), out.data());
    std::string().swap(parts[r]);
  }
  dictionary = std::move(merged);
  return local_to_global;
}

namespace {

// The next array of `bytes` at `at` (a u64 count n, then n values of value_bytes each): where
// its values are, n in `n`; `at` moves past it.
const char* array_view(const std::string& bytes, std::size_t& at, std::size_t value_bytes,
                       std::size_t& n) {
  uint64_t count;
  SEPTA_CHECK(at + sizeof count <= bytes.size());
  std::memcpy(&count, bytes.data() + at, sizeof count);
  at += sizeof count;
  SEPTA_CHECK(count <= (bytes.size() - at) / value_bytes);
  const char* values = bytes.data() + at;
  at += count * value_bytes;
  n = static_cast<std::size_t>(count);
  return values;
}

}  // namespace

/*
 * Each rank sends its (attribute, class, count) triples, in attribute then class order; every
 * rank sums the counts of each attribute's classes over ranks in a dense [K] scratch and keeps
 * the classes of the single-builder rule. Counts are integers, so the order of the sums is
 * immaterial.
 */
SparseFeatures build_features_across(SparseFeaturesBuilder& builder, std::size_t A, std::size_t K,
                                     int min_freq, bool all_classes, Communicator& comm) {
  std::vector<uint32_t> counts;
  SparseFeatures local = builder.build(1, false, &counts);
  return merge_features_across(std::move(local), std::move(counts), A, K, min_freq, all_classes,
                               comm);
}

SparseFeatures merge_features_across(SparseFeatures local, std::vector<uint32_t> counts,
                                     std::size_t A, std::size_t K, int min_freq,
                                     bool all_classes, Communicator& comm) {
  ByteWriter out;
  out.vec(local.offsets);
  out.vec(local.classes);
  out.vec(counts);
  local = SparseFeatures();
  std::vector<uint32_t>().swap(counts);
  const std::vector<std::string> parts = comm.allgather(std::move(out.bytes()));
  // Each part read in place: its three arrays are views into the received bytes.
  struct Part {
    const uint32_t* offsets;
    const int32_t* classes;
    const uint32_t* counts;
  };
  std::vector<Part> ranks(parts.size());
  for (std::size_t r = 0; r < parts.size(); ++r) {
    const std::string& bytes = parts[r];
    std::size_t at = 0;
    const auto view = [&](std::size_t value_bytes, std::size_t& n) {
      return array_view(bytes, at, value_bytes, n);
    };
    std::size_t n_offsets, n_classes, n_counts;
    // The values sit at offsets 8 + 8 k + 4 j from the string's start (allocated with at least
    // 8-byte alignment), so 4-byte reads are aligned.
    ranks[r].offsets = reinterpret_cast<const uint32_t*>(view(sizeof(uint32_t), n_offsets));
    ranks[r].classes = reinterpret_cast<const int32_t*>(view(sizeof(int32_t), n_classes));
    ranks[r].counts = reinterpret_cast<const uint32_t*>(view(sizeof(uint32_t), n_counts));
    SEPTA_CHECK(at == bytes.size() && n_offsets == A + 1 && n_classes == n_counts &&
                ranks[r].offsets[A] == n_classes);
    for (std::size_t a = 0; a < A; ++a) SEPTA_CHECK(ranks[r].offsets[a] <= ranks[r].offsets[a + 1]);
  }
  SparseFeatures s;
  s.A = A;
  s.K = K;
  s.offsets.assign(A + 1, 0);
  std::vector<uint64_t> class_count(K, 0);  // [K] summed over ranks
  std::vector<int32_t> seen;                // classes of the attribute, any rank
  for (std::size_t a = 0; a < A; ++a) {
    seen.clear();
    uint64_t total = 0;
    for (const Part& part : ranks)
      for (uint32_t f = part.offsets[a]; f < part.offsets[a + 1]; ++f) {
        SEPTA_CHECK(part.classes[f] >= 0 && static_cast<std::size_t>(part.classes[f]) < K);
        if (class_count[part.classes[f]] == 0) seen.push_back(part.classes[f]);
        class_count[part.classes[f]] += part.counts[f];
        total += part.counts[f];
      }
    if (all_classes) {
      if (total > 0 && total >= static_cast<uint64_t>(min_freq))
        for (std::size_t k = 0; k < K; ++k) s.classes.push_back(static_cast<int32_t>(k));
    } else {
      std::sort(seen.begin(), seen.end());
      for (int32_t k : seen)
        if (class_count[k] >= static_cast<uint64_t>(min_freq)) s.classes.push_back(k);
    }
    for (int32_t k : seen) class_count[k] = 0;
    s.offsets[a + 1] = static_cast<uint32_t>(s.classes.size());
  }
  s.classes.shrink_to_fit();
  return s;
}

/*
 * Each rank ORs each attribute's classes over the ranks into a K-bit set and lists its bits in
 * class order: the classes any rank saw, in increasing order, as merge_features_across gives
 * them at min_freq <= 1 (its counts are then all at least 1), without the counts on the wire,
 * the count array and the per-attribute sort. CoNLL-2000 at 2 ranks: the pairwise factor's
 * 690,000 attribute slots.
 * The attributes are divided (28 Nov): rank q unites the attributes [cut_q, cut_q+1) only,
 * cut at 256 fixed chunks so that every rank gets about 1/R of the classes (the chunks' class
 * counts are allreduced: the frequent attributes come first and hold most); each rank sends
 * rank q its features in q's attributes (an alltoall), and the ranks allgather the united
 * parts and concatenate them in rank order. Before, every rank received every rank's whole
 * features and united all of them: on CoNLL-2000 at 2 ranks that took 0.034-0.040 s of CPU per
 * rank for the pairwise features (0.009-0.011 s for the unary ones), more than building the
 * rank's own class sets (0.022 s and 0.005 s).
 */
SparseFeatures union_features_across(SparseFeatures local, std::size_t A, std::size_t K,
                                     bool all_classes, Communicator& comm) {
  if (K > 256) throw InternalError("union_features_across: " + std::to_string(K) + " classes");
  SEPTA_CHECK(local.offsets.size() == A + 1 && local.offsets[A] == local.classes.size());
  const std::size_t R = static_cast<std::size_t>(comm.size());
  const std::size_t me = static_cast<std::size_t>(comm.rank());
  constexpr std::size_t kChunks = 256;
  std::vector<uint64_t> chunk(kChunks, 0);  // [kChunks] classes of the chunk's attributes, all ranks
  for (std::size_t c = 0; c < kChunks; ++c)
    chunk[c] = local.offsets[A * (c + 1) / kChunks] - local.offsets[A * c / kChunks];
  comm.allreduce(chunk, Communicator::Op::kSum);
  std::vector<std::size_t> cut(R + 1, A);  // [R+1] rank q unites attributes [cut[q], cut[q+1])
  cut[0] = 0;
  {
    uint64_t total = 0;
    for (std::size_t c = 0; c < kChunks; ++c) total += chunk[c];
    uint64_t prefix = 0;
    std::size_t c = 0;
    for (std::size_t q = 1; q < R; ++q) {
      // the first chunk boundary at which the classes before reach q/R of them
      while (c < kChunks && prefix * R < total * q) prefix += chunk[c++];
      cut[q] = A * c / kChunks;
    }
  }
  // To rank q: this rank's offsets over q's attributes (rebased to 0) and their classes.
  std::vector<std::string> to(R);
  for (std::size_t q = 0; q < R; ++q) {
    if (q == me) continue;
    const uint32_t base = local.offsets[cut[q]];
    std::vector<uint32_t> offsets(local.offsets.begin() + static_cast<std::ptrdiff_t>(cut[q]),
                                  local.offsets.begin() + static_cast<std::ptrdiff_t>(cut[q + 1]) + 1);
    for (uint32_t& o : offsets) o -= base;
    ByteWriter out;
    out.vec(offsets);
    out.u64(offsets.back());
    out.bytes().append(reinterpret_cast<const char*>(local.classes.data() + base),
                       sizeof(int32_t) * offsets.back());
    to[q] = std::move(out.bytes());
  }
  const std::vector<std::string> parts = comm.alltoall(to);
  to.clear();
  const std::size_t a0 = cut[me], a1 = cut[me + 1], n = a1 - a0;
  struct Part {
    const uint32_t* offsets;  // [n+1] from 0
    const int32_t* classes;
  };
  std::vector<Part> ranks(R);
  std::vector<uint32_t> own_offsets(local.offsets.begin() + static_cast<std::ptrdiff_t>(a0),
                                    local.offsets.begin() + static_cast<std::ptrdiff_t>(a1) + 1);
  for (uint32_t& o : own_offsets) o -= local.offsets[a0];
  ranks[me] = {own_offsets.data(), local.classes.data() + local.offsets[a0]};
  for (std::size_t r = 0; r < R; ++r) {
    if (r == me) continue;
    std::size_t at = 0, n_offsets, n_classes;
    // (at offsets 8 and 16 + 4 (n + 1) of the string: 4-byte reads are aligned)
    ranks[r].offsets = reinterpret_cast<const uint32_t*>(array_view(parts[r], at, sizeof(uint32_t), n_offsets));
    ranks[r].classes = reinterpret_cast<const int32_t*>(array_view(parts[r], at, sizeof(int32_t), n_classes));
    SEPTA_CHECK(at == parts[r].size() && n_offsets == n + 1 && ranks[r].offsets[0] == 0 &&
                ranks[r].offsets[n] == n_classes);
    for (std::size_t a = 0; a < n; ++a) SEPTA_CHECK(ranks[r].offsets[a] <= ranks[r].offsets[a + 1]);
    for (std::size_t f = 0; f < n_classes; ++f)
      SEPTA_CHECK(ranks[r].classes[f] >= 0 && static_cast<std::size_t>(ranks[r].classes[f]) < K);
  }
  // This rank's attributes united: their class counts [n] and classes.
  std::size_t most = 0;  // classes over the parts: at least the union's (unless all_classes)
  for (const Part& part : ranks) most += part.offsets[n];
  std::vector<uint32_t> counts(n);
  std::vector<int32_t> classes;
  if (!all_classes) classes.reserve(most);
  const std::size_t W = (K + 63) / 64;
  for (std::size_t a = 0; a < n; ++a) {
    uint64_t set[4] = {0, 0, 0, 0};
    for (const Part& part : ranks)
      for (uint32_t f = part.offsets[a]; f < part.offsets[a + 1]; ++f)
        set[part.classes[f] >> 6] |= uint64_t{1} << (part.classes[f] & 63);
    const std::size_t before = classes.size();
    if (all_classes) {
      if ((set[0] | set[1] | set[2] | set[3]) != 0)
        for (std::size_t k = 0; k < K; ++k) classes.push_back(static_cast<int32_t>(k));
    } else {
      for (std::size_t j = 0; j < W; ++j)
        for (uint64_t bits = set[j]; bits != 0; bits &= bits - 1)
          classes.push_back(static_cast<int32_t>(64 * j) + __builtin_ctzll(bits));
    }
    counts[a] = static_cast<uint32_t>(classes.size() - before);
  }
  local = SparseFeatures();
  std::vector<uint32_t>().swap(own_offsets);
  ByteWriter out;
  out.vec(counts);
  out.vec(classes);
  std::vector<uint32_t>().swap(counts);
  std::vector<int32_t>().swap(classes);
  const std::vector<std::string> united = comm.allgather(std::move(out.bytes()));
  SparseFeatures s;
  s.A = A;
  s.K = K;
  s.offsets.assign(A + 1, 0);
  std::size_t total = 0;
  std::vector<std::pair<const int32_t*, std::size_t>> lists(R);  // [R] each rank's classes
  for (std::size_t r = 0; r < R; ++r) {
    std::size_t at = 0, n_counts, n_classes;
    const auto* c = reinterpret_cast<const uint32_t*>(array_view(united[r], at, sizeof(uint32_t), n_counts));
    lists[r].first = reinterpret_cast<const int32_t*>(array_view(united[r], at, sizeof(int32_t), n_classes));
    lists[r].second = n_classes;
    SEPTA_CHECK(at == united[r].size() && n_counts == cut[r + 1] - cut[r]);
    std::size_t sum = 0;
    for (std::size_t a = 0; a < n_counts; ++a) {
      sum += c[a];
      s.offsets[cut[r] + a + 1] = static_cast<uint32_t>(total + sum);
    }
    SEPTA_CHECK(sum == n_classes);
    total += n_classes;
  }
  s.classes.reserve(total);
  for (const auto& [first, count] : lists) s.classes.insert(s.classes.end(), first, first + count);
  return s;
}

namespace {

// The next vector (a u64 count, then the values) of `bytes` at `at`, appended to `out`.
template <typename T, typename A>
void append_vector(const std::string& bytes, std::size_t& at, std::vector<T, A>& out) {
  uint64_t n;
  SEPTA_CHECK(at + sizeof n <= bytes.size());
  std::memcpy(&n, bytes.data() + at, sizeof n);
  at += sizeof n;
  SEPTA_CHECK(n <= (bytes.size() - at) / sizeof(T));
  const std::size_t old = out.size();
  out.resize(old + n);
  if (n > 0) std::memcpy(out.data() + old, bytes.data() + at, n * sizeof(T));
  at += n * sizeof(T);
}

// The same for offsets [count] whose first (0) is dropped and the rest shifted by `base`.
void append_offsets(const std::string& bytes, std::size_t& at, std::size_t base,
                    std::vector<std::size_t>& out) {
  const std::size_t old = out.size();
  append_vector(bytes, at, out);
  SEPTA_CHECK(out.size() > old);
  out.erase(out.begin() + static_cast<std::ptrdiff_t>(old));
  for (std::size_t i = old; i < out.size(); ++i) out[i] += base;
}

}  // namespace

/*
 * The ranks' parts go out one at a time (rank r broadcasts its part, every rank appends it and
 * frees it), into a dataset allocated once from the sizes exchanged first: a rank holds the
 * whole corpus and one part at a time, not every part at once beside copies of them.
 */
Dataset gather_dataset(Dataset local, Communicator& comm,
                       std::pair<std::size_t, std::size_t>* own_items) {
  const std::size_t N = static_cast<std::size_t>(comm.size());
  const std::size_t me = static_cast<std::size_t>(comm.rank());
  std::vector<uint64_t> sizes(4 * N, 0);  // [N][sequences, items, entries, edge entries]
  sizes[4 * me] = local.size();
  sizes[4 * me + 1] = local.items();
  sizes[4 * me + 2] = local.attribute_ids.size();
  sizes[4 * me + 3] = local.edge_ids.size();
  comm.allreduce(sizes, Communicator::Op::kSum);
  std::size_t sequences = 0, items = 0, entries = 0, edges = 0;
  for (std::size_t r = 0; r < N; ++r) {
    sequences += sizes[4 * r];
    items += sizes[4 * r + 1];
    entries += sizes[4 * r + 2];
    edges += sizes[4 * r + 3];
  }
  Dataset all;
  all.sequence_offsets.reserve(sequences + 1);
  all.item_offsets.reserve(items + 1);
  all.attribute_ids.reserve(entries);
  all.attribute_values.reserve(entries);
  all.labels.reserve(items);
  all.weights.reserve(sequences);
  all.edge_offsets.reserve(items + 1);
  all.edge_ids.reserve(edges);
  for (std::size_t r = 0; r < N; ++r) {
    std::string bytes;
    if (r == me) {
      ByteWriter out;
      out.vec(local.sequence_offsets);
      out.vec(local.item_offsets);
      out.vec(local.attribute_ids);
      out.vec(local.attribute_values);
      out.vec(local.labels);
      out.vec(local.weights);
      out.vec(local.edge_offsets);
      out.vec(local.edge_ids);
      local = Dataset();
      bytes = std::move(out.bytes());
    }
    comm.broadcast(bytes, static_cast<int>(r));
    const std::size_t item_base = all.labels.size(), entry_base = all.attribute_ids.size();
    const std::size_t edge_base = all.edge_ids.size();
    std::size_t at = 0;
    append_offsets(bytes, at, item_base, all.sequence_offsets);
    append_offsets(bytes, at, entry_base, all.item_offsets);
    append_vector(bytes, at, all.attribute_ids);
    append_vector(bytes, at, all.attribute_values);
    append_vector(bytes, at, all.labels);
    append_vector(bytes, at, all.weights);
    append_offsets(bytes, at, edge_base, all.edge_offsets);
    append_vector(bytes, at, all.edge_ids);
    SEPTA_CHECK(at == bytes.size());
    if (own_items && r == me) *own_items = {item_base, all.labels.size()};
  }
  return all;
}

void allreduce_or(std::vector<char>& mask, Communicator& comm) {
  std::vector<uint64_t> values(mask.begin(), mask.end());
  comm.allreduce(values, Communicator::Op::kOr);
  for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = values[i] != 0 ? 1 : 0;
}

}  // namespace septa::crf
