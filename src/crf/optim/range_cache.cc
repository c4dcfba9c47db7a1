#include "crf/optim/range_cache.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "crf/lattice/fast_exp.h"
#include "crf/optim/touched_bits.h"
#include "crf/parallel/ordered_parallel.h"

namespace septa::crf {

RangeCache::RangeCache(const Dataset& data, const std::vector<LocalInstance>& instances,
                       const SoftmaxModelShape& shape, int threads,
                       const std::function<void(std::size_t)>& built, bool masks) {
  if (shape.candidates || !data.unit_values) return;
  const std::size_t N = instances.size();
  constexpr std::size_t B = 64;
  const uint32_t* offsets = shape.features->offsets.data();
  const std::size_t A_span = shape.features->offsets.size() - 1;
  const std::vector<uint32_t> class_masks =
      masks && have_avx512() ? attribute_masks(*shape.features, shape.K, A_span)
                             : std::vector<uint32_t>();
  masked_ = !class_masks.empty();
  const std::vector<uint64_t> wide_masks =
      masks && !masked_ && shape.K > 32 && have_avx512()
          ? wide_attribute_masks(*shape.features, shape.K, A_span)
          : std::vector<uint64_t>();
  wide_ = !wide_masks.empty();
  // The non-empty ranges of instance i, in softmax_ranged_scores' order, to `out` (its
  // attribute and range).
  const auto each_range = [&](std::size_t i, auto&& out) {
    const LocalInstance& instance = instances[i];
    for (int32_t k = 0; k < instance.span; ++k) {
      const std::size_t item = instance.item + static_cast<std::size_t>(k);
      const int32_t shift = static_cast<int32_t>(static_cast<std::size_t>(k) * shape.A);
      for (std::size_t e = data.item_offsets[item]; e < data.item_offsets[item + 1]; ++e) {
        const int32_t a = data.attribute_ids[e] + shift;
        if (offsets[a] != offsets[a + 1]) out(a, CachedRange{offsets[a], offsets[a + 1]});
      }
    }
  };
  // Range r of attribute a as a wide masked range.
  const auto wide_range = [&](int32_t a, const CachedRange& r) {
    const uint64_t mask = wide_masks[static_cast<std::size_t>(a)];
    return WideMaskedRange{r.first, static_cast<uint32_t>(mask), static_cast<uint32_t>(mask >> 32)};
  };
  // Range r of attribute a written at `at`, in the cache's kind.
  const auto put = [&](std::size_t at, int32_t a, const CachedRange& r) {
    if (masked_)
      masked_ranges_[at] = MaskedRange{r.first, class_masks[static_cast<std::size_t>(a)]};
    else if (wide_)
      wide_ranges_[at] = wide_range(a, r);
    else
      ranges_[at] = r;
  };
  offsets_.assign(N + 1, 0);
  parallel_for(B, threads, [&](std::size_t b) {
    for (std::size_t i = N * b / B; i < N * (b + 1) / B; ++i) {
      std::size_t n = 0;
      each_range(i, [&](int32_t, const CachedRange&) { ++n; });
      offsets_[i + 1] = n;
    }
  });
  for (std::size_t i = 0; i < N; ++i) offsets_[i + 1] += offsets_[i];
  if (built) {  // in order, appended: reserve() leaves the pages untouched until written
    constexpr std::size_t kEvery = std::size_t{1} << 12;
    if (masked_)
      masked_ranges_.reserve(offsets_[N]);
    else if (wide_)
      wide_ranges_.reserve(offsets_[N]);
    else
      ranges_.reserve(offsets_[N]);
    for (std::size_t i = 0; i < N; ++i) {
      each_range(i, [&](int32_t a, const CachedRange& r) {
        if (masked_)
          masked_ranges_.push_back(MaskedRange{r.first, class_masks[static_cast<std::size_t>(a)]});
        else if (wide_)
          wide_ranges_.push_back(wide_range(a, r));
        else
          ranges_.push_back(r);
      });
      if ((i + 1) % kEvery == 0) built(i + 1);
    }
    built(N);
    return;
  }
  // Sized without zeroing (UnzeroedHugePageAllocator): the pass below writes every range, and
  // its pages fault in on the threads that write them (CoNLL-2003 NER: 38 MB had been zeroed,
  // huge page by huge page, on the calling thread alone).
  if (masked_)
    masked_ranges_.resize(offsets_[N]);
  else if (wide_)
    wide_ranges_.resize(offsets_[N]);
  else
    ranges_.resize(offsets_[N]);
  parallel_for(B, threads, [&](std::size_t b) {
    for (std::size_t i = N * b / B; i < N * (b + 1) / B; ++i) {
      std::size_t at = offsets_[i];
      each_range(i, [&](int32_t a, const CachedRange& r) { put(at++, a, r); });
    }
  });
}

void cached_ranged_scores(const SoftmaxModelShape& shape, const LocalInstance& instance,
                          const CachedRange* first, const CachedRange* last, const double* w,
                          double scale, double* scores) {
  const std::size_t K = shape.K;
  if (shape.R > 0) {
    const double* dense = w + shape.features->size() + static_cast<std::size_t>(instance.context) * K;
    std::copy(dense, dense + K, scores);
  } else {
    std::fill(scores, scores + K, 0.0);
  }
  const int32_t* classes = shape.features->classes.data();
  for (const CachedRange* r = first; r != last; ++r)
    for (uint32_t f = r->first; f < r->last; ++f) scores[classes[f]] += w[f];
  if (scale != 1.0)
    for (std::size_t c = 0; c < K; ++c) scores[c] *= scale;
}

void add_cached_ranged_gradient(const SoftmaxModelShape& shape, const LocalInstance& instance,
                                const CachedRange* first, const CachedRange* last,
                                const double* class_gradient, double* out) {
  const int32_t* classes = shape.features->classes.data();
  for (const CachedRange* r = first; r != last; ++r)
    for (uint32_t f = r->first; f < r->last; ++f) out[f] += class_gradient[classes[f]];
  if (shape.R > 0) {
    double* dense = out + shape.features->size() + static_cast<std::size_t>(instance.context) * shape.K;
    for (std::size_t c = 0; c < shape.K; ++c) dense[c] += class_gradient[c];
  }
}

namespace {

#ifdef SEPTA_MASKED_ROWS
/*
 * cached_ranged_scores over masked ranges with the K <= 8 C classes in C vector registers:
 * a range adds its weights to the lanes of its classes (its weights expanded into those lanes
 * in order; the other lanes are left as they are), so every class gets the same additions in
 * the same order as the scalar loop, then the same multiplication by scale.
 */
template <int C, typename Range>
SEPTA_AVX512 void masked_scores(std::size_t K, const double* init, const Range* first,
                                const Range* last, const double* w, double scale,
                                double* scores) {
  __m512d acc[C];
  for (int j = 0; j < C; ++j)
    acc[j] = init ? _mm512_maskz_loadu_pd(class_lanes(K, j), init + 8 * j) : _mm512_setzero_pd();
  for (const Range* r = first; r != last; ++r) add_row_to_lanes<C>(acc, row_mask(*r), w + r->first);
  if (scale != 1.0) {
    const __m512d s = _mm512_set1_pd(scale);
    for (int j = 0; j < C; ++j) acc[j] = _mm512_mul_pd(acc[j], s);
  }
  for (int j = 0; j < C; ++j) _mm512_mask_storeu_pd(scores + 8 * j, class_lanes(K, j), acc[j]);
}

// add_cached_ranged_gradient's ranges, masked: each range's class gradients compressed into
// its features' order and added to its weights (one addition per weight, as the scalar loop);
// with `touched`, each range's weights marked there.
// The features of a masked row.
SEPTA_AVX512 __attribute__((always_inline)) inline uint32_t row_size(const MaskedRange& r) {
  return static_cast<uint32_t>(_mm_popcnt_u32(r.mask));
}
SEPTA_AVX512 __attribute__((always_inline)) inline uint32_t row_size(const WideMaskedRange& r) {
  return static_cast<uint32_t>(_mm_popcnt_u64(r.mask()));
}

template <int C, typename Range>
SEPTA_AVX512 void masked_gradient(std::size_t K, const Range* first, const Range* last,
                                  const double* g, double* out, uint64_t* touched) {
  __m512d gv[C];
  for (int j = 0; j < C; ++j) gv[j] = _mm512_maskz_loadu_pd(class_lanes(K, j), g + 8 * j);
  for (const Range* r = first; r != last; ++r) {
    add_lanes_to_row<C>(gv, row_mask(*r), out + r->first);
    if (touched) mark_range(touched, r->first, r->first + row_size(*r));
  }
}
/*
 * One SGD step of an instance over masked ranges in the C registers of its classes, from the
 * scores to the gradient without leaving them (fused_ranged_step): the scores, their maximum m,
 * x_c = max(s_c - m, -708), e_c = exp(x_c) as fast_exp_of_clamped computes it in the
 * x86-64-v3 clone of softmax_normalize (each p r + c, x log2e + shifter and the two reductions
 * by ln 2 one fused multiply-add, as gcc contracts them there), the sum of e_c in class order,
 * p_c = e_c / sum (times 1 / sum), g_c = (p_c - [c = gold]) rate, then g added to the ranges
 * (and the dense row). Every value is the one the unfused path computes, bit for bit; what
 * goes is the scores' and gradients' round trips through memory (a masked store keeps the
 * loads after it waiting: perf had a fifth of softmax_normalize on its first load).
 * lane_scores and lane_exponentials are its two first steps, shared with fused_probabilities.
 */

// The scores of a masked instance in its class lanes acc [C] (the dense row or 0, the ranges'
// weights, times scale), as masked_scores adds them; e [8 C] gets them too.
template <int C, typename Range>
SEPTA_AVX512 __attribute__((always_inline)) inline void lane_scores(
    std::size_t K, const double* init, const Range* first, const Range* last, const double* w,
    double scale, __m512d* acc, double* e) {
  for (int j = 0; j < C; ++j)
    acc[j] = init ? _mm512_maskz_loadu_pd(class_lanes(K, j), init + 8 * j) : _mm512_setzero_pd();
  for (const Range* r = first; r != last; ++r) add_row_to_lanes<C>(acc, row_mask(*r), w + r->first);
  if (scale != 1.0) {
    const __m512d s = _mm512_set1_pd(scale);
    for (int j = 0; j < C; ++j) acc[j] = _mm512_mul_pd(acc[j], s);
  }
  for (int j = 0; j < C; ++j) _mm512_store_pd(e + 8 * j, acc[j]);
}

// softmax_normalize's exponentials in the lanes: acc [C] and e [8 C] (the scores on entry) get
// exp(max(s - m, -708)); returns their sum in class order, m the maximum.
template <int C>
SEPTA_AVX512 __attribute__((target("fma"), always_inline)) inline double lane_exponentials(
    std::size_t K, __m512d* acc, double* e, double& m) {
  // m as std::max_element finds it, from the lanes (a scalar pass over e was a chain of K
  // dependent maxima, 8% of the fused step). Ties of +0 and -0 may give m the other zero's
  // sign: x - m, the exponentials and m + log(sum) are the same for either.
  {
    __m512d top = _mm512_set1_pd(-std::numeric_limits<double>::infinity());
    for (int j = 0; j < C; ++j) top = _mm512_mask_max_pd(top, class_lanes(K, j), top, acc[j]);
    // (halved down to one lane; the zeroing forms: gcc 12 warns of the unmasked ones'
    // undefined operands, _mm512_reduce_max_pd included)
    const __m256d half = _mm256_max_pd(_mm512_maskz_extractf64x4_pd(0xff, top, 0),
                                       _mm512_maskz_extractf64x4_pd(0xff, top, 1));
    const __m128d quarter = _mm_max_pd(_mm256_castpd256_pd128(half), _mm256_extractf128_pd(half, 1));
    m = _mm_cvtsd_f64(_mm_max_sd(quarter, _mm_unpackhi_pd(quarter, quarter)));
  }
  const __m512d vm = _mm512_set1_pd(m), floor = _mm512_set1_pd(-708.0);
  const __m512d log2e = _mm512_set1_pd(1.4426950408889634074);
  const __m512d shifter = _mm512_set1_pd(6755399441055744.0);  // 1.5 * 2^52
  const __m512d ln2_high = _mm512_set1_pd(0.693147180369123816490);
  const __m512d ln2_low = _mm512_set1_pd(1.90821492927058770002e-10);
  const __m512i shifter_bits = _mm512_set1_epi64(0x4338000000000000LL);
  static constexpr double kTerms[13] = {
      1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0,
      1.0 / 5040.0,      1.0 / 720.0,      1.0 / 120.0,     1.0 / 24.0,     1.0 / 6.0,
      0.5,               1.0,              1.0};
  for (int j = 0; j < C; ++j) {
    // (std::max(s - m, -708): the first operand unless it is below -708; gcc 12 warns of
    // _mm512_undefined_pd in the unmasked forms: the masked ones with all lanes)
    const __m512d d = _mm512_sub_pd(acc[j], vm);
    const __m512d x = _mm512_mask_max_pd(d, 0xff, d, floor);
    const __m512d shifted = _mm512_fmadd_pd(x, log2e, shifter);
    const __m512d n = _mm512_sub_pd(shifted, shifter);
    const __m512i exponent = _mm512_sub_epi64(_mm512_castpd_si512(shifted), shifter_bits);
    const __m512d r = _mm512_fnmadd_pd(n, ln2_low, _mm512_fnmadd_pd(n, ln2_high, x));
    __m512d p = _mm512_set1_pd(1.0 / 6227020800.0);  // 1/13!
    for (double term : kTerms) p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(term));
    acc[j] = _mm512_castsi512_pd(_mm512_add_epi64(
        _mm512_castpd_si512(p), _mm512_mask_slli_epi64(exponent, 0xff, exponent, 52)));
    _mm512_store_pd(e + 8 * j, acc[j]);
  }
  double sum = 0.0;
  for (std::size_t c = 0; c < K; ++c) sum += e[c];
  return sum;
}

template <int C, typename Range>
SEPTA_AVX512 __attribute__((target("fma"))) double fused_step(
    std::size_t K, int32_t gold, const double* init, const Range* first,
    const Range* last, double* w, double scale, double rate, double* dense,
    uint64_t* touched, std::size_t dense_id) {
  __m512d acc[C];
  alignas(64) double e[8 * C];  // [K] the scores, then their exponentials
  lane_scores<C>(K, init, first, last, w, scale, acc, e);
  const double gold_score = e[gold];
  double m;
  const double sum = lane_exponentials<C>(K, acc, e, m);
  const __m512d inv = _mm512_set1_pd(1.0 / sum), vrate = _mm512_set1_pd(rate);
  const __m512d one = _mm512_set1_pd(1.0);
  for (int j = 0; j < C; ++j) {
    __m512d g = _mm512_mul_pd(acc[j], inv);
    if (gold / 8 == j) g = _mm512_mask_sub_pd(g, static_cast<__mmask8>(1u << (gold % 8)), g, one);
    acc[j] = _mm512_maskz_mul_pd(class_lanes(K, j), g, vrate);
  }
  for (const Range* r = first; r != last; ++r) {
    add_lanes_to_row<C>(acc, row_mask(*r), w + r->first);
    if (touched) mark_range(touched, r->first, r->first + row_size(*r));
  }
  if (dense) {
    for (int j = 0; j < C; ++j) {
      const __mmask8 k = class_lanes(K, j);
      _mm512_mask_storeu_pd(dense + 8 * j, k,
                            _mm512_add_pd(_mm512_maskz_loadu_pd(k, dense + 8 * j), acc[j]));
    }
    if (touched) mark_range(touched, dense_id, dense_id + K);
  }
  return (m + std::log(sum)) - gold_score;
}

// cached_ranged_probabilities' kernel: the scores' softmax (p = e / sum) to out [K].
template <int C, typename Range>
SEPTA_AVX512 __attribute__((target("fma"))) void fused_probabilities(
    std::size_t K, const double* init, const Range* first, const Range* last, const double* w,
    double scale, double* out) {
  __m512d acc[C];
  alignas(64) double e[8 * C];
  lane_scores<C>(K, init, first, last, w, scale, acc, e);
  double m;
  const __m512d inv = _mm512_set1_pd(1.0 / lane_exponentials<C>(K, acc, e, m));
  for (int j = 0; j < C; ++j)
    _mm512_mask_storeu_pd(out + 8 * j, class_lanes(K, j), _mm512_mul_pd(acc[j], inv));
}

// f(std::integral_constant<int, C>{}, first, last) over instance i's masked ranges of either
// width, C the registers of K classes; false (nothing called) when the cache is not masked.
template <typename F>
bool with_masked_ranges(const RangeCache& cache, std::size_t i, std::size_t K, F&& f) {
  if (cache.masked()) {
    with_registers<1, 4>(K, [&](auto c) { f(c, cache.masked_begin(i), cache.masked_end(i)); });
    return true;
  }
  if (cache.wide()) {
    with_registers<5, 8>(K, [&](auto c) { f(c, cache.wide_begin(i), cache.wide_end(i)); });
    return true;
  }
  return false;
}
#endif

}  // namespace

void cached_ranged_scores(const SoftmaxModelShape& shape, const LocalInstance& instance,
                          const RangeCache& cache, std::size_t i, const double* w, double scale,
                          double* scores) {
#ifdef SEPTA_MASKED_ROWS
  const std::size_t K = shape.K;
  const double* init =
      shape.R > 0 ? w + shape.features->size() + static_cast<std::size_t>(instance.context) * K
                  : nullptr;
  const bool masked = with_masked_ranges(cache, i, K, [&](auto c, auto first, auto last) {
    masked_scores<decltype(c)::value>(K, init, first, last, w, scale, scores);
  });
  if (!masked) cached_ranged_scores(shape, instance, cache.begin(i), cache.end(i), w, scale, scores);
#else
  cached_ranged_scores(shape, instance, cache.begin(i), cache.end(i), w, scale, scores);
#endif
  if (shape.mask) {  // as softmax_ranged_scores: the classes the context disallows at -inf
    const char* allowed = &(*shape.mask)[static_cast<std::size_t>(instance.context) * shape.K];
    for (std::size_t c = 0; c < shape.K; ++c)
      if (!allowed[c]) scores[c] = -std::numeric_limits<double>::infinity();
  }
}

bool cached_ranged_probabilities(const SoftmaxModelShape& shape, const LocalInstance& instance,
                                 const RangeCache& cache, std::size_t i, const double* w,
                                 double scale, double* out) {
#ifdef SEPTA_MASKED_ROWS
  const std::size_t K = shape.K;
  if (shape.mask || !vector_clone_v3() || K == 0) return false;
  const double* init =
      shape.R > 0 ? w + shape.features->size() + static_cast<std::size_t>(instance.context) * K
                  : nullptr;
  return with_masked_ranges(cache, i, K, [&](auto c, auto first, auto last) {
    fused_probabilities<decltype(c)::value>(K, init, first, last, w, scale, out);
  });
#else
  (void)shape, (void)instance, (void)cache, (void)i, (void)w, (void)scale, (void)out;
  return false;
#endif
}

namespace {
// ranged_probabilities of either width (C from K: 1-4 registers masked, 5-8 wide).
template <int Lo, int Hi, typename Range>
bool probabilities_of_ranges(const SoftmaxModelShape& shape, const LocalInstance& instance,
                             const Range* first, const Range* last, const double* w,
                             double scale, double* out) {
#ifdef SEPTA_MASKED_ROWS
  const std::size_t K = shape.K;
  if (shape.mask || !vector_clone_v3() || K == 0 || K > 8 * Hi || K <= 8 * (Lo - 1) ||
      !have_avx512())
    return false;
  const double* init =
      shape.R > 0 ? w + shape.features->size() + static_cast<std::size_t>(instance.context) * K
                  : nullptr;
  with_registers<Lo, Hi>(K, [&](auto c) {
    fused_probabilities<decltype(c)::value>(K, init, first, last, w, scale, out);
  });
  return true;
#else
  (void)shape, (void)instance, (void)first, (void)last, (void)w, (void)scale, (void)out;
  return false;
#endif
}
}  // namespace

bool ranged_probabilities(const SoftmaxModelShape& shape, const LocalInstance& instance,
                          const MaskedRange* first, const MaskedRange* last, const double* w,
                          double scale, double* out) {
  return probabilities_of_ranges<1, 4>(shape, instance, first, last, w, scale, out);
}

bool ranged_probabilities(const SoftmaxModelShape& shape, const LocalInstance& instance,
                          const WideMaskedRange* first, const WideMaskedRange* last,
                          const double* w, double scale, double* out) {
  return probabilities_of_ranges<5, 8>(shape, instance, first, last, w, scale, out);
}

bool fused_ranged_step(const SoftmaxModelShape& shape, const LocalInstance& instance,
                       const RangeCache& cache, std::size_t i, double* w, double scale,
                       double rate, uint64_t* touched, double& loss) {
#ifdef SEPTA_MASKED_ROWS
  const std::size_t K = shape.K;
  if (shape.mask || !vector_clone_v3() || K == 0) return false;
  const std::size_t dense_id = shape.features->size() + static_cast<std::size_t>(instance.context) * K;
  double* dense = shape.R > 0 ? w + dense_id : nullptr;
  return with_masked_ranges(cache, i, K, [&](auto c, auto first, auto last) {
    loss = fused_step<decltype(c)::value>(K, instance.gold, dense, first, last, w, scale, rate,
                                          dense, touched, dense_id);
  });
#else
  (void)shape, (void)instance, (void)cache, (void)i, (void)w, (void)scale, (void)rate,
      (void)touched, (void)loss;
  return false;
#endif
}

void add_cached_ranged_gradient(const SoftmaxModelShape& shape, const LocalInstance& instance,
                                const RangeCache& cache, std::size_t i,
                                const double* class_gradient, double* out, uint64_t* touched) {
  const std::size_t K = shape.K;
  const std::size_t dense = shape.features->size() + static_cast<std::size_t>(instance.context) * K;
#ifdef SEPTA_MASKED_ROWS
  const bool masked = with_masked_ranges(cache, i, K, [&](auto c, auto first, auto last) {
    masked_gradient<decltype(c)::value>(K, first, last, class_gradient, out, touched);
  });
  if (masked) {
    if (shape.R > 0) {
      for (std::size_t c = 0; c < K; ++c) out[dense + c] += class_gradient[c];
      if (touched) mark_range(touched, dense, dense + K);
    }
    return;
  }
#endif
  add_cached_ranged_gradient(shape, instance, cache.begin(i), cache.end(i), class_gradient, out);
  if (!touched) return;
  for (const CachedRange* r = cache.begin(i), *e = cache.end(i); r != e; ++r)
    mark_range(touched, r->first, r->last);
  if (shape.R > 0) mark_range(touched, dense, dense + K);
}

}  // namespace septa::crf
