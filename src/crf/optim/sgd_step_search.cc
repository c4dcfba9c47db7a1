// ShardedSgd::mixing_step: the step along the mixed direction, chosen on a sample.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "crf/optim/listed_cache.h"
#include "crf/optim/only_gold.h"
#include "crf/optim/range_cache.h"
#include "crf/optim/sgd.h"
#include "crf/optim/shard_mix.h"
#include "crf/parallel/ordered_parallel.h"
#include "septa/error.h"

namespace septa::crf {

/*
 * Step along the mixed direction: the mix w + Delta moves only about as far as one shard's
 * pass, so the step gamma in w + gamma Delta is chosen on a grid in [1, S] by the objective
 * estimated on a fixed strided sample of M instances (M = 4,000 / mixes, at least 1,000):
 *   J(gamma) = (N/M) sum_{i in sample} w_i loss_i(w + gamma Delta) + c2 ||w + gamma Delta||^2
 * Scores are linear in gamma (s = s0 + gamma sDelta, sDelta = (a - 1) s0' + s(delta) with s0'
 * the scores of w without base offsets), so one pass over the sample gives every grid point,
 * over the instance's candidate classes only; the sample is cut into 16 fixed blocks whose
 * losses are added in block order. ||w + gamma Delta||^2 = ww + 2 gamma b + gamma^2 c with
 * b = (a - 1) ww + wd, c = (a - 1)^2 ww + 2 (a - 1) wd + dd. Ties and failures keep gamma = 1.
 */
double ShardedSgd::mixing_step(const double* z, double G, double a, const double* delta,
                               double ww, double wd, double dd, int threads,
                               std::vector<double>* cpu, Communicator* ranks) const {
  const std::size_t S = shards(), N = order_.size(), K = shape_.K;
  if (S < 2) return 1.0;
  std::vector<double> grid;
  for (double g = 1.0; g <= static_cast<double>(S) + 1e-9; g *= 1.41421356237) grid.push_back(g);
  const std::size_t M = step_sample_size(), B = 16;
  std::vector<std::vector<double>> block_loss(B, std::vector<double>(grid.size(), 0.0));
  const ItemArrays items = ItemArrays::of(*data_);
  std::vector<double> block_cpu(B, 0.0);
  // Over ranks, rank q scores the blocks [B q/P, B (q+1)/P) and the block losses are
  // allgathered: the sums below then add the same numbers in the same order as one process.
  const std::size_t P = ranks ? static_cast<std::size_t>(ranks->size()) : 1;
  const std::size_t me = ranks ? static_cast<std::size_t>(ranks->rank()) : 0;
  const std::size_t b0 = B * me / P, b1 = B * (me + 1) / P;
  // Each block keeps its sample's s0 and sDelta over the scored classes (per instance: its
  // classes cls [n], then s0 [n] and sDelta [n] at cached[at..at+2n)), so that a further grid
  // point costs the normalisers only.
  struct Sampled {
    const LocalInstance* instance;
    const int32_t* cls;
    std::size_t n;
    std::size_t at;
  };
  std::vector<std::vector<Sampled>> sampled(B);
  std::vector<std::vector<double>> cached(B);
  std::vector<int32_t> every(K);
  for (std::size_t c = 0; c < K; ++c) every[c] = static_cast<int32_t>(c);
  // The losses at grid points [g0, g1) of a block, from its cached scores.
  const auto score_grid = [&](std::size_t block, std::size_t g0, std::size_t g1) {
    // The sums kept in a local array and stored once (the blocks' loss vectors are neighbours
    // on the heap: blocks on two threads wrote the same cache lines at every instance).
    thread_local std::vector<double> s, sum;
    s.resize(K);
    sum.assign(block_loss[block].begin() + g0, block_loss[block].begin() + g1);
    double* loss = sum.data() - g0;  // loss[g] for g in [g0, g1)
    for (const Sampled& x : sampled[block]) {
      const LocalInstance& instance = *x.instance;
      const double* s0 = &cached[block][x.at];
      const double* sd = s0 + x.n;
      for (std::size_t g = g0; g < g1; ++g) {
        for (std::size_t i = 0; i < x.n; ++i)
          s[x.cls[i]] = std::isinf(s0[i]) ? s0[i] : s0[i] + grid[g] * sd[i];
        const double gold = s[instance.gold];
        loss[g] += instance.weight * (softmax_normalize_instance(shape_, instance, s.data()) - gold);
      }
    }
    std::copy(sum.begin(), sum.end(), block_loss[block].begin() + g0);
  };
  // Over ranks, every rank's block losses at [g0, g1) to every rank.
  const auto share = [&](std::size_t g0, std::size_t g1) {
    if (P == 1) return;
    const std::size_t n = g1 - g0;
    std::string mine;
    for (std::size_t block = b0; block < b1; ++block)
      mine.append(reinterpret_cast<const char*>(block_loss[block].data() + g0), sizeof(double) * n);
    const std::vector<std::string> parts = ranks->allgather(std::move(mine));
    for (std::size_t q = 0; q < P; ++q) {
      const std::size_t q0 = B * q / P, q1 = B * (q + 1) / P;
      SEPTA_CHECK(parts[q].size() == sizeof(double) * n * (q1 - q0));
      for (std::size_t block = q0; block < q1; ++block)
        std::memcpy(block_loss[block].data() + g0, parts[q].data() + sizeof(double) * n * (block - q0),
                    sizeof(double) * n);
    }
  };
  constexpr std::size_t kFirst = 2;  // grid points scored with the sample (most steps stop there)
  std::size_t scored = std::min(kFirst, grid.size());
  parallel_for(b1 - b0, threads, [&](std::size_t i) {
    const std::size_t block = b0 + i;
    const double c0 = cpu ? thread_cpu_seconds() : 0.0;
    std::vector<double> s0(K), sd(K), all(K);
    // The block's sample built in local vectors and moved into place (their neighbours' ends
    // were written at every instance by the other thread: the same cache lines).
    std::vector<double> out;
    std::vector<Sampled> mine;
    const std::size_t j1 = M * (block + 1) / B;
    const int32_t* feature_classes = shape_.features->classes.data();
    for (std::size_t j = M * block / B; j < j1; ++j) {
      // The sample is spread over the data: the cached features of the instance 2 ahead, and
      // the weights, steps and classes of the next one's, prefetched (every line a miss).
      if (j + 2 < j1) {
        const std::size_t ahead = step_sample_[j + 2];
        if (range_cache_) __builtin_prefetch(range_cache_->data_of(ahead));
        if (cache_ && cache_->has(ahead)) __builtin_prefetch(cache_->begin(ahead));
      }
      if (j + 1 < j1) {
        const std::size_t next = step_sample_[j + 1];
        if (range_cache_ && !shape_.candidates) {
          const bool masked = range_cache_->masked() || range_cache_->wide();  // (no class read)
          range_cache_->each(next, [&](uint32_t first, uint32_t) {
            __builtin_prefetch(z + first);
            __builtin_prefetch(delta + first);
            if (!masked) __builtin_prefetch(feature_classes + first);
          });
        } else if (cache_ && cache_->has(next)) {
          const ListedEntry* e = cache_->begin(next);
          for (std::size_t k = 0, m = cache_->size(next); k < m; ++k) {
            __builtin_prefetch(z + e[k].f());
            __builtin_prefetch(delta + e[k].f());
          }
        }
      }
      const std::size_t index = step_sample_[j];
      const LocalInstance& instance = (*instances_)[index];
      if (only_gold(shape_, instance)) continue;  // loss exactly 0 at every grid point
      const int32_t* cls;
      std::size_t n;
      const double* base = nullptr;
      if (shape_.candidates && instance.candidates >= 0 && !shape_.mask) {
        const CandidateLists& lists = *shape_.candidates;
        const std::size_t at = lists.offsets[instance.candidates];
        cls = &lists.classes[at];
        n = lists.offsets[instance.candidates + 1] - at;
        if (!lists.base.empty()) base = &lists.base[at];
      } else {
        cls = every.data();
        n = K;
        if (shape_.candidates && instance.candidates >= 0 && !shape_.candidates->base.empty()) {
          // a candidate list with a mask: the base applies to the listed classes only
          std::fill(all.begin(), all.end(), 0.0);
          const CandidateLists& lists = *shape_.candidates;
          for (std::size_t i = lists.offsets[instance.candidates];
               i < lists.offsets[instance.candidates + 1]; ++i)
            all[lists.classes[i]] = lists.base[i];
          base = all.data();
        }
      }
      // The SGD's caches of the instance's features give the same sums bit for bit.
      if (range_cache_ && !shape_.candidates) {
        cached_ranged_scores(shape_, instance, *range_cache_, index, z, G, s0.data());
        cached_ranged_scores(shape_, instance, *range_cache_, index, delta, 1.0, sd.data());
      } else if (cache_ && cache_->has(index)) {
        const ListedEntry* e = cache_->begin(index);
        const std::size_t ne = cache_->size(index);
        cached_listed_scores(shape_, instance, e, ne, z, G, s0.data(), /*with_base=*/false);
        cached_listed_scores(shape_, instance, e, ne, delta, 1.0, sd.data(), /*with_base=*/false);
      } else {
        softmax_raw_scores(shape_, items, instance, z, G, s0.data(), /*with_base=*/false);
        softmax_raw_scores(shape_, items, instance, delta, 1.0, sd.data(), /*with_base=*/false);
      }
      const std::size_t at = out.size();
      out.resize(at + 2 * n);
      for (std::size_t i = 0; i < n; ++i) {
        const int32_t c = cls[i];
        if (!std::isinf(s0[c])) sd[c] += (a - 1.0) * s0[c];
        if (base) s0[c] += base == all.data() ? all[c] : base[i];
        out[at + i] = s0[c];
        out[at + n + i] = sd[c];
      }
      mine.push_back(Sampled{&instance, cls, n, at});
    }
    cached[block] = std::move(out);
    sampled[block] = std::move(mine);
    score_grid(block, 0, scored);
    if (cpu) block_cpu[block] = thread_cpu_seconds() - c0;
  });
  share(0, scored);
  /*
   * J(gamma) is convex (the losses are convex in the scores, the scores linear in gamma, the
   * penalty a convex quadratic), so along the increasing grid the first point above the best
   * so far ends the search: the later points are higher still. Further grid points are scored
   * two at a time from the cached scores until then (the same sums as scoring all of them;
   * every rank takes the same decisions from the same losses).
   */
  const double b = (a - 1.0) * ww + wd, c = (a - 1.0) * (a - 1.0) * ww + 2.0 * (a - 1.0) * wd + dd;
  double best = 1.0, best_objective = INFINITY;
  for (std::size_t g = 0; g < grid.size(); ++g) {
    // A step that would shrink the weights no shard updated by more than half (a strong
    // penalty extrapolated) is not tried; gamma = 1 is always allowed (G' = G a > 0). The
    // shrink grows with gamma: the later points are left out too.
    if (grid[g] > 1.0 && 1.0 + grid[g] * (a - 1.0) < 0.5) break;
    if (g == scored) {
      const std::size_t g1 = std::min(grid.size(), scored + 2);
      parallel_for(b1 - b0, threads, [&](std::size_t i) {
        const double c0 = cpu ? thread_cpu_seconds() : 0.0;
        score_grid(b0 + i, scored, g1);
        if (cpu) block_cpu[b0 + i] += thread_cpu_seconds() - c0;
      });
      share(scored, g1);
      scored = g1;
    }
    double loss = 0.0;
    for (std::size_t block = 0; block < B; ++block) loss += block_loss[block][g];
    const double objective = static_cast<double>(N) / static_cast<double>(M) * loss +
                             options_.c2 * (ww + 2.0 * grid[g] * b + grid[g] * grid[g] * c);
    if (std::isfinite(objective) && objective < best_objective) {
      best_objective = objective;
      best = grid[g];
    } else if (std::isfinite(objective) && objective > best_objective) {
      break;
    }
  }
  if (cpu) *cpu = block_cpu;
  return best;
}

}  // namespace septa::crf
