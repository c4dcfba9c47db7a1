#include "merge/task_vectors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "merge/methods.h"
#include "merge/simd.h"

namespace septa::merge {

namespace {

constexpr std::size_t kBlock = kMixBlock;
constexpr std::size_t kHigh = 1u << 15;  // buckets of |d|'s bits 30..16
constexpr std::size_t kLow = 1u << 16;   // buckets of bits 15..0

// dst[len] <- entries [begin, begin + len) of `op` as float32. The next block's bytes are
// prefetched: the hardware prefetchers stop at 4 KiB page boundaries, which a block of F16
// entries spans, and the streams come from memory (the page cache), not from cache.
inline void load(const Operand& op, std::size_t begin, std::size_t len, float* dst, std::size_t n) {
  const std::size_t size = safetensors::dtype_size(op.dtype);
  const auto* bytes = static_cast<const unsigned char*>(op.data) + begin * size;
  const std::size_t ahead = std::min(len, n - std::min(n, begin + len)) * size;
  for (std::size_t offset = 0; offset < ahead; offset += 64) __builtin_prefetch(bytes + len * size + offset);
  safetensors::to_f32(op.dtype, bytes, len, dst);
}

// d[len] = x - b and bits[len] = |d|'s float bits (ordered like |d|, NaN above infinity).
SEPTA_MERGE_CLONES void delta_block(const float* x, const float* b, float* d, std::uint32_t* bits,
                                    std::size_t len) {
  for (std::size_t i = 0; i < len; ++i) {
    const float v = x[i] - b[i];
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    d[i] = v;
    bits[i] = u & 0x7FFFFFFFu;
  }
}

// The trim of one task vector: entries with bits > threshold stay, and of those with bits ==
// threshold the first `ties_kept` in index order (trim_to_top_k's rule).
struct Trim {
  bool active = false;
  std::uint32_t threshold = 0;
  std::size_t ties_kept = 0;
  std::size_t ties_seen = 0;  // ties met so far in the streaming pass
  bool all_ties = false;      // every entry equal to the threshold stays: bits >= threshold
};

// d = x - b with the trim of a threshold whose ties all stay: d where |d|'s bits >= t, else 0.
// d holds x on entry.
SEPTA_MERGE_CLONES void delta_keep_at_least(float* d, const float* b, std::uint32_t t, std::size_t len) {
  for (std::size_t i = 0; i < len; ++i) {
    const float v = d[i] - b[i];
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    d[i] = (u & 0x7FFFFFFFu) >= t ? v : 0.0f;
  }
}

// delta_block that also returns how many of the bits equal `value`.
SEPTA_MERGE_CLONES std::size_t delta_block_count(const float* x, const float* b, float* d, std::uint32_t* bits,
                                                 std::uint32_t value, std::size_t len) {
  std::uint32_t count = 0;  // len <= kBlock
  for (std::size_t i = 0; i < len; ++i) {
    const float v = x[i] - b[i];
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    u &= 0x7FFFFFFFu;
    d[i] = v;
    bits[i] = u;
    count += u == value;
  }
  return count;
}

SEPTA_MERGE_CLONES void keep_at_least(float* d, const std::uint32_t* bits, std::uint32_t t, std::size_t len) {
  for (std::size_t i = 0; i < len; ++i) d[i] = bits[i] >= t ? d[i] : 0.0f;
}

SEPTA_MERGE_CLONES void keep_above(float* d, const std::uint32_t* bits, std::uint32_t t, std::size_t len) {
  for (std::size_t i = 0; i < len; ++i) d[i] = bits[i] > t ? d[i] : 0.0f;
}

// `ties`: how many of bits[len] equal the threshold.
void apply_trim(Trim& trim, float* d, const std::uint32_t* bits, std::size_t ties, std::size_t len) {
  if (trim.ties_seen + ties <= trim.ties_kept) {
    keep_at_least(d, bits, trim.threshold, len);
  } else if (trim.ties_seen >= trim.ties_kept) {
    keep_above(d, bits, trim.threshold, len);
  } else {  // the last kept tie is in this block
    for (std::size_t i = 0; i < len; ++i) {
      if (bits[i] > trim.threshold) continue;
      if (bits[i] == trim.threshold && trim.ties_seen++ < trim.ties_kept) continue;
      d[i] = 0.0f;
    }
    return;  // (ties_seen counted entry by entry)
  }
  trim.ties_seen += ties;
}

// One deferred model's trim in the streaming pass, fused with the subtraction: d = x - b;
// entries with |d|'s bits above bucket B stay, those below go, and those in B go for now and
// are appended to `out` (index order) for the exact decision later. Groups of 32 entries are
// handled by a vectorised loop; the rare group holding an entry of B is scanned again.
template <std::size_t kCount>
inline void deferred_group(float* d, const float* b, std::uint32_t bucket, std::size_t index,
                           std::size_t count, std::vector<Pending>& out) {
  const std::size_t n = kCount ? kCount : count;
  const std::uint32_t top = bucket << 16 | 0xFFFFu;
  float raw[32];
  unsigned hit = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const float v = d[j] - b[j];
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    u &= 0x7FFFFFFFu;
    raw[j] = v;
    hit |= (u >> 16) == bucket;
    d[j] = u > top ? v : 0.0f;
  }
  if (!hit) return;
  for (std::size_t j = 0; j < n; ++j) {
    std::uint32_t u;
    std::memcpy(&u, &raw[j], 4);
    u &= 0x7FFFFFFFu;
    if ((u >> 16) == bucket) out.push_back({index + j, raw[j], u});
  }
}

// d holds x on entry (entries [begin, begin + len) of the tensor).
SEPTA_MERGE_CLONES void delta_deferred(float* d, const float* b, std::uint32_t bucket, std::size_t begin,
                                       std::size_t len, std::vector<Pending>& out) {
  std::size_t i = 0;
  for (; i + 32 <= len; i += 32) deferred_group<32>(d + i, b + i, bucket, begin + i, 32, out);
  if (i < len) deferred_group<0>(d + i, b + i, bucket, begin + i, len - i, out);
}

SEPTA_MERGE_CLONES void subtract_block(float* d, const float* b, std::size_t len) {
  for (std::size_t i = 0; i < len; ++i) d[i] -= b[i];
}

// The boundary bucket of one model's trim: bucket B (of |d|'s bits >> 16) holds the k-th
// largest magnitude; need = k - (entries above B), 1..size; size = entries in B.
struct Boundary {
  std::uint32_t bucket = 0;
  std::size_t need = 0;
  std::size_t size = 0;
};

// Walks h[0..last - first] (counts of buckets first..last) down from `last`, `above` entries
// being above `last`. Requires above < k <= above + sum(h).
Boundary find_boundary(const std::uint32_t* h, std::uint32_t first, std::uint32_t last, std::size_t above,
                       std::size_t k) {
  std::uint32_t bk = last;
  while (above + h[bk - first] < k) above += h[bk-- - first];
  return {bk, k - above, h[bk - first]};
}

// A range [lo, hi] of |d|'s bits, whole buckets (lo = first bucket << 16, hi = last bucket << 16
// | 0xFFFF), expected to hold the k-th largest magnitude; the bracket pass counts the entries
// above hi and keeps the bits of those inside.
struct Bracket {
  bool active = false;
  std::uint32_t lo = 0, hi = 0;
  std::uint64_t above = 0;
  std::size_t inside = 0;
};

// The bracket from a sample of S = kSampleRuns x kSampleRun entries: the order statistics at
// descending ranks q S -+ (5 sqrt(S q (1 - q)) + 16), q = k / n. A sample rank's standard
// deviation is sqrt(S q (1 - q)) for independent entries; 5 of them plus 16 leave a miss rare
// even with some correlation inside runs, and a miss costs only the full histogram pass.
// `b`, `d` [kSampleRun] floats and `bits` [kSampleRun] are scratch. False when the bracket would
// hold more than a quarter of the entries (the histogram is then as cheap).
bool sample_bracket(const Operand& base, const Operand& x, std::size_t n, std::size_t k, float* b, float* d,
                    std::uint32_t* bits, std::vector<std::uint32_t>& sample, Bracket& out) {
  const std::size_t S = kSampleRuns * kSampleRun;
  sample.resize(S);
  for (std::size_t j = 0; j < kSampleRuns; ++j) {
    const std::size_t start = j * (n - kSampleRun) / (kSampleRuns - 1);
    const std::size_t size_b = safetensors::dtype_size(base.dtype), size_x = safetensors::dtype_size(x.dtype);
    safetensors::to_f32(base.dtype, static_cast<const unsigned char*>(base.data) + start * size_b, kSampleRun, b);
    safetensors::to_f32(x.dtype, static_cast<const unsigned char*>(x.data) + start * size_x, kSampleRun, d);
    delta_block(d, b, d, bits, kSampleRun);
    std::copy_n(bits, kSampleRun, sample.data() + j * kSampleRun);
  }
  const double q = static_cast<double>(k) / static_cast<double>(n);
  const double spread = 5.0 * std::sqrt(static_cast<double>(S) * q * (1.0 - q)) + 16.0;
  const double top = std::floor(q * static_cast<double>(S) - spread), bottom = std::ceil(q * static_cast<double>(S) + spread);
  if (bottom - top > static_cast<double>(S) / 4) return false;
  std::uint32_t hi = 0x7FFFFFFFu, lo = 0;
  auto rank = sample.begin();
  if (top >= 0) {
    rank = sample.begin() + static_cast<std::ptrdiff_t>(top);
    std::nth_element(sample.begin(), rank, sample.end(), std::greater<std::uint32_t>());
    hi = *rank++;
  }
  if (bottom < static_cast<double>(S)) {
    const auto at = sample.begin() + static_cast<std::ptrdiff_t>(bottom);
    std::nth_element(rank, at, sample.end(), std::greater<std::uint32_t>());
    lo = *at;
  }
  out = {true, lo & 0xFFFF0000u, hi | 0xFFFFu, 0, 0};
  return true;
}

// d = x - b entry by entry: entries with |d|'s bits > hi are counted into `above`, the bits of
// those in [lo, hi] appended to out (index order; room for len + 8 more). Returns how many.
std::size_t bracket_block_portable(const float* x, const float* b, std::size_t len, std::uint32_t lo,
                                   std::uint32_t hi, std::uint64_t& above, std::uint32_t* out) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < len; ++i) {
    const float v = x[i] - b[i];
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    u &= 0x7FFFFFFFu;
    above += u > hi;
    out[count] = u;
    count += u >= lo && u <= hi;
  }
  return count;
}

#if defined(__x86_64__) && defined(__GNUC__)
// The same with AVX2: eight entries at a time, the inside ones packed to the front by a
// permutation chosen by their mask (a 256-entry table), with no branch.
struct PackTable {
  alignas(32) std::int32_t order[256][8];
  PackTable() : order() {
    for (unsigned mask = 0; mask < 256; ++mask) {
      unsigned c = 0;
      for (unsigned lane = 0; lane < 8; ++lane)
        if (mask >> lane & 1) order[mask][c++] = static_cast<std::int32_t>(lane);
    }
  }
};
const PackTable kPack;

__attribute__((target("avx2,popcnt"))) std::size_t bracket_block_avx2(const float* x, const float* b, std::size_t len,
                                                                     std::uint32_t lo, std::uint32_t hi,
                                                                     std::uint64_t& above, std::uint32_t* out) {
  // |d|'s bits are below 2^31, so signed comparisons order them; lo - 1 may be -1.
  const __m256i magnitude = _mm256_set1_epi32(0x7FFFFFFF);
  const __m256i below = _mm256_set1_epi32(static_cast<std::int32_t>(lo) - 1);
  const __m256i top = _mm256_set1_epi32(static_cast<std::int32_t>(hi));
  __m256i greater_count = _mm256_setzero_si256();  // [8] entries above hi, per lane (<= kBlock / 8)
  std::size_t count = 0, i = 0;
  for (; i + 8 <= len; i += 8) {
    const __m256 v = _mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(b + i));
    const __m256i u = _mm256_and_si256(_mm256_castps_si256(v), magnitude);
    const __m256i greater = _mm256_cmpgt_epi32(u, top);
    greater_count = _mm256_sub_epi32(greater_count, greater);
    const __m256i in = _mm256_andnot_si256(greater, _mm256_cmpgt_epi32(u, below));
    const unsigned mask = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(in)));
    const __m256i order = _mm256_load_si256(reinterpret_cast<const __m256i*>(kPack.order[mask]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + count), _mm256_permutevar8x32_epi32(u, order));
    count += static_cast<std::size_t>(__builtin_popcount(mask));
  }
  alignas(32) std::uint32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), greater_count);
  for (const std::uint32_t lane : lanes) above += lane;
  return count + bracket_block_portable(x + i, b + i, len - i, lo, hi, above, out + count);
}

bool detect_avx2() {
  __builtin_cpu_init();  // (runs from a static initializer)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
}
#else
bool detect_avx2() { return false; }
#endif

bool use_avx2 = detect_avx2();

std::size_t bracket_block(const float* x, const float* b, std::size_t len, std::uint32_t lo, std::uint32_t hi,
                          std::uint64_t& above, std::uint32_t* out) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (use_avx2) return bracket_block_avx2(x, b, len, lo, hi, above, out);
#endif
  return bracket_block_portable(x, b, len, lo, hi, above, out);
}

}  // namespace

bool set_bracket_simd(bool enabled) {
  const bool previous = use_avx2;
  use_avx2 = enabled && detect_avx2();
  return previous;
}

// TIES's trim threshold (the k-th largest |d|) by exact radix selection on the float bits of
// |d| (ordered like |d|):
//   pass 1: histogram H of bits >> 16; walking down from the top bucket, the boundary bucket B
//           is the one where the running count first reaches k; need = k - (count above B).
//           On large tensors (sample_from) a sample first gives a bracket [lo, hi] of whole
//           buckets that should hold the k-th largest (sample_bracket); the pass then only
//           counts the entries above hi and packs the bits of those inside (vectorised, about
//           9% of the entries); H over those alone gives B, and selection among B's entries the
//           exact threshold T, so pass 2 below sets nothing aside for that model (it trims like
//           the exact path). Where the k-th largest is not inside after all (or the bracket
//           holds over n / 4 entries), the full histogram.
//   pass 2 (streaming, computing the output): entries above B stay, below B go; entries in B
//           are set aside (index, d, bits) and dropped for now. Afterwards the need-th largest
//           bits among them is the exact threshold T; those above T stay, and of those equal to
//           T the first in index order (trim_to_top_k's rule). The output entries at their
//           positions are computed again, one by one, by the same mix_block.
// When B holds more than n / 8 entries (constant tensors, many equal magnitudes) a second
// histogram pass over bits & 0xFFFF inside B finds T before the streaming pass instead.
// Counts and per-entry arithmetic do not depend on blocking, so neither do the bytes.
void merge_task_vectors(const Operand& base, const std::vector<TaskVectorInput>& inputs,
                        const TaskVectorOptions& options, std::size_t n,
                        safetensors::Dtype out_dtype, void* out, TaskVectorScratch& scratch) {
  const std::size_t m = inputs.size();
  scratch.blocks.resize((m + 5) * kBlock);
  float* b = scratch.blocks.data();             // [kBlock] base
  float* o = b + kBlock;                        // [kBlock] output
  auto* bits = reinterpret_cast<std::uint32_t*>(o + kBlock);  // [kBlock]
  float* d0 = o + 2 * kBlock;                   // [m][kBlock] task vectors
  auto* bytes = reinterpret_cast<unsigned char*>(d0 + m * kBlock);  // [kBlock] of out_dtype (<= 8 B)
  const std::size_t out_size = safetensors::dtype_size(out_dtype);

  std::vector<Trim> trims(m);
  std::vector<std::size_t> trimmed;  // models whose trim drops something
  if (options.trim)
    for (std::size_t t = 0; t < m; ++t)
      if (inputs[t].keep < n) trimmed.push_back(t);
  std::vector<bool> deferred(m, false);
  std::vector<std::uint32_t> bucket(m);
  std::vector<std::size_t> need(m);
  scratch.pending.resize(std::max(scratch.pending.size(), m));
  for (std::size_t t = 0; t < m; ++t) scratch.pending[t].clear();

  if (!trimmed.empty()) {
    std::vector<Boundary> boundary(m);
    std::vector<Bracket> brackets(m);
    std::vector<std::size_t> bracketed, unresolved;  // models t
    const bool sampling = n >= options.sample_from && n >= kSampleRuns * kSampleRun;
    for (const std::size_t t : trimmed) {
      if (inputs[t].keep == 0) {  // nothing stays: no |d|'s bits reach the threshold
        trims[t] = {true, 0xFFFFFFFFu, 0, 0, true};
        continue;
      }
      if (sampling && sample_bracket(base, inputs[t].values, n, inputs[t].keep, b, d0, bits, scratch.sample, brackets[t]))
        bracketed.push_back(t);
      else
        unresolved.push_back(t);
    }
    if (!bracketed.empty()) {
      // The bracket pass: entries above each bracket counted, those inside it kept (their bits).
      const std::size_t limit = n / 4;
      scratch.inside.resize(std::max(scratch.inside.size(), m));
      for (const std::size_t t : bracketed)
        if (scratch.inside[t].size() < limit + kBlock + 8) scratch.inside[t].resize(limit + kBlock + 8);
      for (std::size_t begin = 0; begin < n; begin += kBlock) {
        const std::size_t len = std::min(kBlock, n - begin);
        load(base, begin, len, b, n);
        for (const std::size_t t : bracketed) {
          Bracket& br = brackets[t];
          if (!br.active) continue;
          load(inputs[t].values, begin, len, d0, n);
          br.inside += bracket_block(d0, b, len, br.lo, br.hi, br.above, scratch.inside[t].data() + br.inside);
          br.active = br.inside <= limit;  // else too many ties or a poor sample: full histogram
        }
      }
      scratch.brackets += bracketed.size();
      for (const std::size_t t : bracketed) {
        const Bracket& br = brackets[t];
        const std::size_t k = inputs[t].keep;
        if (!br.active || br.above >= k || br.above + br.inside < k) {  // the k-th is not inside
          ++scratch.bracket_misses;
          unresolved.push_back(t);
          continue;
        }
        const std::uint32_t first = br.lo >> 16, last = br.hi >> 16;
        scratch.high.assign(last - first + 1, 0);
        const std::uint32_t* inside = scratch.inside[t].data();
        for (std::size_t e = 0; e < br.inside; ++e) ++scratch.high[(inside[e] >> 16) - first];
        const Boundary bd = find_boundary(scratch.high.data(), first, last, br.above, k);
        // The exact threshold T: the bd.need-th largest bits in bucket bd.bucket, all of whose
        // entries are among those kept; the streaming pass then trims like the exact path.
        std::vector<std::uint32_t>& in_bucket = scratch.sample;
        in_bucket.clear();
        for (std::size_t e = 0; e < br.inside; ++e)
          if ((inside[e] >> 16) == bd.bucket) in_bucket.push_back(inside[e]);
        std::nth_element(in_bucket.begin(), in_bucket.begin() + static_cast<std::ptrdiff_t>(bd.need - 1),
                         in_bucket.end(), std::greater<std::uint32_t>());
        const std::uint32_t threshold = in_bucket[bd.need - 1];
        std::size_t greater = 0, ties = 0;
        for (const std::uint32_t v : in_bucket) {
          greater += v > threshold;
          ties += v == threshold;
        }
        trims[t] = {true, threshold, bd.need - greater, 0, bd.need - greater == ties};
      }
    }
    if (!unresolved.empty()) {
      const std::size_t r = unresolved.size();
      // Four interleaved copies per model: runs of equal magnitudes (common in task vectors of
      // F16 checkpoints) do not serialise on one counter.
      scratch.high.assign(r * 4 * kHigh, 0);
      for (std::size_t begin = 0; begin < n; begin += kBlock) {
        const std::size_t len = std::min(kBlock, n - begin);
        load(base, begin, len, b, n);
        for (std::size_t j = 0; j < r; ++j) {
          load(inputs[unresolved[j]].values, begin, len, d0, n);
          delta_block(d0, b, d0, bits, len);
          std::uint32_t* h = scratch.high.data() + j * 4 * kHigh;
          std::size_t i = 0;
          for (; i + 4 <= len; i += 4) {
            ++h[bits[i] >> 16];
            ++h[kHigh + (bits[i + 1] >> 16)];
            ++h[2 * kHigh + (bits[i + 2] >> 16)];
            ++h[3 * kHigh + (bits[i + 3] >> 16)];
          }
          for (; i < len; ++i) ++h[bits[i] >> 16];
        }
      }
      for (std::size_t j = 0; j < r; ++j) {
        std::uint32_t* h = scratch.high.data() + j * 4 * kHigh;
        for (std::size_t c = 0; c < kHigh; ++c) h[c] += h[kHigh + c] + h[2 * kHigh + c] + h[3 * kHigh + c];
        boundary[unresolved[j]] = find_boundary(h, 0, kHigh - 1, 0, inputs[unresolved[j]].keep);
      }
    }
    std::vector<std::size_t> exact;  // models that take the second histogram pass
    for (const std::size_t t : trimmed) {
      if (trims[t].active) continue;  // k = 0, or found from a bracket
      bucket[t] = boundary[t].bucket;
      need[t] = boundary[t].need;  // 1..boundary[t].size
      if (boundary[t].size > n / 8) {
        exact.push_back(t);
      } else {
        deferred[t] = true;  // see delta_deferred
      }
    }
    if (!exact.empty()) {
      scratch.low.assign(exact.size() * kLow, 0);
      for (std::size_t begin = 0; begin < n; begin += kBlock) {
        const std::size_t len = std::min(kBlock, n - begin);
        load(base, begin, len, b, n);
        for (std::size_t e = 0; e < exact.size(); ++e) {
          const std::size_t t = exact[e];
          load(inputs[t].values, begin, len, d0, n);
          delta_block(d0, b, d0, bits, len);
          std::uint32_t* l = scratch.low.data() + e * kLow;
          const std::uint32_t bk = bucket[t];
          for (std::size_t i = 0; i < len; ++i)
            if ((bits[i] >> 16) == bk) ++l[bits[i] & 0xFFFF];
        }
      }
      for (std::size_t e = 0; e < exact.size(); ++e) {
        const std::size_t t = exact[e];
        const std::uint32_t* l = scratch.low.data() + e * kLow;
        std::size_t greater = 0;
        std::uint32_t lo = kLow - 1;
        while (greater + l[lo] < need[t]) greater += l[lo--];
        trims[t] = {true, bucket[t] << 16 | lo, need[t] - greater, 0, need[t] - greater == l[lo]};
      }
    }
  }

  std::vector<float> weights(m);
  std::vector<const float*> deltas(m);
  for (std::size_t t = 0; t < m; ++t) {
    weights[t] = inputs[t].weight;
    deltas[t] = d0 + t * kBlock;
  }
  const float total = mix_total_weight(weights.data(), m);
  auto* dst = static_cast<unsigned char*>(out);
  // Positions holding a set-aside entry: index, base value and the m task-vector entries.
  std::vector<std::uint64_t>& patch_index = scratch.patch_index;
  std::vector<float>& patch_values = scratch.patch_values;  // [patches][m + 1]: base, d_0..d_m-1
  patch_index.clear();
  patch_values.clear();
  std::vector<std::size_t> first_new(m);
  for (std::size_t begin = 0; begin < n; begin += kBlock) {
    const std::size_t len = std::min(kBlock, n - begin);
    load(base, begin, len, b, n);
    bool any_new = false;
    for (std::size_t t = 0; t < m; ++t) {
      float* d = d0 + t * kBlock;
      load(inputs[t].values, begin, len, d, n);
      if (deferred[t]) {
        first_new[t] = scratch.pending[t].size();
        delta_deferred(d, b, bucket[t], begin, len, scratch.pending[t]);
        any_new |= scratch.pending[t].size() > first_new[t];
      } else if (trims[t].active && trims[t].all_ties) {
        delta_keep_at_least(d, b, trims[t].threshold, len);
      } else if (trims[t].active) {
        const std::size_t ties = delta_block_count(d, b, d, bits, trims[t].threshold, len);
        apply_trim(trims[t], d, bits, ties, len);
      } else {
        subtract_block(d, b, len);
      }
      if (options.dare)
        dare_drop_and_rescale_range(d, begin, len, inputs[t].density, options.seed, inputs[t].stream);
    }
    mix_block(b, deltas.data(), weights.data(), m, options.consensus, options.normalize, options.lambda,
              total, o, len);
    safetensors::from_f32(out_dtype, o, len, dst + begin * out_size);
    if (any_new) {
      const std::size_t from = patch_index.size();
      for (std::size_t t = 0; t < m; ++t)
        if (deferred[t])
          for (std::size_t e = first_new[t]; e < scratch.pending[t].size(); ++e)
            patch_index.push_back(scratch.pending[t][e].index);
      std::sort(patch_index.begin() + from, patch_index.end());
      patch_index.erase(std::unique(patch_index.begin() + from, patch_index.end()), patch_index.end());
      for (std::size_t p = from; p < patch_index.size(); ++p) {
        const std::size_t i = patch_index[p] - begin;
        patch_values.push_back(b[i]);
        for (std::size_t t = 0; t < m; ++t) patch_values.push_back(d0[t * kBlock + i]);
      }
    }
  }
  if (patch_index.empty()) return;

  // The exact threshold of each deferred model, and which of its set-aside entries stay.
  std::vector<std::vector<char>> stays(m);
  for (std::size_t t = 0; t < m; ++t) {
    if (!deferred[t]) continue;
    const std::vector<Pending>& pending = scratch.pending[t];
    std::vector<std::uint32_t> values(pending.size());
    for (std::size_t e = 0; e < pending.size(); ++e) values[e] = pending[e].bits;
    std::nth_element(values.begin(), values.begin() + (need[t] - 1), values.end(), std::greater<std::uint32_t>());
    const std::uint32_t threshold = values[need[t] - 1];
    std::size_t greater = 0;
    for (const Pending& entry : pending) greater += entry.bits > threshold;
    std::size_t ties_left = need[t] - greater;
    stays[t].resize(pending.size());
    for (std::size_t e = 0; e < pending.size(); ++e) {
      const std::uint32_t v = pending[e].bits;
      stays[t][e] = v > threshold || (v == threshold && ties_left > 0 && ties_left-- > 0);
    }
  }
  // The output at those positions, again, kBlock at a time: the same per-entry steps.
  std::vector<std::size_t> cursor(m, 0);
  const std::size_t patches = patch_index.size();
  for (std::size_t first = 0; first < patches; first += kBlock) {
    const std::size_t len = std::min(kBlock, patches - first);
    for (std::size_t p = 0; p < len; ++p) {
      const std::uint64_t i = patch_index[first + p];
      const float* values = patch_values.data() + (first + p) * (m + 1);
      b[p] = values[0];
      for (std::size_t t = 0; t < m; ++t) {
        float v = values[1 + t];
        if (deferred[t]) {
          const std::vector<Pending>& pending = scratch.pending[t];
          if (cursor[t] < pending.size() && pending[cursor[t]].index == i) {
            v = stays[t][cursor[t]] ? pending[cursor[t]].raw : 0.0f;
            if (options.dare) dare_drop_and_rescale_range(&v, i, 1, inputs[t].density, options.seed, inputs[t].stream);
            ++cursor[t];
          }
        }
        d0[t * kBlock + p] = v;
      }
    }
    mix_block(b, deltas.data(), weights.data(), m, options.consensus, options.normalize, options.lambda,
              total, o, len);
    safetensors::from_f32(out_dtype, o, len, bytes);
    for (std::size_t p = 0; p < len; ++p)
      std::memcpy(dst + patch_index[first + p] * out_size, bytes + p * out_size, out_size);
  }
}

}  // namespace septa::merge
