#include "crf/scoring/linear_chain.h"

#include <algorithm>
#include <cmath>

namespace septa::crf {

void LinearChainScorer::fill(const SequenceView& sequence, const double* w,
                             Lattice& lattice) const {
  lattice.reset(sequence.T, L_, /*per_position_transitions=*/false);
  lattice.set_shared_transitions(w + transition_offset());
  for (std::size_t t = 0; t < sequence.T; ++t) {
    double* scores = lattice.state(t);
    for (std::size_t e = sequence.item_offsets[t]; e < sequence.item_offsets[t + 1]; ++e)
      states_.add_scores(sequence.attribute_ids[e], sequence.attribute_values[e], w, scores);
  }
}

void LinearChainScorer::write(ByteWriter& out) const {
  out.u64(L_);
  states_.write(out);
  out.vec(weights_);
}

std::unique_ptr<LinearChainScorer> LinearChainScorer::read(ByteReader& in) {
  auto scorer = std::make_unique<LinearChainScorer>();
  scorer->L_ = in.dimension();
  scorer->states_ = SparseFeatures::read(in);
  scorer->weights_ = in.finite_doubles();
  if (scorer->states_.K != scorer->L_ ||
      scorer->weights_.size() != scorer->states_.size() + scorer->L_ * scorer->L_)
    in.fail("weight vector does not match the feature index");
  return scorer;
}

std::vector<WeightedFeature> LinearChainScorer::state_features(const Encoder& encoder) const {
  return list_features(states_, weights_.data(), encoder, encoder.labels().names());
}

std::vector<WeightedFeature> LinearChainScorer::transition_features(const Encoder& encoder) const {
  std::vector<WeightedFeature> out;
  for (std::size_t i = 0; i < L_; ++i)
    for (std::size_t j = 0; j < L_; ++j)
      out.push_back({encoder.labels().name(static_cast<int32_t>(i)),
                     encoder.labels().name(static_cast<int32_t>(j)),
                     weights_[transition_offset() + i * L_ + j]});
  return out;
}

void LinearChainScorer::dump(std::ostream& out, const Encoder& encoder, std::size_t top) const {
  out << "TRANSITIONS (previous -> current)\n";
  dump_features(out, transition_features(encoder), /*skip_zero=*/true);
  out << "STATE FEATURES (top " << top << " by |weight| of " << states_.size() << ")\n";
  dump_top_features(out, state_features(encoder), top);
}

}  // namespace septa::crf
