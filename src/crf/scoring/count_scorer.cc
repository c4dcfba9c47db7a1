#include "crf/scoring/count_scorer.h"

#include <algorithm>
#include <cmath>

namespace septa::crf {

CountScorer::CountScorer(std::size_t A, std::size_t L, SparseFeatures unary,
                         std::vector<double> unary_log_ratio, std::vector<double> label_log_prior,
                         SparseFeatures pairwise, std::vector<double> pair_log_ratio,
                         std::vector<double> pair_log_prior, std::vector<int32_t> pair_first,
                         std::vector<int32_t> pair_second, double floor)
    : FactorScorer(A, L, std::move(pair_first), std::move(pair_second), floor),
      unary_ratio_(std::move(unary_log_ratio)), label_prior_(std::move(label_log_prior)),
      pair_ratio_(std::move(pair_log_ratio)), pair_prior_(std::move(pair_log_prior)) {
  unary_ = std::move(unary);
  pairwise_ = std::move(pairwise);
}

void CountScorer::expert_scores(const SequenceView& sequence, std::size_t t, int span,
                                const SparseFeatures& features, const std::vector<double>& ratio,
                                const std::vector<double>& log_prior, double* scores) const {
  const std::size_t K = log_prior.size();
  std::fill(scores, scores + K, 0.0);
  std::size_t experts = 0;
  for (int k = 0; k < span; ++k)
    for (std::size_t e = sequence.item_offsets[t + k]; e < sequence.item_offsets[t + k + 1]; ++e) {
      features.add_scores(sequence.attribute_ids[e] + static_cast<int32_t>(k * A_), 1.0,
                          ratio.data(), scores);
      ++experts;
    }
  const double inv = experts > 0 ? 1.0 / static_cast<double>(experts) : 0.0;
  for (std::size_t c = 0; c < K; ++c) scores[c] = log_prior[c] + inv * scores[c];
}

void CountScorer::unary_probabilities(const SequenceView& sequence, double* out) const {
  for (std::size_t t = 0; t < sequence.T; ++t) {
    double* p = out + t * L_;
    expert_scores(sequence, t, 1, unary_, unary_ratio_, label_prior_, p);
    softmax_normalize(p, L_);
  }
}

void CountScorer::pair_probabilities(const SequenceView& sequence, const double*, std::size_t t,
                                     std::vector<uint32_t>& cells,
                                     std::vector<double>& probabilities) const {
  const std::size_t K = pair_prior_.size();
  thread_local std::vector<double> scores;  // [K]
  scores.resize(K);
  expert_scores(sequence, t, 2, pairwise_, pair_ratio_, pair_prior_, scores.data());
  softmax_normalize(scores.data(), K);
  for (std::size_t k = 0; k < K; ++k) {
    cells.push_back(static_cast<uint32_t>(pair_first_[k] * L_ + pair_second_[k]));
    probabilities.push_back(scores[k]);
  }
}

void CountScorer::write(ByteWriter& out) const {
  out.u64(A_);
  out.u64(L_);
  out.f64(floor_);
  unary_.write(out);
  out.vec(unary_ratio_);
  out.vec(label_prior_);
  pairwise_.write(out);
  out.vec(pair_ratio_);
  out.vec(pair_prior_);
  out.vec(pair_first_);
  out.vec(pair_second_);
}

std::unique_ptr<CountScorer> CountScorer::read(ByteReader& in) {
  auto s = std::make_unique<CountScorer>();
  s->A_ = in.dimension();
  s->L_ = in.dimension();
  s->floor_ = in.f64();
  s->unary_ = SparseFeatures::read(in);
  s->unary_ratio_ = in.finite_doubles();
  s->label_prior_ = in.finite_doubles();
  s->pairwise_ = SparseFeatures::read(in);
  s->pair_ratio_ = in.finite_doubles();
  s->pair_prior_ = in.finite_doubles();
  s->pair_first_ = in.vec<int32_t>();
  s->pair_second_ = in.vec<int32_t>();
  const std::size_t K = s->pair_prior_.size();
  if (s->unary_.A != s->A_ || s->unary_.K != s->L_ || s->unary_ratio_.size() != s->unary_.size() ||
      s->label_prior_.size() != s->L_ || s->pairwise_.A != 2 * s->A_ || s->pairwise_.K != K ||
      s->pair_ratio_.size() != s->pairwise_.size() || s->pair_first_.size() != K ||
      s->pair_second_.size() != K || !(s->floor_ > 0.0 && s->floor_ < 1.0))
    in.fail("count factors do not match their sizes");
  check_label_pairs(s->pair_first_, s->pair_second_, s->L_, in);
  return s;
}

std::vector<WeightedFeature> CountScorer::state_features(const Encoder& encoder) const {
  return list_features(unary_, unary_ratio_.data(), encoder, encoder.labels().names());
}

std::vector<WeightedFeature> CountScorer::transition_features(const Encoder& encoder) const {
  std::vector<WeightedFeature> out;
  for (std::size_t k = 0; k < pair_prior_.size(); ++k)
    out.push_back({encoder.labels().name(pair_first_[k]), encoder.labels().name(pair_second_[k]),
                   pair_prior_[k]});
  return out;
}

void CountScorer::dump(std::ostream& out, const Encoder& encoder, std::size_t top) const {
  out << "COUNT FACTORS unary " << unary_.size() << " seen (attribute, label), pairwise "
      << pairwise_.size() << " seen (attribute, pair) over " << pair_prior_.size()
      << " label pairs; beta " << kBeta << ", floor " << floor_ << "\n";
  out << "PAIR LOG PRIORS (previous -> current)\n";
  dump_features(out, transition_features(encoder));
  out << "UNARY LOG RATIOS (top " << top << ")\n";
  dump_top_features(out, state_features(encoder), top);
}

}  // namespace septa::crf
