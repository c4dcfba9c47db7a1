#include "crf/scoring/memm_scorer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "crf/lattice/fast_exp.h"

namespace septa::crf {

MemmScorer::MemmScorer(std::size_t A, std::size_t L, SparseFeatures states,
                       std::vector<char> successors, double floor)
    : A_(A), L_(L), floor_(floor), states_(std::move(states)), successors_(std::move(successors)),
      weights_(states_.size() + (L + 1) * L, 0.0) {}

/*
 * The state scores s_t(j) do not depend on the context row, so they are summed once per item.
 * Row i's log-normaliser factors through one exponential per label and item:
 *   log P(j | i, x_t) = s_t(j) + W[i][j] - log Z_i,
 *   Z_i = sum_{j in succ(i)} exp(s_t(j) + W[i][j])
 *       = exp(m_t + M_i) sum_j e_t(j) E[i][j],  e_t(j) = exp(s_t(j) - m_t),
 *                                               E[i][j] = exp(W[i][j] - M_i) (0 off succ(i)),
 * with m_t = max_j s_t(j) and M_i = max_{j in succ(i)} W[i][j]. E is computed once per sequence
 * ((L+1) L exponentials), so an item costs L exponentials, L^2 multiply-adds and L logarithms
 * instead of L^2 exponentials. Every cell is floored at log(floor). A row whose sum underflows
 * (s_t and W[i] pulling 700 nats apart) is normalised directly, with its own maximum.
 */
void MemmScorer::potentials(const SequenceView& sequence, Lattice& lattice) const {
  const std::size_t T = sequence.T, L = L_, F = states_.size();
  lattice.reset(T, L, /*per_position_transitions=*/true);
  const SoftmaxModelShape sparse_only{&states_, A_, L_, 0, nullptr, nullptr};
  const ItemArrays items = ItemArrays::of(sequence);
  // Per-thread scratch: [L] s_t, [L] e_t, [L] a row's scores, [(L+1) L] E, [L+1] M_i (-inf: a
  // row without successors).
  thread_local std::vector<double> state, e, z, table, row_max;
  state.resize(L);
  e.resize(L);
  z.resize(L);
  table.resize((L + 1) * L);
  row_max.resize(L + 1);
  const double log_floor = std::log(floor_);
  const double minus_inf = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i <= L; ++i) {
    const double* dense = weights_.data() + F + i * L;
    const char* allowed = &successors_[i * L];
    double m = minus_inf;
    for (std::size_t j = 0; j < L; ++j)
      if (allowed[j]) m = std::max(m, dense[j]);
    row_max[i] = m;
    double* E = &table[i * L];
    for (std::size_t j = 0; j < L; ++j) E[j] = allowed[j] ? fast_exp(dense[j] - m) : 0.0;
  }
  for (std::size_t t = 0; t < T; ++t) {
    LocalInstance instance;
    instance.item = t;
    softmax_raw_scores(sparse_only, items, instance, weights_.data(), 1.0, state.data());
    const double m = *std::max_element(state.begin(), state.end());
    for (std::size_t j = 0; j < L; ++j) e[j] = fast_exp(state[j] - m);
    const std::size_t rows = t == 0 ? 1 : L;
    for (std::size_t row = 0; row < rows; ++row) {
      const std::size_t context = t == 0 ? L : row;
      const double* dense = weights_.data() + F + context * L;
      const char* allowed = &successors_[context * L];
      double* out = t == 0 ? lattice.state(0) : lattice.transition(t) + row * L;
      if (row_max[context] == minus_inf) {  // a row without successors: every cell at the floor
        std::fill(out, out + L, log_floor);
        continue;
      }
      const double* E = &table[context * L];
      double sum = 0.0;
      for (std::size_t j = 0; j < L; ++j) sum += e[j] * E[j];
      double shift;
      if (sum > 1e-250) {
        shift = m + row_max[context] + std::log(sum);
      } else {
        for (std::size_t j = 0; j < L; ++j) z[j] = allowed[j] ? state[j] + dense[j] : minus_inf;
        shift = softmax_normalize(z.data(), L);
      }
      for (std::size_t j = 0; j < L; ++j)
        out[j] = allowed[j] ? std::max(state[j] + dense[j] - shift, log_floor) : log_floor;
    }
  }
}

void MemmScorer::write(ByteWriter& out) const {
  out.u64(A_);
  out.u64(L_);
  out.f64(floor_);
  states_.write(out);
  out.vec(successors_);
  out.vec(weights_);
}

std::unique_ptr<MemmScorer> MemmScorer::read(ByteReader& in) {
  auto s = std::make_unique<MemmScorer>();
  s->A_ = in.dimension();
  s->L_ = in.dimension();
  s->floor_ = in.f64();
  s->states_ = SparseFeatures::read(in);
  s->successors_ = in.vec<char>();
  s->weights_ = in.finite_doubles();
  if (s->states_.A != s->A_ || s->states_.K != s->L_ ||
      s->successors_.size() != (s->L_ + 1) * s->L_ ||
      s->weights_.size() != s->states_.size() + (s->L_ + 1) * s->L_ || !(s->floor_ > 0.0 && s->floor_ < 1.0))
    in.fail("MEMM weights do not match their sizes");
  return s;
}

std::vector<WeightedFeature> MemmScorer::state_features(const Encoder& encoder) const {
  return list_features(states_, weights_.data(), encoder, encoder.labels().names());
}

std::vector<WeightedFeature> MemmScorer::transition_features(const Encoder& encoder) const {
  std::vector<WeightedFeature> out;
  for (std::size_t i = 0; i <= L_; ++i)
    for (std::size_t j = 0; j < L_; ++j)
      if (successors_[i * L_ + j])
        out.push_back({i == L_ ? std::string("<START>") : encoder.labels().name(static_cast<int32_t>(i)),
                       encoder.labels().name(static_cast<int32_t>(j)),
                       weights_[states_.size() + i * L_ + j]});
  return out;
}

void MemmScorer::dump(std::ostream& out, const Encoder& encoder, std::size_t top) const {
  out << "TRANSITIONS (previous -> current; only successors seen in training)\n";
  dump_features(out, transition_features(encoder));
  out << "STATE FEATURES (top " << top << " by |weight| of " << states_.size() << ")\n";
  dump_top_features(out, state_features(encoder), top);
}

}  // namespace septa::crf
