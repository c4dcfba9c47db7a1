#include "crf/optim/sgd_calibrate.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "crf/optim/huge_pages.h"
#include "crf/optim/sgd_state.h"
#include "crf/parallel/ordered_parallel.h"
#include "septa/error.h"

namespace septa::crf {

/*
 * Bottou's calibration: one pass over a sample of M instances for each candidate rate; the rate
 * with the lowest sample objective wins. The sample stands for the whole data, so it keeps the
 * whole problem's per-instance penalty lambda = 2 c2 / N (its objective: the sample loss +
 * c2 (M / N) ||w||^2). (Before: lambda = 2 c2 / M, a penalty N/M times too strong that picked
 * rates 2.5x smaller on NER and cost 0.7 F1 on eng.testa; docs/crf.md.) The candidate rates
 * are independent runs, tried concurrently (over threads and ranks); the choice reads them in
 * rate order.
 */
double calibrate_rate(const Dataset& data, const std::vector<LocalInstance>& instances,
                      const std::vector<std::size_t>& sample, const SoftmaxModelShape& shape,
                      const std::vector<double>& w0, double c2, std::size_t N, int threads,
                      Communicator* ranks, const ListedFeatureCache* cache,
                      const RangeCache* range_cache) {
  const double lambda = 2.0 * c2 / static_cast<double>(N);
  c2 *= static_cast<double>(sample.size()) / static_cast<double>(N);
  constexpr double kRates[] = {4.0, 2.0, 1.0, 0.5, 0.25, 0.1, 0.05, 0.02};
  constexpr std::size_t R = sizeof kRates / sizeof kRates[0];
  // Over ranks, rank q scores the rates i = q, q + P, ... (on its threads) and the scores are
  // allgathered: each score is computed as one process computes it, and the choice below runs
  // in rate order.
  const std::size_t P = ranks ? static_cast<std::size_t>(ranks->size()) : 1;
  const std::size_t me = ranks ? static_cast<std::size_t>(ranks->rank()) : 0;
  std::vector<double> objectives(R, NAN);  // [R] sample objective of each rate
  std::vector<std::size_t> mine;           // rates scored here
  for (std::size_t i = me; i < R; i += P) mine.push_back(i);
  // From zero weights (a fresh fit) each rate runs in a zero buffer reused from rate to rate
  // (a pool, one per concurrent task) and only the weights its steps marked are scaled,
  // summed into ||w||^2 (in increasing order: the zeros add nothing, so the sum is the same bit
  // for bit) and reset: a fresh copy of w0 per rate and the passes over the whole dimension
  // were most of the pairwise factor's calibration (8 x 9.2 MB on CoNLL-2000).
  const std::size_t D = w0.size();
  const bool from_zero = std::all_of(w0.begin(), w0.end(), [](double x) {
    return x == 0.0 && !std::signbit(x);
  });
  // (The weights on huge pages, as the SGD's: each thread's first buffer took one fault per
  // 4 KB page, the first two rates 4-5x the others' CPU on the pairwise factor of CoNLL-2000.
  // From zero a fresh buffer is not written first: a copy of w0 read and wrote 2 x 9.2 MB per
  // concurrent rate, up to 8 buffers from 8 threads on.)
  struct Buffers {
    ZeroedHugeArray<double> w;  // [D] all zero between rates
    std::vector<uint64_t> marked;  // [D / 64 + 1] all zero between rates
  };
  std::mutex pool_mutex;
  std::vector<Buffers> pool;
  parallel_for(mine.size(), threads, [&](std::size_t k) {
    const double rate = kRates[mine[k]];
    Buffers b;
    if (from_zero) {
      std::lock_guard<std::mutex> lock(pool_mutex);
      if (!pool.empty()) {
        b = std::move(pool.back());
        pool.pop_back();
      }
    }
    if (b.w.empty()) {
      b.w = ZeroedHugeArray<double>(D);
      if (from_zero)
        b.marked.assign(D / 64 + 1, 0);
      else
        std::copy(w0.begin(), w0.end(), b.w.data());
    }
    double* w = b.w.data();
    std::vector<double> probs(shape.K);
    SgdState state(data, shape, w, lambda, 1.0, from_zero ? b.marked.data() : nullptr, cache,
                   range_cache);
    for (std::size_t t = 0; t < sample.size(); ++t)
      state.step(instances[sample[t]], rate / (1.0 + lambda * rate * t), sample[t]);
    std::vector<uint32_t> changed;  // (from zero) the marked weights, increasing
    if (from_zero) {
      const double scale = state.scale();  // the rescale of the marked weights (0 * scale = 0)
      for (std::size_t word = 0; word < b.marked.size(); ++word)
        for (uint64_t bits = b.marked[word]; bits; bits &= bits - 1) {
          const std::size_t d = word * 64 + static_cast<std::size_t>(__builtin_ctzll(bits));
          changed.push_back(static_cast<uint32_t>(d));
          w[d] *= scale;
        }
    } else {
      state.rescale();
    }
    double loss = 0.0;
    for (std::size_t i : sample) {
      const LocalInstance& instance = instances[i];
      if (only_gold(shape, instance)) continue;  // loss exactly 0
      if (cache && cache->has(i))
        cached_listed_scores(shape, instance, cache->begin(i), cache->size(i), w, 1.0,
                             probs.data());
      else if (state.range_cache() && !(shape.candidates && instance.candidates >= 0))
        cached_ranged_scores(shape, instance, *range_cache, i, w, 1.0, probs.data());
      else
        softmax_raw_scores(shape, ItemArrays::of(data), instance, w, 1.0, probs.data());
      const double gold = probs[instance.gold];
      loss += instance.weight * (softmax_normalize_instance(shape, instance, probs.data()) - gold);
    }
    double norm = 0.0;
    if (from_zero) {
      for (uint32_t d : changed) {
        norm += w[d] * w[d];
        w[d] = 0.0;
      }
      std::fill(b.marked.begin(), b.marked.end(), 0);
      std::lock_guard<std::mutex> lock(pool_mutex);
      pool.push_back(std::move(b));
    } else {
      for (double x : b.w) norm += x * x;
    }
    objectives[mine[k]] = loss + c2 * norm;
  });
  if (P > 1) {
    std::vector<double> scored;  // [my rates]
    for (std::size_t i : mine) scored.push_back(objectives[i]);
    const std::vector<std::string> parts = ranks->allgather(
        std::string(reinterpret_cast<const char*>(scored.data()), sizeof(double) * scored.size()));
    for (std::size_t q = 0; q < P; ++q)
      for (std::size_t i = q, k = 0; i < R; i += P, ++k) {
        SEPTA_CHECK(parts[q].size() >= sizeof(double) * (k + 1));
        std::memcpy(&objectives[i], parts[q].data() + sizeof(double) * k, sizeof(double));
      }
  }
  double best_rate = 0.1, best_objective = INFINITY;
  for (std::size_t i = 0; i < R; ++i)
    if (std::isfinite(objectives[i]) && objectives[i] < best_objective) {
      best_objective = objectives[i];
      best_rate = kRates[i];
    }
  return best_rate;
}

}  // namespace septa::crf
