#include "crf/algorithms/algorithm_table.h"

#include "crf/scoring/count_scorer.h"
#include "crf/scoring/linear_chain.h"
#include "crf/scoring/memm_scorer.h"
#include "crf/scoring/separate_scorer.h"

namespace septa::crf {
namespace {

template <class ScorerType>
std::unique_ptr<Scorer> read_as(ByteReader& in) {
  return ScorerType::read(in);
}

}  // namespace

const std::vector<AlgorithmEntry>& algorithm_table() {
  static const std::vector<AlgorithmEntry> table = {
      {"lbfgs", "standard CRF training: maximum likelihood by L-BFGS (OWL-QN when c1 > 0)",
       &train_lbfgs, &read_as<LinearChainScorer>},
      {"separate", "CR-F separate training: unary and pairwise factors fitted independently",
       &train_separate, &read_as<SeparateScorer>},
      {"separate-counts", "CR-F factors from smoothed counts: one pass, no optimiser",
       &train_separate_counts, &read_as<CountScorer>},
      {"piecewise", "piecewise training (Sutton & McCallum 2005) of the CRF weights",
       &train_piecewise, &read_as<LinearChainScorer>},
      {"memm", "maximum-entropy Markov model baseline", &train_memm, &read_as<MemmScorer>},
      {"ap", "averaged perceptron (Collins 2002) over the CRF's features", &train_ap,
       &read_as<LinearChainScorer>},
      {"pa", "passive-aggressive (Crammer et al. 2006) over the CRF's features", &train_pa,
       &read_as<LinearChainScorer>},
      {"arow", "adaptive regularisation of weight vectors (Crammer et al. 2009)", &train_arow,
       &read_as<LinearChainScorer>},
      {"l2sgd", "stochastic gradient descent with L2 (CRFsuite's l2sgd, calibrated rate)",
       &train_l2sgd, &read_as<LinearChainScorer>},
  };
  return table;
}

const AlgorithmEntry* find_algorithm(const std::string& name) {
  for (const AlgorithmEntry& entry : algorithm_table())
    if (name == entry.name) return &entry;
  return nullptr;
}

std::unique_ptr<Scorer> read_scorer(const std::string& algorithm, ByteReader& in) {
  const AlgorithmEntry* entry = find_algorithm(algorithm);
  if (entry == nullptr) in.fail("unknown algorithm '" + algorithm + "'");
  return entry->read_scorer(in);
}

}  // namespace septa::crf
