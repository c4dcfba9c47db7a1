#include "crf/scoring/linear_chain.h"

#include <algorithm>
#include <cmath>

#include "crf/lattice/fast_exp.h"
#include "septa/error.h"

namespace septa::crf {

/*
 * Log-potentials of a linear-chain CRF:
 *   state(t, j)    = sum_{a in x_t} v_a w[a, j]
 *   trans(t, i, j) = w[i, j] + sum_{b in e_t} w[b, (i, j)]          (t >= 1)
 * where x_t are the attributes of item t and e_t the attributes of the edge (t-1, t) that
 * observation-conditioned B templates expand (CRF++'s "B01:%x[0,0]"). Without edge features
 * trans is the same [L][L] matrix at every position.
 */
void LinearChainScorer::fill(const SequenceView& sequence, const double* w, Lattice& lattice,
                             uint64_t weights_key) const {
  const bool per_pos = per_position();
  lattice.reset(sequence.T, L_, per_pos);
  if (!per_pos) {
    lattice.set_shared_transitions(w + transition_offset(), weights_key);
  } else {
    const double* shared = w + transition_offset();
    const double* edge_w = w + edge_offset();
    for (std::size_t t = 1; t < sequence.T; ++t) {
      double* trans = lattice.transition(t);  // [L][L]
      std::copy(shared, shared + L_ * L_, trans);
      for (std::size_t e = sequence.edge_offsets[t]; e < sequence.edge_offsets[t + 1]; ++e)
        edges_.add_scores(sequence.edge_ids[e], 1.0, edge_w, trans);
    }
  }
  // Attribute entries in order, with the feature range of entry e + D and the offsets of entry
  // e + 2D prefetched (D = kPrefetchAhead): random ranges of a large model cost cache misses, which
  // then overlap instead of queueing. The sums keep their order.
  // Without values (all 1) the weights add as they are: w * 1.0 is w, the same bits.
  const std::size_t end = sequence.item_offsets[sequence.T];
  const int32_t* ids = sequence.attribute_ids;
  const float* values = sequence.attribute_values;
  if (!values && !classes8_.empty()) {
    const uint32_t* offsets = states_.offsets.data();
    const uint8_t* classes = classes8_.data();
    for (std::size_t t = 0; t < sequence.T; ++t) {
      double* scores = lattice.state(t);
      for (std::size_t e = sequence.item_offsets[t]; e < sequence.item_offsets[t + 1]; ++e) {
        if (e + 2 * kPrefetchAhead < end) __builtin_prefetch(offsets + ids[e + 2 * kPrefetchAhead]);
        if (e + kPrefetchAhead < end) {
          const uint32_t ahead = offsets[ids[e + kPrefetchAhead]];
          __builtin_prefetch(classes + ahead);
          __builtin_prefetch(w + ahead);
        }
        const uint32_t lo = offsets[ids[e]], hi = offsets[ids[e] + 1];
        for (uint32_t f = lo; f < hi; ++f) scores[classes[f]] += w[f];
      }
    }
    return;
  }
  for (std::size_t t = 0; t < sequence.T; ++t) {
    double* scores = lattice.state(t);
    for (std::size_t e = sequence.item_offsets[t]; e < sequence.item_offsets[t + 1]; ++e) {
      if (e + 2 * kPrefetchAhead < end) states_.prefetch_offsets(ids[e + 2 * kPrefetchAhead]);
      if (e + kPrefetchAhead < end) states_.prefetch_range(ids[e + kPrefetchAhead], w);
      if (values) states_.add_scores(ids[e], values[e], w, scores);
      else states_.add_weights(ids[e], w, scores);
    }
  }
}

/*
 * fill() without values, in two passes: the rows of the attribute entries are listed as feature
 * ids item by item (whole blocks of 8 written past each row's end, write_consecutive), their
 * classes and weights prefetched; then each item's listed features add their weights,
 *   state(t, classes[f]) += w[f]   for f in the list of item t, in order,
 * the additions of fill() in the same order. The listing replaces fill's loop over each row,
 * whose exit (rows of 1 to L features) was mispredicted about once per entry.
 */
SEPTA_VECTOR_CLONES void LinearChainScorer::fill_listed(const SequenceView& sequence,
                                                        const double* w, Lattice& lattice,
                                                        uint64_t weights_key,
                                                        FiredFeatures& fired) const {
  SEPTA_CHECK(listed() && !sequence.attribute_values);
  lattice.reset(sequence.T, L_, false);
  lattice.set_shared_transitions(w + transition_offset(), weights_key);
  const std::size_t T = sequence.T, blocks = (L_ + 7) / 8;
  const std::size_t first = sequence.item_offsets[0], end = sequence.item_offsets[T];
  const uint32_t* offsets = states_.offsets.data();
  const uint8_t* classes = classes8_.data();
  const int32_t* ids = sequence.attribute_ids;
  fired.starts.resize(T + 1);
  if (fired.lengths.size() < end - first) fired.lengths.resize(end - first);
  uint16_t* lengths = fired.lengths.data();
  uint32_t n = 0;
  for (std::size_t t = 0; t < T; ++t) {
    fired.starts[t] = n;
    const std::size_t room =
        n + (sequence.item_offsets[t + 1] - sequence.item_offsets[t]) * L_ + 8 * blocks;
    if (fired.ids.size() < room) fired.ids.resize(2 * room);
    uint32_t* out = fired.ids.data();
    for (std::size_t e = sequence.item_offsets[t]; e < sequence.item_offsets[t + 1]; ++e) {
      if (e + kPrefetchAhead < end) __builtin_prefetch(offsets + ids[e + kPrefetchAhead]);
      const uint32_t lo = offsets[ids[e]], length = offsets[ids[e] + 1] - lo;
      __builtin_prefetch(classes + lo);
      __builtin_prefetch(w + lo);
      __builtin_prefetch(w + lo + length - (length > 0));  // a row of 8 mostly spans two lines
      lengths[e - first] = static_cast<uint16_t>(length);
      write_consecutive(out + n, lo, blocks);
      n += length;
    }
  }
  fired.starts[T] = n;
  if (fired.classes.size() < n) fired.classes.resize(fired.ids.size());
  const uint32_t* listed_ids = fired.ids.data();
  uint8_t* listed_classes = fired.classes.data();
  for (std::size_t t = 0; t < T; ++t) {
    double* scores = lattice.state(t);
    for (uint32_t i = fired.starts[t], stop = fired.starts[t + 1]; i < stop; ++i) {
      const uint32_t f = listed_ids[i];
      const uint8_t c = classes[f];
      listed_classes[i] = c;
      scores[c] += w[f];
    }
  }
}

std::vector<MaskedRange> LinearChainScorer::masked_rows() const {
  std::vector<MaskedRange> rows;
  if (per_position() || L_ == 0 || L_ > 32 || !have_avx512()) return rows;
  const std::vector<uint32_t> masks = attribute_masks(states_, L_, states_.A);
  if (masks.empty()) return rows;
  rows.resize(states_.A);
  for (std::size_t a = 0; a < states_.A; ++a) rows[a] = MaskedRange{states_.offsets[a], masks[a]};
  return rows;
}

std::vector<WideMaskedRange> LinearChainScorer::wide_masked_rows() const {
  std::vector<WideMaskedRange> rows;
  if (per_position() || L_ <= 32 || L_ > 64 || !have_avx512()) return rows;
  const std::vector<uint64_t> masks = wide_attribute_masks(states_, L_, states_.A);
  if (masks.empty()) return rows;
  rows.resize(states_.A);
  for (std::size_t a = 0; a < states_.A; ++a)
    rows[a] = WideMaskedRange{states_.offsets[a], static_cast<uint32_t>(masks[a]),
                              static_cast<uint32_t>(masks[a] >> 32)};
  return rows;
}

#ifdef SEPTA_MASKED_ROWS
namespace {

/*
 * fill()'s state scores with the L <= 8C labels of an item in C registers: each attribute
 * entry in order adds its row's weights to the lanes of their classes (add_row_to_lanes), so
 * every label gets fill()'s additions in fill()'s order, from +0 (reset), without a loop over
 * the row or a read of its classes. Rows and weights prefetched as in fill().
 */
template <int C, typename Row>
SEPTA_AVX512 void masked_state_scores(const SequenceView& sequence, const double* w,
                                      const Row* rows, std::size_t L, Lattice& lattice) {
  const std::size_t end = sequence.item_offsets[sequence.T], D = kPrefetchAhead;
  const int32_t* ids = sequence.attribute_ids;
  for (std::size_t t = 0; t < sequence.T; ++t) {
    __m512d acc[C];
    for (int j = 0; j < C; ++j) acc[j] = _mm512_setzero_pd();
    for (std::size_t e = sequence.item_offsets[t]; e < sequence.item_offsets[t + 1]; ++e) {
      if (e + 2 * D < end) __builtin_prefetch(rows + ids[e + 2 * D]);
      if (e + D < end) __builtin_prefetch(w + rows[ids[e + D]].first);
      const Row row = rows[ids[e]];
      add_row_to_lanes<C>(acc, row_mask(row), w + row.first);
    }
    double* scores = lattice.state(t);
    for (int j = 0; j < C; ++j) _mm512_mask_storeu_pd(scores + 8 * j, class_lanes(L, j), acc[j]);
  }
}

}  // namespace
#endif

namespace {

// fill_masked with rows of C in [Lo, Hi] registers of labels; trans: the shared transitions.
template <int Lo, int Hi, typename Row>
void fill_masked_rows(const SequenceView& sequence, const double* w, const double* trans,
                      uint64_t weights_key, std::size_t L, const Row* rows, Lattice& lattice) {
  lattice.reset(sequence.T, L, false);
  lattice.set_shared_transitions(trans, weights_key);
#ifdef SEPTA_MASKED_ROWS
  with_registers<Lo, Hi>(
      L, [&](auto C) { masked_state_scores<C>(sequence, w, rows, L, lattice); });
#else
  (void)w, (void)rows;
  throw InternalError("fill_masked without AVX-512 kernels");
#endif
}

}  // namespace

void LinearChainScorer::fill_masked(const SequenceView& sequence, const double* w,
                                    const MaskedRange* rows, Lattice& lattice,
                                    uint64_t weights_key) const {
  SEPTA_CHECK(!per_position() && L_ <= 32 && !sequence.attribute_values);
  fill_masked_rows<1, 4>(sequence, w, w + transition_offset(), weights_key, L_, rows, lattice);
}

void LinearChainScorer::fill_masked(const SequenceView& sequence, const double* w,
                                    const WideMaskedRange* rows, Lattice& lattice,
                                    uint64_t weights_key) const {
  SEPTA_CHECK(!per_position() && L_ > 32 && L_ <= 64 && !sequence.attribute_values);
  fill_masked_rows<5, 8>(sequence, w, w + transition_offset(), weights_key, L_, rows, lattice);
}

void LinearChainScorer::narrow_classes() {
  classes8_.clear();
  if (L_ > 256) return;
  classes8_.assign(states_.classes.begin(), states_.classes.end());
}

// Formats 3 and 4: L, states, weights. Format 5 (conditioned transitions): L, states, edges,
// weights.
void LinearChainScorer::write(ByteWriter& out) const {
  out.u64(L_);
  states_.write(out);
  if (conditioned_) edges_.write(out);
  out.vec(weights_);
}

std::unique_ptr<LinearChainScorer> LinearChainScorer::read(ByteReader& in) {
  auto scorer = std::make_unique<LinearChainScorer>();
  scorer->L_ = in.dimension();
  scorer->states_ = SparseFeatures::read(in);
  if (in.version() >= 5) {
    scorer->conditioned_ = true;
    scorer->edges_ = SparseFeatures::read(in);
    if (scorer->edges_.K != scorer->L_ * scorer->L_)
      in.fail("edge features do not match the label count");
  }
  scorer->weights_ = in.finite_doubles();
  scorer->narrow_classes();
  if (scorer->states_.K != scorer->L_ ||
      scorer->weights_.size() !=
          scorer->states_.size() + scorer->L_ * scorer->L_ + scorer->edges_.size())
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

std::vector<ConditionedTransition> LinearChainScorer::conditioned_transition_features(
    const Encoder& encoder) const {
  std::vector<ConditionedTransition> out;
  out.reserve(edges_.size());
  for (std::size_t a = 0; a < edges_.A; ++a)
    for (uint32_t f = edges_.offsets[a]; f < edges_.offsets[a + 1]; ++f) {
      const auto pair = static_cast<std::size_t>(edges_.classes[f]);
      out.push_back({encoder.attributes().name(static_cast<int32_t>(a)),
                     encoder.labels().name(static_cast<int32_t>(pair / L_)),
                     encoder.labels().name(static_cast<int32_t>(pair % L_)),
                     weights_[edge_offset() + f]});
    }
  return out;
}

void LinearChainScorer::dump(std::ostream& out, const Encoder& encoder, std::size_t top) const {
  out << "TRANSITIONS (previous -> current)\n";
  dump_features(out, transition_features(encoder), /*skip_zero=*/true);
  if (conditioned_) {
    std::vector<WeightedFeature> edges;
    for (const ConditionedTransition& c : conditioned_transition_features(encoder))
      edges.push_back({c.attribute, c.from + " -> " + c.to, c.weight});
    out << "CONDITIONED TRANSITIONS (top " << top << " by |weight| of " << edges_.size()
        << "; edge attribute -> previous -> current)\n";
    dump_top_features(out, std::move(edges), top);
  }
  out << "STATE FEATURES (top " << top << " by |weight| of " << states_.size() << ")\n";
  dump_top_features(out, state_features(encoder), top);
}

}  // namespace septa::crf
