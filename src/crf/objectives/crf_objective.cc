#include "crf/objectives/crf_objective.h"

#include <algorithm>
#include <cstring>

#include "crf/io/binary_io.h"
#include "crf/lattice/fast_exp.h"

#include "crf/optim/feature_ranges.h"
#include "crf/parallel/ordered_parallel.h"
#include "septa/error.h"

namespace septa::crf {

/*
 * The conditional log-likelihood of a linear-chain CRF (Lafferty, McCallum & Pereira 2001;
 * Sutton & McCallum 2012, "An Introduction to Conditional Random Fields", section 5.1), over
 * sequences n with weight c_n, features Phi(x, y) = sum_t phi(y_{t-1}, y_t, x, t):
 *   f(w)   = -sum_n c_n [ w . Phi(x_n, y_n) - log Z(x_n) ]
 *   g_k(w) = -sum_n c_n [ Phi_k(x_n, y_n) - E_{p(y|x_n)} Phi_k(x_n, y) ]
 *          = expected counts - empirical counts
 * The empirical counts (empirical_) are fixed and computed once here; the expected counts come
 * from the lattice's node marginals P(y_t = j | x) (state features) and edge marginals
 * P(y_{t-1} = i, y_t = j | x) (transitions) by forward-backward, per block of sequences.
 * An observation-conditioned transition feature (b, (i, j)) fires on every edge (t-1, t) whose
 * attributes e_t hold b, so its expected count is sum_t [b in e_t] P(y_{t-1}=i, y_t=j | x).
 */
CrfObjective::CrfObjective(const Dataset& data, const LinearChainScorer& structure, int threads,
                           const BlockLayout* layout, bool masked)
    : data_(data), structure_(structure), threads_(std::max(1, threads)), layout_(layout),
      ranges_(structure.feature_count(), layout ? layout->comm : nullptr) {
  if (masked) {
    rows_ = structure.masked_rows();
    if (rows_.empty()) wide_rows_ = structure.wide_masked_rows();
  }
  const std::size_t F = structure.feature_count();
  const std::size_t L = structure.labels();
  const SparseFeatures& states = structure.states();
  empirical_.assign(F, 0.0);
  for (std::size_t n = 0; n < data.size(); ++n) {
    const SequenceView s = data.sequence(n);
    for (std::size_t t = 0; t < s.T; ++t) {
      const int32_t y = s.labels[t];
      SEPTA_CHECK(y >= 0 && static_cast<std::size_t>(y) < L);
      for (std::size_t e = s.item_offsets[t]; e < s.item_offsets[t + 1]; ++e) {
        const int64_t f = states.find(s.attribute_ids[e], y);
        const double value = s.attribute_values ? s.attribute_values[e] : 1.0;  // null: 1
        if (f >= 0) empirical_[f] += s.weight * value;
      }
      if (t == 0) continue;
      const std::size_t pair = s.labels[t - 1] * L + y;
      empirical_[structure.transition_offset() + pair] += s.weight;
      for (std::size_t e = s.edge_offsets[t]; e < s.edge_offsets[t + 1]; ++e) {
        const int64_t f = structure.edges().find(s.edge_ids[e], static_cast<int32_t>(pair));
        if (f >= 0) empirical_[structure.edge_offset() + f] += s.weight;
      }
    }
  }
  block_bounds_ = layout ? layout->bounds : partition_by_items(data, kBlocks);
  const std::size_t B = block_bounds_.size() - 1;
  const std::size_t workers = std::max<std::size_t>(1, std::min<std::size_t>(threads_, B));
  lattices_.resize(2 * workers);
  {
    // Each block's attributes; a worker's buffer fits the largest block (a dense [F] per
    // worker cost 3.7 MB each on CoNLL-2000, 55 MB of peak memory at 16 threads).
    std::vector<uint32_t> stamp(states.offsets.size() - 1, UINT32_MAX);  // [A] last block with a
    block_attrs_.assign(B, {});
    block_states_.assign(B, 0);
    std::size_t largest = 0;
    for (std::size_t b = 0; b < B; ++b) {
      std::vector<int32_t>& attrs = block_attrs_[b];
      for (std::size_t n = block_bounds_[b]; n < block_bounds_[b + 1]; ++n) {
        const SequenceView s = data.sequence(n);
        for (std::size_t e = s.item_offsets[0]; e < s.item_offsets[s.T]; ++e) {
          const int32_t a = s.attribute_ids[e];
          if (stamp[a] == b) continue;
          stamp[a] = static_cast<uint32_t>(b);
          attrs.push_back(a);
          block_states_[b] += states.offsets[a + 1] - states.offsets[a];
        }
      }
      std::sort(attrs.begin(), attrs.end());
      attrs.shrink_to_fit();
      largest = std::max(largest, block_states_[b]);
    }
    partial_.assign(workers, std::vector<double>(largest + F - structure.transition_offset(), 0.0));
    slot_.assign(workers, std::vector<uint32_t>(states.offsets.size() - 1, 0));
    listings_.assign(2 * workers, Listing{});
  }
  block_log_z_.assign(B, 0.0);
  if (layout) {
    // The observed counts of column data are integers: summed over ranks exactly.
    std::vector<uint64_t> counts(F);
    for (std::size_t f = 0; f < F; ++f) {
      counts[f] = static_cast<uint64_t>(empirical_[f]);
      if (static_cast<double>(counts[f]) != empirical_[f])
        throw InternalError("distributed training needs integer feature counts");
    }
    layout->comm->allreduce(counts, Communicator::Op::kSum);
    // One rank (the command line's single process) owns every feature: its blocks commit
    // straight into the gradient, as without a layout (the same sums in the same block order).
    if (exchanges()) exchange_touched();  // sets the ranks' feature ranges
    // Each rank keeps the counts of its feature range only.
    std::vector<double>(ranges_.owned(), 0.0).swap(empirical_);  // frees the whole-F one
    for (std::size_t f = ranges_.lo(); f < ranges_.hi(); ++f)
      empirical_[f - ranges_.lo()] = static_cast<double>(counts[f]);
  }
}


namespace {

/*
 * The state features' expected counts of one sequence without values (every value 1, so
 * value * p is p, the same bits) and with byte classes: g[slots[a] + f - lo] += c P(y_t = k)
 * for every feature f = (a, k) of every attribute a of item t, c the sequence weight. The
 * entries' offsets are prefetched 2D ahead and their classes and gradient rows D ahead
 * (D = kPrefetchAhead), as in LinearChainScorer::fill.
 */
void add_unit_expectations(const SequenceView& s, const Lattice& lattice, const uint32_t* offsets,
                           const uint8_t* classes, const uint32_t* slots, double* g,
                           double* probs) {
  const std::size_t L = lattice.labels(), end = s.item_offsets[s.T], D = kPrefetchAhead;
  const int32_t* ids = s.attribute_ids;
  for (std::size_t t = 0; t < s.T; ++t) {
    for (std::size_t j = 0; j < L; ++j) probs[j] = s.weight * lattice.node_marginal(t, j);
    for (std::size_t e = s.item_offsets[t]; e < s.item_offsets[t + 1]; ++e) {
      if (e + 2 * D < end) {
        __builtin_prefetch(offsets + ids[e + 2 * D]);
        __builtin_prefetch(slots + ids[e + 2 * D]);
      }
      if (e + D < end) {
        const int32_t ahead = ids[e + D];
        __builtin_prefetch(classes + offsets[ahead]);
        __builtin_prefetch(g + slots[ahead]);
      }
      const int32_t a = ids[e];
      const uint32_t lo = offsets[a], hi = offsets[a + 1];
      double* out = g + slots[a] - lo;
      for (uint32_t f = lo; f < hi; ++f) out[f] += probs[classes[f]];
    }
  }
}

/*
 * add_unit_expectations over the features that fill_listed listed: the entries' gradient rows
 * are listed as targets in the same order (whole blocks of 8 past each row's end, as there),
 * their first lines prefetched, then g[targets[i]] += c P(y_t = classes[i]) for the listed
 * features of each item t in order: the same additions in the same order, without a loop
 * exit per row.
 */
SEPTA_VECTOR_CLONES void add_listed_expectations(const SequenceView& s, const Lattice& lattice,
                                                 const FiredFeatures& fired,
                                                 const uint32_t* slots, double* g,
                                                 std::vector<uint32_t>& targets,
                                                 double* probs) {
  const std::size_t L = lattice.labels(), blocks = (L + 7) / 8;
  const std::size_t first = s.item_offsets[0], end = s.item_offsets[s.T];
  const int32_t* ids = s.attribute_ids;
  if (targets.size() < fired.ids.size()) targets.resize(fired.ids.size());
  uint32_t* out = targets.data();
  uint32_t n = 0;
  for (std::size_t e = first; e < end; ++e) {
    if (e + kPrefetchAhead < end) __builtin_prefetch(slots + ids[e + kPrefetchAhead]);
    const uint32_t slot = slots[ids[e]], length = fired.lengths[e - first];
    __builtin_prefetch(g + slot);
    __builtin_prefetch(g + slot + length - (length > 0));
    write_consecutive(out + n, slot, blocks);
    n += length;
  }
  const uint8_t* classes = fired.classes.data();
  for (std::size_t t = 0; t < s.T; ++t) {
    for (std::size_t j = 0; j < L; ++j) probs[j] = s.weight * lattice.node_marginal(t, j);
    for (uint32_t i = fired.starts[t], stop = fired.starts[t + 1]; i < stop; ++i)
      g[out[i]] += probs[classes[i]];
  }
}

#ifdef SEPTA_MASKED_ROWS
/*
 * add_unit_expectations over masked rows, with the probabilities c P(y_t = k) of an item's
 * L <= 8C labels in C registers: each entry's row gets them in its features' order
 * (add_lanes_to_row), g[slots[a] + f - first] += c P(y_t = class of f), the same additions in
 * the same order, without a loop over the row or a read of its classes. Rows, slots and
 * gradient rows prefetched as there.
 */
template <int C, typename Row>
SEPTA_AVX512 void add_masked_expectations(const SequenceView& s, const Lattice& lattice,
                                          const Row* rows, const uint32_t* slots,
                                          double* g) {
  const std::size_t L = lattice.labels(), end = s.item_offsets[s.T], D = kPrefetchAhead;
  const int32_t* ids = s.attribute_ids;
  const __m512d weight = _mm512_set1_pd(s.weight);
  for (std::size_t t = 0; t < s.T; ++t) {
    __m512d probs[C];
    for (int j = 0; j < C; ++j)
      probs[j] = _mm512_mul_pd(weight, _mm512_maskz_loadu_pd(class_lanes(L, j),
                                                             lattice.node_marginals(t) + 8 * j));
    for (std::size_t e = s.item_offsets[t]; e < s.item_offsets[t + 1]; ++e) {
      if (e + 2 * D < end) {
        __builtin_prefetch(rows + ids[e + 2 * D]);
        __builtin_prefetch(slots + ids[e + 2 * D]);
      }
      if (e + D < end) __builtin_prefetch(g + slots[ids[e + D]]);
      const int32_t a = ids[e];
      add_lanes_to_row<C>(probs, row_mask(rows[a]), g + slots[a]);
    }
  }
}

void add_masked_expectations(const SequenceView& s, const Lattice& lattice,
                             const MaskedRange* rows, const uint32_t* slots, double* g) {
  with_registers<1, 4>(lattice.labels(), [&](auto C) {
    add_masked_expectations<C>(s, lattice, rows, slots, g);
  });
}

void add_masked_expectations(const SequenceView& s, const Lattice& lattice,
                             const WideMaskedRange* rows, const uint32_t* slots, double* g) {
  with_registers<5, 8>(lattice.labels(), [&](auto C) {
    add_masked_expectations<C>(s, lattice, rows, slots, g);
  });
}
#endif

}  // namespace

double CrfObjective::evaluate(const double* w, double* grad) { return evaluate(w, grad, true); }

std::size_t CrfObjective::owned_begin() const { return ranges_.lo(); }

std::size_t CrfObjective::owned_end() const { return ranges_.hi(); }

double CrfObjective::evaluate_owned(const double* w, double* grad) {
  return evaluate(w, grad, false);
}

double CrfObjective::evaluate(const double* w, double* grad, bool whole) {
  const std::size_t F = dimension();
  const std::size_t L = structure_.labels();
  const SparseFeatures& states = structure_.states();
  const SparseFeatures& edges = structure_.edges();
  const bool per_position = structure_.per_position();
  // With a layout and !whole, grad is this rank's range [owned_begin, owned_end) only.
  if (!exchanges()) std::fill(grad, grad + F, 0.0);
  double total_log_z = 0.0;
  // One w for every sequence of this evaluation: the lattices compare the transitions once.
  const uint64_t evaluation = ++evaluations_;
  // Expected counts of one block into g: the state features of attribute a at g + slot[a]
  // (slot_), transitions at trans_g, edge features at edge_g.
  auto work = [&](std::size_t block, std::size_t worker) {
    std::vector<double>& g = partial_[worker];
    uint32_t* slots = slot_[worker].data();
    uint32_t at = 0;
    for (const int32_t a : block_attrs_[block]) {
      slots[a] = at;
      at += states.offsets[a + 1] - states.offsets[a];
    }
    double* trans_g = &g[block_states_[block]];
    double* edge_g = trans_g + L * L;
    Lattice& lattice = lattices_[2 * worker];
    const uint8_t* classes8 =
        structure_.classes8().empty() ? nullptr : structure_.classes8().data();
    std::vector<double> probs(L);
    std::vector<double> pair_probs(per_position ? L * L : 0);  // [L][L] of one edge
    double log_z = 0.0;
    // Sequences without values go through the masked rows or the listed features (k: the
    // worker's lattice and listing 0 or 1); two that follow each other have their
    // forward-backward passes interleaved (Lattice::forward_backward_pair, each with its own
    // bits), then each one's counts are added in sequence order.
    const bool fast = masked() || structure_.listed();
    auto fill_fast = [&](const SequenceView& s, std::size_t k) {
      Lattice& lk = lattices_[2 * worker + k];
#ifdef SEPTA_MASKED_ROWS
      if (!rows_.empty())
        structure_.fill_masked(s, w, rows_.data(), lk, evaluation);
      else if (!wide_rows_.empty())
        structure_.fill_masked(s, w, wide_rows_.data(), lk, evaluation);
      else
#endif
        structure_.fill_listed(s, w, lk, evaluation, listings_[2 * worker + k].fired);
    };
    auto add_fast = [&](const SequenceView& s, std::size_t k) {
      Lattice& lk = lattices_[2 * worker + k];
      Listing& listing = listings_[2 * worker + k];
#ifdef SEPTA_MASKED_ROWS
      if (!rows_.empty())
        add_masked_expectations(s, lk, rows_.data(), slots, g.data());
      else if (!wide_rows_.empty())
        add_masked_expectations(s, lk, wide_rows_.data(), slots, g.data());
      else
#endif
        add_listed_expectations(s, lk, listing.fired, slots, g.data(), listing.targets,
                                probs.data());
      lk.add_edge_marginal_sums(s.weight, trans_g);
    };
    const std::size_t last = block_bounds_[block + 1];
    for (std::size_t n = block_bounds_[block]; n < last; ++n) {
      const SequenceView s = data_.sequence(n);
      if (!s.attribute_values && fast) {
        fill_fast(s, 0);
        if (n + 1 == last || data_.sequence(n + 1).attribute_values) {
          log_z += s.weight * lattice.forward_backward();
          add_fast(s, 0);
          continue;
        }
        const SequenceView next = data_.sequence(n + 1);
        fill_fast(next, 1);
        const std::pair<double, double> z =
            Lattice::forward_backward_pair(lattice, lattices_[2 * worker + 1]);
        log_z += s.weight * z.first;
        add_fast(s, 0);
        log_z += next.weight * z.second;
        add_fast(next, 1);
        ++n;
        continue;
      }
      structure_.fill(s, w, lattice, evaluation);
      log_z += s.weight * lattice.forward_backward();
      // The gradient entries of random attributes, prefetched a few entries ahead as in
      // LinearChainScorer::fill.
      const std::size_t end = s.item_offsets[s.T];
      if (!s.attribute_values && classes8) {
        add_unit_expectations(s, lattice, states.offsets.data(), classes8, slots, g.data(),
                              probs.data());
      } else for (std::size_t t = 0; t < s.T; ++t) {
        for (std::size_t j = 0; j < L; ++j) probs[j] = s.weight * lattice.node_marginal(t, j);
        for (std::size_t e = s.item_offsets[t]; e < s.item_offsets[t + 1]; ++e) {
          const std::size_t D = kPrefetchAhead;
          if (e + 2 * D < end) {
            states.prefetch_offsets(s.attribute_ids[e + 2 * D]);
            __builtin_prefetch(&slots[s.attribute_ids[e + 2 * D]]);
          }
          if (e + D < end) {
            const int32_t ahead = s.attribute_ids[e + D];
            if (classes8) __builtin_prefetch(classes8 + states.offsets[ahead]);
            else __builtin_prefetch(states.classes.data() + states.offsets[ahead]);
            __builtin_prefetch(g.data() + slots[ahead]);
          }
          const int32_t a = s.attribute_ids[e];
          const uint32_t lo = states.offsets[a], hi = states.offsets[a + 1];
          double* out = g.data() + slots[a];
          // Without values (all 1): 1.0 * p is p, the same bits.
          if (!s.attribute_values) {
            for (uint32_t f = lo; f < hi; ++f) out[f - lo] += probs[states.classes[f]];
            continue;
          }
          const double value = s.attribute_values[e];
          for (uint32_t f = lo; f < hi; ++f) out[f - lo] += value * probs[states.classes[f]];
        }
      }
      if (!per_position) {
        lattice.add_edge_marginal_sums(s.weight, trans_g);
        continue;
      }
      for (std::size_t t = 1; t < s.T; ++t) {
        std::fill(pair_probs.begin(), pair_probs.end(), 0.0);
        lattice.add_edge_marginals(t, s.weight, pair_probs.data());
        for (std::size_t q = 0; q < L * L; ++q) trans_g[q] += pair_probs[q];
        for (std::size_t e = s.edge_offsets[t]; e < s.edge_offsets[t + 1]; ++e)
          edges.add_expectations(s.edge_ids[e], 1.0, pair_probs.data(), edge_g);
      }
    }
    block_log_z_[block] = log_z;
  };
  // grad += the block's counts, feature by feature (an entry the block does not touch is +0.0,
  // and grad, summed from +0.0, is never -0.0: skipping it keeps every bit of the dense sum).
  auto commit = [&](std::size_t block, std::size_t worker) {
    std::vector<double>& g = partial_[worker];
    std::size_t at = 0;
    // The rows of attributes that follow each other in the features go as one run (the
    // frequent attributes, in every block, have the lowest ids): one loop exit per run.
    auto add_run = [&](uint32_t lo, uint32_t hi) {
      double* __restrict out = grad + lo;
      double* __restrict in = &g[at];
      const uint32_t n = hi - lo;
      for (uint32_t k = 0; k < n; ++k) {
        out[k] += in[k];
        in[k] = 0.0;
      }
      at += n;
    };
    uint32_t run_lo = 0, run_hi = 0;
    for (const int32_t a : block_attrs_[block]) {
      const uint32_t lo = states.offsets[a], hi = states.offsets[a + 1];
      if (lo == run_hi) {
        run_hi = hi;
        continue;
      }
      add_run(run_lo, run_hi);
      run_lo = lo;
      run_hi = hi;
    }
    add_run(run_lo, run_hi);
    for (std::size_t f = structure_.transition_offset(); f < F; ++f, ++at) {
      grad[f] += g[at];
      g[at] = 0.0;
    }
    total_log_z += block_log_z_[block];
  };
  // Distributed: each local block's touched entries go to their owners' send buffers
  // (untouched entries are exactly zero, and adding +0.0 changes nothing).
  auto pack = [&](std::size_t block, std::size_t worker) {
    std::vector<double>& g = partial_[worker];
    const uint32_t* tail = touched_[block].data();  // ids of the entries S.. (exchange_touched)
    const std::size_t S = block_states_[block], offset = structure_.transition_offset();
    const std::size_t P = in_place_[block];  // entries [0, P) sit at their own index in g
    SEPTA_CHECK(cut_[block].back() == S + touched_[block].size());
    std::size_t q = 0;
    if (fold_own_) {
      // Rank 0: blocks 0.. come first in block order, so folding them here, in order, adds
      // the same floating-point sums as reduce_blocks would (range_grad_ zeroed per evaluation).
      const std::vector<uint32_t>& ids = owned_[block];
      const std::size_t lo = range_[0];
      SEPTA_CHECK(cut_[block][0] == 0 && ids.size() == cut_[block][1]);
      total_log_z += block_log_z_[block];
      const std::size_t end = cut_[block][1], lead = std::min(end, P);
      double* __restrict out = range_grad_.data();
      for (std::size_t i = 0; i < lead; ++i) out[ids[i] - lo] += g[i];
      std::fill(g.begin(), g.begin() + static_cast<std::ptrdiff_t>(lead), 0.0);
      for (std::size_t i = lead; i < end; ++i) {
        const std::size_t at = S + tail[i - S] - offset;
        out[ids[i] - lo] += g[at];
        g[at] = 0.0;
      }
      q = 1;
    }
    for (; q + 1 < cut_[block].size(); ++q) {
      char* p = &send_[q][send_at_[q][block]];
      std::memcpy(p, &block_log_z_[block], sizeof(double));
      p += sizeof(double);
      // The block's entries below P sit at their own index (one copy); the others (edge
      // features) at S + id - offset.
      const std::size_t begin = cut_[block][q], end = cut_[block][q + 1];
      const std::size_t lead_end = std::max(begin, std::min(end, P));
      if (lead_end > begin) {
        std::memcpy(p, &g[begin], sizeof(double) * (lead_end - begin));
        std::fill(g.begin() + static_cast<std::ptrdiff_t>(begin),
                  g.begin() + static_cast<std::ptrdiff_t>(lead_end), 0.0);
        p += sizeof(double) * (lead_end - begin);
      }
      for (std::size_t i = lead_end; i < end; ++i) {
        const std::size_t at = S + tail[i - S] - offset;
        std::memcpy(p, &g[at], sizeof(double));
        g[at] = 0.0;
        p += sizeof(double);
      }
    }
  };
  if (exchanges()) {
    if (fold_own_) std::fill(range_grad_.begin(), range_grad_.end(), 0.0);
    start_receives();
    const std::size_t B = block_bounds_.size() - 1;
    if (threads_ == 1) {
      // Each block's parts leave as soon as they are packed (with more threads pack() runs on
      // the workers, and the communicator is the calling thread's: they leave after the loop).
      for_blocks_ordered(B, threads_, work, [&](std::size_t block, std::size_t worker) {
        pack(block, worker);
        start_sends(block);
      });
    } else {
      for_blocks_ordered(B, threads_, work, pack);
      for (std::size_t block = 0; block < B; ++block) start_sends(block);
    }
    reduce_blocks(grad, total_log_z, whole);
  } else {
    for_blocks_ordered(block_bounds_.size() - 1, threads_, work, commit);
  }

  // w . empirical by fixed chunks in chunk order (FeatureRanges): the same bits for any N.
  const double observed = ranges_.dot(w + ranges_.lo(), empirical_.data());
  if (!exchanges())
    for (std::size_t f = 0; f < F; ++f) grad[f] -= empirical_[f];
  return total_log_z - observed;
}

}  // namespace septa::crf
