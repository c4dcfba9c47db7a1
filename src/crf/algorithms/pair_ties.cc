#include "crf/algorithms/pair_ties.h"

#include <algorithm>
#include <string>

#include "crf/parallel/ordered_parallel.h"

namespace septa::crf {

namespace {

// Whether attribute strings of different unigram templates can never be equal: each template's
// text before its first macro (its id) ends with its only ':' and no two ids are the same, so a
// string's id, and with it its template, is the part up to its first ':'.
bool templates_own_their_strings(const FeatureTemplate& templ) {
  std::vector<std::string> ids;
  for (std::size_t u = 0; u < templ.unigram_count(); ++u) {
    const std::string& text = templ.unigram_text(u);
    const std::string id = text.substr(0, text.find("%x["));
    if (id.empty() || id.find(':') != id.size() - 1) return false;
    if (std::find(ids.begin(), ids.end(), id) != ids.end()) return false;
    ids.push_back(id);
  }
  return true;
}

}  // namespace

PairTies find_pair_ties(const Dataset& data, const FeatureTemplate& templ, std::size_t A,
                        const SparseFeatures& pairs, Communicator* spread, int threads) {
  PairTies out;
  const std::size_t U = templ.unigram_count();
  const std::vector<int> partner = templ.unigram_shift_partners();  // [U]
  std::vector<std::size_t> tied_templates;  // the templates u with a partner
  for (std::size_t u = 0; u < U; ++u)
    if (partner[u] >= 0) tied_templates.push_back(u);
  if (tied_templates.empty() || !templates_own_their_strings(templ) || pairs.A != 2 * A ||
      pairs.offsets.size() != 2 * A + 1)
    return out;
  const std::size_t* offsets = data.item_offsets.data();
  const int32_t* ids = data.attribute_ids.data();
  uint64_t shaped = 1;  // every item has one attribute per template, in template order
  for (std::size_t i = 0; i < data.items() && shaped; ++i) shaped = offsets[i + 1] - offsets[i] == U;
  if (spread) {
    std::vector<uint64_t> all{shaped};
    spread->allreduce(all, Communicator::Op::kMin);
    shaped = all[0];
  }
  if (!shaped) return out;
  /*
   * Template u at t+1 reads the tokens, padding included, that its partner v reads at t, with
   * the same literals; each string belongs to one template (templates_own_their_strings). So
   * b (of u) is at t+1 exactly where p (of v, the same text after the id) is at t: p is the
   * attribute at v of item t on any edge with b at t+1. Each b is of one template, so the
   * templates' passes over the edges write disjoint entries (in parallel, any thread count).
   * [A] b's partner + 1, 0 unseen (read over spread ranks: the largest and smallest must agree).
   */
  std::vector<uint64_t> high(A, 0);
  parallel_for(tied_templates.size(), threads, [&](std::size_t k) {
    const std::size_t u = tied_templates[k], v = static_cast<std::size_t>(partner[u]);
    for (std::size_t n = 0; n < data.size(); ++n)
      for (std::size_t i = data.sequence_offsets[n]; i + 1 < data.sequence_offsets[n + 1]; ++i)
        high[static_cast<std::size_t>(ids[offsets[i + 1] + u])] =
            static_cast<uint64_t>(ids[offsets[i] + v]) + 1;
  });
  std::vector<uint64_t> low = high;
  if (spread) {
    for (uint64_t& x : low)
      if (x == 0) x = ~uint64_t{0};
    spread->allreduce(high, Communicator::Op::kMax);
    spread->allreduce(low, Communicator::Op::kMin);
  }
  out.tied.assign(2 * A, -1);
  const uint32_t* f = pairs.offsets.data();
  constexpr std::size_t B = 64;
  std::vector<std::size_t> counts(B, 0);  // [B] tied attributes per block
  parallel_for(B, threads, [&](std::size_t block) {
    for (std::size_t b = A * block / B; b < A * (block + 1) / B; ++b) {
      if (high[b] == 0 || low[b] != high[b]) continue;
      const std::size_t p = static_cast<std::size_t>(high[b] - 1);
      const uint32_t r0 = f[A + b], r1 = f[A + b + 1];
      if (r0 == r1 || r1 - r0 != f[p + 1] - f[p] ||
          !std::equal(pairs.classes.begin() + r0, pairs.classes.begin() + r1,
                      pairs.classes.begin() + f[p]))
        continue;  // (a guard: the same edges give the same classes)
      out.tied[A + b] = static_cast<int32_t>(p);
      ++counts[block];
    }
  });
  for (std::size_t c : counts) out.count += c;
  if (out.count == 0) out.tied.clear();
  return out;
}

SparseFeatures without_tied(const SparseFeatures& pairs, const std::vector<int32_t>& tied,
                            int threads) {
  SparseFeatures out;
  out.A = pairs.A;
  out.K = pairs.K;
  out.offsets.assign(pairs.A + 1, 0);
  // 64 fixed blocks of attributes: their kept features counted, then copied into place.
  constexpr std::size_t B = 64;
  const std::size_t As = pairs.A;
  std::vector<uint32_t> block_first(B + 1, 0);  // [B+1] each block's first kept feature
  parallel_for(B, threads, [&](std::size_t b) {
    uint32_t kept = 0;
    for (std::size_t a = As * b / B; a < As * (b + 1) / B; ++a)
      if (tied[a] < 0) kept += pairs.offsets[a + 1] - pairs.offsets[a];
    block_first[b + 1] = kept;
  });
  for (std::size_t b = 0; b < B; ++b) block_first[b + 1] += block_first[b];
  out.classes.resize(block_first[B]);
  parallel_for(B, threads, [&](std::size_t b) {
    uint32_t at = block_first[b];
    for (std::size_t a = As * b / B; a < As * (b + 1) / B; ++a) {
      if (tied[a] < 0) {
        std::copy(pairs.classes.begin() + pairs.offsets[a], pairs.classes.begin() + pairs.offsets[a + 1],
                  out.classes.begin() + at);
        at += pairs.offsets[a + 1] - pairs.offsets[a];
      }
      out.offsets[a + 1] = at;
    }
  });
  return out;
}

std::vector<double> untied_weights(const SparseFeatures& pairs, const SparseFeatures& trained,
                                   const std::vector<int32_t>& tied, const std::vector<double>& w,
                                   int threads) {
  const std::size_t tail = w.size() - trained.size();  // dense weights after the features
  std::vector<double> out(pairs.size() + tail);
  constexpr std::size_t B = 64;
  parallel_for(B, threads, [&](std::size_t b) {
    for (std::size_t a = pairs.A * b / B; a < pairs.A * (b + 1) / B; ++a) {
      const std::size_t from = tied[a] < 0 ? a : static_cast<std::size_t>(tied[a]);
      std::copy(w.begin() + trained.offsets[from], w.begin() + trained.offsets[from + 1],
                out.begin() + pairs.offsets[a]);
    }
  });
  std::copy(w.end() - static_cast<std::ptrdiff_t>(tail), w.end(),
            out.begin() + static_cast<std::ptrdiff_t>(pairs.size()));
  return out;
}

}  // namespace septa::crf
