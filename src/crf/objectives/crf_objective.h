// The negative log-likelihood of a linear-chain CRF and its gradient (no regularisation).
#pragma once

#include <vector>

#include "crf/features/dataset.h"
#include "crf/lattice/lattice.h"
#include "crf/optim/feature_ranges.h"
#include "crf/parallel/collective.h"
#include "crf/scoring/linear_chain.h"

namespace septa::crf {

class CrfObjective {
 public:
  // `structure` gives the features; its weights are ignored. Gold labels must all be known.
  // With `layout`, `data` is this rank's part of a corpus spread over ranks, cut into the
  // layout's blocks; every rank then gets the objective and gradient of the whole corpus, bit
  // for bit as one process with the same blocks. Without it, kBlocks blocks by item count.
  // `masked` lets sequences without values go through the masked rows of the state features
  // where they apply (LinearChainScorer::masked_rows; the same bits as without).
  CrfObjective(const Dataset& data, const LinearChainScorer& structure, int threads,
               const BlockLayout* layout = nullptr, bool masked = true);
  // Whether the masked rows are in use.
  bool masked() const { return !rows_.empty() || !wide_rows_.empty(); }

  std::size_t dimension() const { return structure_.feature_count(); }
  // Returns -sum_n weight_n log P(y_n | x_n; w) and writes its gradient to grad [F].
  double evaluate(const double* w, double* grad);
  // The same value; writes only this rank's feature range [owned_begin, owned_end) of the
  // gradient to grad [owned_end - owned_begin] (ranges(); all of it in one process).
  double evaluate_owned(const double* w, double* grad);
  std::size_t owned_begin() const;
  std::size_t owned_end() const;
  // The ranks' feature ranges (balanced by the memory they cost; one range in one process).
  const FeatureRanges& ranges() const { return ranges_; }

  // Sequences are split into this many blocks whatever the thread count (determinism).
  static constexpr std::size_t kBlocks = 16;

  // Bytes each rank sends to the other ranks per evaluation (with a layout).
  std::size_t bytes_sent() const { return sent_bytes_; }
  // Bytes each rank receives from the other ranks per evaluation (with a layout).
  std::size_t bytes_received() const { return received_bytes_; }

 private:
  // Whether blocks' gradients go through the ranks' exchange (a layout over several ranks).
  bool exchanges() const { return layout_ != nullptr && layout_->comm->size() > 1; }
  void exchange_touched();
  double evaluate(const double* w, double* grad, bool whole);
  void reduce_blocks(double* grad, double& total_log_z, bool gather);
  void start_receives();
  void start_sends(std::size_t block);

  const Dataset& data_;
  const LinearChainScorer& structure_;
  int threads_;
  std::vector<std::size_t> block_bounds_;      // [kBlocks+1] sequence ranges
  std::vector<double> empirical_;              // [owned] observed counts of this rank's range
  // One process: each block's expected counts go to its worker's compact buffer, holding only
  // the state features of the block's attributes, then transitions and edge features:
  // [block_states_[b] + F - transition_offset]. With a layout: a dense [F] per worker.
  std::vector<std::vector<double>> partial_;       // [workers][*] expected counts of one block
  std::vector<std::vector<int32_t>> block_attrs_;  // [B][*] the block's attributes, ascending
  std::vector<std::size_t> block_states_;          // [B] state features of those attributes
  std::vector<std::vector<uint32_t>> slot_;        // [workers][A] attribute -> buffer offset
  // Per worker: the features that fire in the current sequence and their gradient offsets
  // (the scratch of fill_listed and of the expected counts over its list).
  struct Listing {
    FiredFeatures fired;
    std::vector<uint32_t> targets;  // [fired.ids.size()] offsets in the block's buffer
  };
  std::vector<Listing> listings_;                  // [2 workers] (two sequences at a time)
  std::vector<MaskedRange> rows_;  // [A] masked rows of the state features, or empty
  std::vector<WideMaskedRange> wide_rows_;  // [A] the same for 32 < L <= 64, or empty
  std::vector<double> block_log_z_;            // [kBlocks] sum of weight * log Z
  std::vector<Lattice> lattices_;              // [2 workers] (two sequences at a time)
  uint64_t evaluations_ = 0;                   // evaluate() calls: the weights' key for fill
  // Distributed (a block-order reduce-scatter): rank q owns the features of range_;
  // every block sends each owner its touched gradient entries in that range (the features of
  // its attributes, all transitions; fixed by the data), each owner adds all blocks in global
  // block order for its range, and the ranges are allgathered.
  const BlockLayout* layout_ = nullptr;
  FeatureRanges ranges_;                           // this rank's features; w . empirical by chunks
  std::vector<std::size_t> range_;                 // [N+1] feature ranges of the ranks
  // [local blocks][*] feature ids, ascending (after exchange_touched: those of the entries
  // block_states_[b].., the transitions and edge features)
  std::vector<std::vector<uint32_t>> touched_;
  std::vector<std::vector<std::size_t>> cut_;      // [local blocks][N+1] touched_ split by range
  std::vector<std::size_t> in_place_;              // [local blocks] entries [0, P) at g[i]
  std::vector<std::vector<uint32_t>> owned_;       // [total blocks][*] touched ids in my range
  std::vector<std::string> send_;                  // [N] per owner: per local block log Z, values
  std::vector<std::string> recv_;                  // [N] from each rank (not this one): the same
  std::vector<std::vector<std::size_t>> send_at_;  // [N][local blocks] byte offsets in send_
  std::vector<std::size_t> rank_blocks_;           // [N+1] first owned_ entry of each rank
  std::vector<std::size_t> recv_tickets_;          // [total blocks] receive of each block's part
  std::vector<std::size_t> send_tickets_;          // this evaluation's sends, in start order
  std::vector<double> range_grad_;                 // [my range] folded gradient
  bool fold_own_ = false;  // rank 0: pack() folds its own blocks into range_grad_ directly
  std::size_t sent_bytes_ = 0;
  std::size_t received_bytes_ = 0;
};

}  // namespace septa::crf
