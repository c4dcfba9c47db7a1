#include "crf/lattice/nbest.h"

#include <algorithm>

namespace septa::crf {
namespace {

// One of the K best partial paths ending in (t, j): its score and where it came from.
struct Entry {
  double score;
  int previous;       // label at t-1 (-1 at t = 0)
  int previous_rank;  // rank among the K best partial paths ending at (t-1, previous)
};

}  // namespace

/*
 * List Viterbi (Seshadri and Sundberg 1994): keep the K best partial paths into every node.
 *   best_k(0, j)  = state(0, j)
 *   best_k(t, j)  = k-th largest of { best_r(t-1, i) + trans(t, i, j) + state(t, j) : i, r }
 * The K best complete paths are the K largest best_r(T-1, j); backtracking follows (previous,
 * previous_rank). Cost O(T L^2 K log(LK)), memory [T][L][K].
 */
std::vector<ScoredPath> nbest(const Lattice& lattice, std::size_t K) {
  const std::size_t T = lattice.length(), L = lattice.labels();
  std::vector<ScoredPath> out;
  if (T == 0 || K == 0) return out;
  std::vector<std::vector<Entry>> table(T * L);  // [T][L] -> up to K entries, best first
  const auto better = [](const Entry& a, const Entry& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.previous != b.previous) return a.previous < b.previous;
    return a.previous_rank < b.previous_rank;
  };
  for (std::size_t j = 0; j < L; ++j) table[j] = {Entry{lattice.state(0)[j], -1, 0}};
  std::vector<Entry> candidates;
  for (std::size_t t = 1; t < T; ++t) {
    const double* trans = lattice.transition(t);  // [L][L] previous x current
    const double* state = lattice.state(t);
    for (std::size_t j = 0; j < L; ++j) {
      candidates.clear();
      for (std::size_t i = 0; i < L; ++i) {
        const std::vector<Entry>& from = table[(t - 1) * L + i];
        for (std::size_t r = 0; r < from.size(); ++r)
          candidates.push_back(Entry{from[r].score + trans[i * L + j] + state[j],
                                     static_cast<int>(i), static_cast<int>(r)});
      }
      const std::size_t keep = std::min(K, candidates.size());
      std::partial_sort(candidates.begin(), candidates.begin() + keep, candidates.end(), better);
      table[t * L + j].assign(candidates.begin(), candidates.begin() + keep);
    }
  }
  // The K best endings, then backtrack each.
  struct Ending {
    double score;
    int label, rank;
  };
  std::vector<Ending> endings;
  for (std::size_t j = 0; j < L; ++j)
    for (std::size_t r = 0; r < table[(T - 1) * L + j].size(); ++r)
      endings.push_back({table[(T - 1) * L + j][r].score, static_cast<int>(j), static_cast<int>(r)});
  const std::size_t keep = std::min(K, endings.size());
  std::partial_sort(endings.begin(), endings.begin() + keep, endings.end(),
                    [](const Ending& a, const Ending& b) {
                      if (a.score != b.score) return a.score > b.score;
                      if (a.label != b.label) return a.label < b.label;
                      return a.rank < b.rank;
                    });
  for (std::size_t k = 0; k < keep; ++k) {
    ScoredPath path;
    path.score = endings[k].score;
    path.labels.assign(T, 0);
    int label = endings[k].label, rank = endings[k].rank;
    for (std::size_t t = T; t-- > 0;) {
      path.labels[t] = label;
      const Entry& e = table[t * L + static_cast<std::size_t>(label)][static_cast<std::size_t>(rank)];
      label = e.previous;
      rank = e.previous_rank;
    }
    out.push_back(std::move(path));
  }
  return out;
}

}  // namespace septa::crf
