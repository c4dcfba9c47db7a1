// Tied pair features of -a separate: the attributes of item t+1 whose pair features are the same
// functions of the edge (t, t+1) as those of an attribute of item t, trained as one weight each.
#pragma once

#include <cstdint>
#include <vector>

#include "crf/features/dataset.h"
#include "crf/features/sparse_features.h"
#include "septa/communicator.h"
#include "septa/crf/feature_template.h"

namespace septa::crf {

/*
 * A template u at item t+1 often reads what another template v reads at item t: with the
 * default chunking template 14 of the 19 ("U00:%x[-2,0]" at t+1 is "U01:%x[-1,0]" at t). The
 * pairwise factor's features of attribute A + b (b of template u, at t+1) are then the same
 * indicator functions of the edge as those of attribute p (of template v, at t): in SGD the
 * two weights get the same gradient at every step and the same decay and mix, so they stay
 * equal, w_b = w_p, and the pair score holds 2 w_p. Trained tied, one weight u_p scored twice
 * (once through p, once through b: SoftmaxModelShape::tied) and stepped once with the gradient
 * one of them gets, u_p follows w_p exactly in exact arithmetic: the same model, written with
 * w_b = w_p = u_p, only rounded differently (the sums are added in another order). It trains
 * the pairwise factor with fewer distinct weights (CoNLL-2000: 1.16 M -> 0.80 M; weights a
 * round updates 283 k -> 182 k).
 *
 * b is tied to p where the template proves the features equal: u at t+1 reads what v reads
 * at t (FeatureTemplate::unigram_shift_partners), every template's strings are its own (its id
 * ends with its only ':', no two ids alike), and every item has one attribute per template in
 * template order; p is then b's partner on every edge, and the two ranges hold the same
 * classes (checked). Over ranks with spread data (`spread`) the partners are gathered over all
 * ranks' edges (allreduce), so every rank and one process tie the same attributes.
 */
struct PairTies {
  std::vector<int32_t> tied;  // [2A] tied[A + b] = p, -1 elsewhere (SoftmaxModelShape::tied)
  std::size_t count = 0;      // tied attributes
};

// The ties of the pair features `pairs` (over 2A attributes) of `data` read through `templ`;
// none (count 0) unless every item has one attribute per unigram template in template order.
// On `threads` threads (the same ties for any count).
PairTies find_pair_ties(const Dataset& data, const FeatureTemplate& templ, std::size_t A,
                        const SparseFeatures& pairs, Communicator* spread, int threads);

// `pairs` without the ranges of the tied attributes (their features are their partners'), on
// `threads` threads.
SparseFeatures without_tied(const SparseFeatures& pairs, const std::vector<int32_t>& tied,
                            int threads = 1);

// The weights of `pairs` from those trained over without_tied(pairs) (its F features, then
// any dense tail): a tied attribute's features get the weights of its partner's.
std::vector<double> untied_weights(const SparseFeatures& pairs, const SparseFeatures& trained,
                                   const std::vector<int32_t>& tied, const std::vector<double>& w,
                                   int threads = 1);

}  // namespace septa::crf
