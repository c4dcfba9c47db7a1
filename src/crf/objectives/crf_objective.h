// The negative log-likelihood of a linear-chain CRF and its gradient (no regularisation).
#pragma once

#include <vector>

#include "crf/features/dataset.h"
#include "crf/lattice/lattice.h"
#include "crf/scoring/linear_chain.h"

namespace septa::crf {

class CrfObjective {
 public:
  // `structure` gives the features; its weights are ignored. Gold labels must all be known.
  CrfObjective(const Dataset& data, const LinearChainScorer& structure, int threads);

  std::size_t dimension() const { return empirical_.size(); }
  // Returns -sum_n weight_n log P(y_n | x_n; w) and writes its gradient to grad [F].
  double evaluate(const double* w, double* grad);
  // Observed feature counts [F], weighted by sequence weights.
  const std::vector<double>& empirical() const { return empirical_; }

  // Sequences are split into this many blocks whatever the thread count (determinism).
  static constexpr std::size_t kBlocks = 16;

 private:
  const Dataset& data_;
  const LinearChainScorer& structure_;
  int threads_;
  std::vector<std::size_t> block_bounds_;      // [kBlocks+1] sequence ranges
  std::vector<double> empirical_;              // [F] observed counts
  std::vector<std::vector<double>> partial_;   // [workers][F] expected counts of one block
  std::vector<double> block_log_z_;            // [kBlocks] sum of weight * log Z
  std::vector<Lattice> lattices_;              // [workers]
};

}  // namespace septa::crf
