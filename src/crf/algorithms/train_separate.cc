// -a separate: CR-F separate training. The unary factor P(y_t|x) and the pairwise factor
// P(y_t, y_{t+1}|x) are maximum-entropy classifiers trained independently, each data-parallel
// over all threads (SGD with iterative parameter mixing over fixed shards, or L-BFGS over fixed
// blocks); no chain inference. By default (--stacked-pairs) the pairwise factor is trained after
// the unary one, on top of its log-probabilities (see SeparateScorer).
#include "crf/algorithms/local_training.h"
#include "crf/algorithms/pair_ties.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <thread>
#include <utility>

#include "crf/io/binary_io.h"
#include "crf/lattice/fast_exp.h"
#include "crf/optim/listed_cache.h"
#include "crf/optim/range_cache.h"
#include "crf/optim/sgd.h"
#include "crf/parallel/ordered_parallel.h"
#include "crf/scoring/separate_scorer.h"

namespace septa::crf {
namespace {

/*
 * Candidate classes of each edge instance for the beam-restricted pairwise softmax: the pairs
 * that the trained unary factor allows (SeparateScorer::candidate_pairs, the rule tagging
 * uses), plus the gold pair; when stacked, each with its offset log P_u(a) + log P_u(b).
 * Sequences are independent: fixed blocks of sequences list their edges into block-local
 * arrays (no allocation per sequence once a block's arrays have grown), which are then
 * concatenated in block order, so any thread count gives the same lists.
 * With `ranges` (the unary SGD's RangeCache of the node instances, one per item in order; with
 * `cached` [items], item i's is entry cached[i]), the unary probabilities are scored from its
 * ranges, as the SGD scored them (the same sums bit for bit as
 * SeparateScorer::unary_probabilities), instead of looking the features up again; a sequence
 * with an item not in the cache (spread over ranks: the few at the shard cuts) looks them up.
 */
void pair_candidates_of(const Dataset& data, const SeparateScorer& scorer,
                        const RangeCache* ranges, const std::vector<uint32_t>* cached,
                        const double* unary_w, std::vector<LocalInstance>& edges,
                        std::size_t n0, std::size_t n1, std::size_t e0, int threads,
                        CandidateLists& out) {
  const std::size_t N = n1 - n0, L = scorer.labels();
  const std::size_t B = std::min<std::size_t>(N, 64);  // blocks of sequences
  struct Block {
    std::size_t first_edge = 0;          // index into edges
    std::vector<std::size_t> ends;       // [edges of the block] end of each list in classes
    std::vector<int32_t> classes;        // [entries]
    std::vector<double> base;            // [entries] (stacked) class offsets
  };
  std::vector<Block> blocks(B);
  {
    std::size_t e = e0;  // edges are in sequence order, T-1 per sequence
    for (std::size_t b = 0; b < B; ++b) {
      blocks[b].first_edge = e;
      for (std::size_t n = n0 + N * b / B; n < n0 + N * (b + 1) / B; ++n) {
        const std::size_t T = data.sequence_offsets[n + 1] - data.sequence_offsets[n];
        e += std::max<std::size_t>(T, 1) - 1;
      }
    }
  }
  const bool stacked = scorer.stacked();
  if (cached && cached->empty()) cached = nullptr;
  if (ranges && (cached ? cached->size() : ranges->size()) != data.items()) ranges = nullptr;
  const SoftmaxModelShape unary_shape = scorer.unary_shape();
  // Items no cache holds (over ranks: all, or those at the shard cuts) get their masked ranges
  // found here as RangeCache finds them (the non-empty feature ranges of the item's attributes
  // in order, each with its attribute's class mask) and their probabilities from the cache's
  // kernel: the same values bit for bit as the cache's and as unary_probabilities', without
  // the scalar scatter of the scores (on CoNLL-2000 x16, 0.5 s of a rank's 0.7 s here).
  // Each attribute's masked range, one 8- or 12-byte read per attribute of an item (a mask of
  // 0: no features).
  std::vector<MaskedRange> rows;           // [A] (K <= 32) or empty
  std::vector<WideMaskedRange> wide_rows;  // [A] (32 < K <= 64) or empty
  const SparseFeatures& unary_features = *unary_shape.features;
  if ((!ranges || cached) && data.unit_values && !unary_shape.mask && have_avx512() &&
      vector_clone_v3()) {
    const std::size_t A = unary_features.offsets.size() - 1;
    const uint32_t* offsets = unary_features.offsets.data();
    const std::vector<uint32_t> masks = attribute_masks(unary_features, L, A);
    const std::vector<uint64_t> wide_masks = masks.empty() && L > 32
                                                 ? wide_attribute_masks(unary_features, L, A)
                                                 : std::vector<uint64_t>();
    if (!masks.empty()) {
      rows.resize(A);
      for (std::size_t a = 0; a < A; ++a)
        rows[a] = MaskedRange{offsets[a], offsets[a] == offsets[a + 1] ? 0u : masks[a]};
    } else if (!wide_masks.empty()) {
      wide_rows.resize(A);
      for (std::size_t a = 0; a < A; ++a) {
        const uint64_t mask = offsets[a] == offsets[a + 1] ? 0 : wide_masks[a];
        wide_rows[a] = WideMaskedRange{offsets[a], static_cast<uint32_t>(mask),
                                       static_cast<uint32_t>(mask >> 32)};
      }
    }
  }
  parallel_for(B, threads, [&](std::size_t b) {
    Block& block = blocks[b];
    std::vector<double> unary;  // [T][L] of one sequence
    std::vector<MaskedRange> seq_ranges;  // [ranges of one sequence's items]
    std::vector<WideMaskedRange> wide_ranges;
    std::vector<std::size_t> starts;  // [T+1] each item's first range there
    // The probabilities of sequence s's items (from item `first` on) from their ranges found
    // here to unary [T][L]: all the sequence's ranges first (their weights prefetched), then
    // the kernel per item. False where the masks are not set (nothing written).
    const auto found_probabilities = [&](const SequenceView& s, std::size_t first) {
      const auto found = [&](auto& ranges, const auto& table, auto empty) {
        ranges.clear();
        starts.assign(1, 0);
        for (std::size_t item = first; item < first + s.T; ++item) {
          for (std::size_t e = data.item_offsets[item]; e < data.item_offsets[item + 1]; ++e) {
            const auto& row = table[static_cast<std::size_t>(data.attribute_ids[e])];
            if (empty(row)) continue;
            __builtin_prefetch(unary_w + row.first);
            ranges.push_back(row);
          }
          starts.push_back(ranges.size());
        }
        const LocalInstance node;
        for (std::size_t t = 0; t < s.T; ++t)
          if (!ranged_probabilities(unary_shape, node, ranges.data() + starts[t],
                                    ranges.data() + starts[t + 1], unary_w, 1.0, &unary[t * L]))
            return false;
        return true;
      };
      if (!rows.empty())
        return found(seq_ranges, rows, [](const MaskedRange& r) { return r.mask == 0; });
      if (!wide_rows.empty())
        return found(wide_ranges, wide_rows,
                     [](const WideMaskedRange& r) { return (r.low | r.high) == 0; });
      return false;
    };
    std::size_t e = block.first_edge;
    for (std::size_t n = n0 + N * b / B; n < n0 + N * (b + 1) / B; ++n) {
      const SequenceView s = data.sequence(n);
      if (s.T < 2) continue;
      if (unary.size() < s.T * L) unary.resize(s.T * L);
      const std::size_t first = data.sequence_offsets[n];
      bool in_cache = ranges != nullptr;
      if (in_cache && cached)
        for (std::size_t t = 0; t < s.T && in_cache; ++t)
          in_cache = (*cached)[first + t] != ShardedSgd::kNotCached;
      if (in_cache) {
        const LocalInstance node;  // (its dense row: context 0, as unary_probabilities)
        for (std::size_t t = 0; t < s.T; ++t) {
          double* p = &unary[t * L];
          const std::size_t i = cached ? (*cached)[first + t] : first + t;
          if (!cached_ranged_probabilities(unary_shape, node, *ranges, i, unary_w, 1.0, p)) {
            cached_ranged_scores(unary_shape, node, *ranges, i, unary_w, 1.0, p);
            softmax_normalize(p, L);
          }
        }
      } else {
        if (!found_probabilities(s, first)) scorer.unary_probabilities(s, unary.data());
      }
      for (std::size_t t = 0; t + 1 < s.T; ++t, ++e) {
        const double* ut = &unary[t * L];
        const double* un = &unary[(t + 1) * L];
        const std::size_t at = block.classes.size();
        scorer.candidate_pairs(ut, un, block.classes);
        const int32_t gold = edges[e].gold;
        const bool has_gold =
            std::find(block.classes.begin() + at, block.classes.end(), gold) !=
            block.classes.end();
        if (!has_gold) block.classes.push_back(gold);
        if (stacked)
          for (std::size_t i = at; i < block.classes.size(); ++i)
            block.base.push_back(scorer.pair_base(block.classes[i], ut, un));
        block.ends.push_back(block.classes.size());
      }
    }
  });
  // The blocks' lists go into their places in parallel (the arrays sized one a task): on the
  // calling thread alone the concatenation was a few ms at 2 threads on CoNLL-2000.
  std::vector<std::size_t> list_at(B + 1, out.size()), entry_at(B + 1, out.classes.size()),
      base_at(B + 1, out.base.size());  // [B+1] where each block's lists, classes, bases go
  for (std::size_t b = 0; b < B; ++b) {
    list_at[b + 1] = list_at[b] + blocks[b].ends.size();
    entry_at[b + 1] = entry_at[b] + blocks[b].classes.size();
    base_at[b + 1] = base_at[b] + blocks[b].base.size();
  }
  parallel_for(3, threads, [&](std::size_t k) {
    if (k == 0) out.offsets.resize(list_at[B] + 1);
    if (k == 1) out.classes.resize(entry_at[B]);
    if (k == 2) out.base.resize(base_at[B]);
  });
  parallel_for(B, threads, [&](std::size_t b) {
    Block& block = blocks[b];
    for (std::size_t i = 0; i < block.ends.size(); ++i) {
      edges[block.first_edge + i].candidates = static_cast<int64_t>(list_at[b] + i);
      out.offsets[list_at[b] + i + 1] = entry_at[b] + block.ends[i];
    }
    std::copy(block.classes.begin(), block.classes.end(), out.classes.begin() + entry_at[b]);
    std::copy(block.base.begin(), block.base.end(), out.base.begin() + base_at[b]);
    block = Block();
  });
}

/*
 * Over ranks each rank lists the edges of the sequences it read (context.own_items) and the
 * ranks allgather the lists, concatenated in rank order: the lists of one process, with the
 * work divided. Every edge has one list, so edge e's list is list e. With spread data the
 * rank's own edges are all it has, and their lists travel with them (ShardedSgd).
 */
CandidateLists pair_candidates(const TrainingContext& context, const SeparateScorer& scorer,
                               const RangeCache* ranges, const std::vector<uint32_t>* cached,
                               const double* unary_w, std::vector<LocalInstance>& edges,
                               int threads) {
  const Dataset& data = context.data;
  CandidateLists out;
  if (!context.sgd_ranks || context.sgd_ranks->size() == 1 || context.spread_data) {
    // (spread over ranks, the cache holds this rank's shards: `cached` maps its items there)
    const bool usable = !context.sgd_ranks || (cached && !cached->empty());
    pair_candidates_of(data, scorer, usable ? ranges : nullptr, cached, unary_w, edges, 0,
                       data.size(), 0, threads, out);
    return out;
  }
  const std::vector<std::size_t>& starts = data.sequence_offsets;  // [N+1]
  const std::size_t n0 = static_cast<std::size_t>(
      std::lower_bound(starts.begin(), starts.end(), context.own_items.first) - starts.begin());
  const std::size_t n1 = static_cast<std::size_t>(
      std::lower_bound(starts.begin() + n0, starts.end(), context.own_items.second) -
      starts.begin());
  std::size_t e0 = 0;  // edges before sequence n0
  for (std::size_t n = 0; n < n0; ++n) e0 += std::max<std::size_t>(starts[n + 1] - starts[n], 1) - 1;
  CandidateLists mine;
  pair_candidates_of(data, scorer, nullptr, nullptr, unary_w, edges, n0, std::min(n1, data.size()),
                     e0, threads, mine);
  ByteWriter bytes;
  bytes.vec(mine.offsets);
  bytes.vec(mine.classes);
  bytes.vec(mine.base);
  mine = CandidateLists();
  std::vector<std::string> parts = context.sgd_ranks->allgather(std::move(bytes.bytes()));
  // The sizes first (each part: offsets, classes, base, each a count and its values), so that
  // the lists are allocated once: grown by appending they held up to twice their size.
  std::size_t lists = 1, total_entries = 0, bases = 0;
  for (const std::string& part : parts) {
    std::size_t at = 0;
    const auto count = [&](std::size_t value_bytes) {  // a vector's count; skips its values
      uint64_t n;
      SEPTA_CHECK(at + sizeof n <= part.size());
      std::memcpy(&n, part.data() + at, sizeof n);
      at += sizeof n + n * value_bytes;
      return static_cast<std::size_t>(n);
    };
    const std::size_t offsets = count(sizeof(std::size_t));
    lists += offsets > 0 ? offsets - 1 : 0;
    total_entries += count(sizeof(int32_t));
    bases += count(sizeof(double));
  }
  out.offsets.reserve(lists);
  out.classes.reserve(total_entries);
  out.base.reserve(bases);
  for (std::size_t r = 0; r < parts.size(); ++r) {
    ByteReader in(parts[r].data(), parts[r].size(), "rank " + std::to_string(r) + " pair lists");
    const auto offsets = in.vec<std::size_t>();
    const auto classes = in.vec<int32_t>();
    const auto base = in.vec<double>();
    std::string().swap(parts[r]);
    const std::size_t entries = out.classes.size();
    for (std::size_t i = 1; i < offsets.size(); ++i) out.offsets.push_back(entries + offsets[i]);
    out.classes.insert(out.classes.end(), classes.begin(), classes.end());
    out.base.insert(out.base.end(), base.begin(), base.end());
  }
  if (out.size() != edges.size())
    throw InternalError("pair candidate lists: " + std::to_string(out.size()) + " lists for " +
                        std::to_string(edges.size()) + " edges");
  for (std::size_t e = 0; e < edges.size(); ++e) edges[e].candidates = static_cast<int64_t>(e);
  return out;
}

// Runs `task` on a thread of its own from construction; join() waits for it and rethrows its
// error, once. An error also sets shared.stop (the work running meanwhile stops early).
class Background {
 public:
  Background(std::function<void()> task, SharedProgress& shared)
      : thread_([this, task = std::move(task), &shared] {
          try {
            task();
          } catch (...) {
            error_ = std::current_exception();
            shared.stop = true;
          }
        }) {}
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  ~Background() {
    if (thread_.joinable()) thread_.join();
  }
  void join() {
    if (thread_.joinable()) thread_.join();
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  std::exception_ptr error_;  // (before thread_: set up before the thread starts)
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Scorer> train_separate(const TrainingContext& given, TrainResult& result) {
  TrainingContext context = given;  // with its own `released` hooks
  const Dataset& data = context.data;
  const std::size_t A = context.encoder.attributes().size();
  const std::size_t L = context.encoder.labels().size();
  const TrainOptions& options = context.options;
  // Spread over ranks, `data` is this rank's part: the label pairs and the counts are merged.
  Communicator* ranks = context.spread_data ? context.sgd_ranks : nullptr;

  const LabelPairs pairs = ranks ? observed_pairs_across(data, L, *ranks) : observed_pairs(data, L);
  // The two instance lists are built concurrently (one pass each over the items: on the calling
  // thread alone 0.008 s at 2 threads on CoNLL-2000).
  std::vector<LocalInstance> nodes, edges;
  parallel_for(2, options.threads, [&](std::size_t k) {
    if (k == 0)
      nodes = node_instances(data);
    else
      edges = edge_instances(data, pairs.pair_class, L);
  });
  std::vector<uint64_t> counts{data.size(), nodes.size(), edges.size()};  // N, nodes, edges
  if (ranks) ranks->allreduce(counts, Communicator::Op::kSum);
  const bool has_edges = counts[2] > 0;
  auto scorer = std::make_unique<SeparateScorer>(A, L, pairs.first, pairs.second, options.floor,
                                                 options.pair_beam, options.stacked_pairs);

  // The two factors' features are built concurrently, each on half of the threads (one after
  // the other over ranks: each build is a collective, counted on each rank's own items); then
  // each factor trains on all threads (the results do not depend on the thread count).
  SharedProgress shared;
  const int build_threads = std::max(1, options.threads / 2);
  auto unary_features = [&] {
    scorer->set_unary_features(instance_features_across(context, nodes, A, L, 1, options.min_freq,
                                                        options.all_possible_states,
                                                        build_threads));
  };
  auto pair_features = [&] {
    scorer->set_pair_features(instance_features_across(context, edges, A, pairs.first.size(), 2,
                                                       options.min_freq, false, build_threads));
  };
  profile_stage("instances");
  // On several threads in one process the pairwise features are built on a thread of their
  // own while this one builds the unary features and sets up the unary SGD, whose set-up runs
  // mostly on one thread: the pairwise build (twice the unary one's occurrences: each edge
  // reads two items) had kept the other thread busy alone for as long again.
  std::unique_ptr<Background> pair_build;
  if (ranks) {  // spread over ranks: the pairwise features and weights are built when needed
    unary_features();
  } else if (context.sgd_ranks || options.threads <= 1) {
    run_both(unary_features, pair_features, shared, 1);
  } else {
    pair_build = std::make_unique<Background>(pair_features, shared);
    unary_features();
    context.set_up = [&] {
      pair_build->join();
      profile_stage("pair features");
    };
  }
  release_free_memory();  // the counting's buffers, before the SGD's are allocated
  profile_stage("features");
  // Each factor's penalty is set from its own instance count (factor_c2); the unary factor
  // makes --unary-epochs passes, the pairwise one --epochs. Spread over ranks, the own node
  // instances go once the SGD holds its own.
  context.released = [&] { std::vector<LocalInstance>().swap(nodes); };
  // The unary SGD's feature ranges are kept for the pair candidates (in one process and spread
  // over ranks, where the cache holds the rank's shards, nearly all the nodes it read, and
  // unary_cached maps its items there).
  std::unique_ptr<RangeCache> unary_ranges;
  std::vector<uint32_t> unary_cached;
  const bool keep_ranges = !context.sgd_ranks || ranks;
  const MinimizerResult unary_result = fit_local(
      context, "unary", nodes, scorer->unary_shape(), options.threads, scorer->unary_weights(),
      shared, factor_c2(options.c2, counts[0], counts[1]), options.unary_epochs,
      options.unary_mixes, keep_ranges ? &unary_ranges : nullptr, &unary_cached);
  if (ranks && unary_cached.empty()) unary_ranges.reset();  // (its own nodes mostly not held)
  if (pair_build) {  // (fit_local returns without its set-up when there are no instances)
    pair_build->join();
    release_free_memory();  // the pairwise build's buffers
    context.set_up = nullptr;
  }
  profile_stage("unary SGD");
  MinimizerResult pair_result;
  CandidateLists candidates;
  if (ranks) {  // (also when stopped: the model has both factors)
    pair_features();
    release_free_memory();
    profile_stage("pair features");
  }
  if (has_edges && !shared.stop) {
    SoftmaxModelShape pair_shape = scorer->pair_shape();
    if (options.pair_beam > 0.0 || scorer->stacked()) {
      candidates = pair_candidates(context, *scorer, unary_ranges.get(), &unary_cached,
                                   scorer->unary_weights().data(), edges, options.threads);
      pair_shape.candidates = &candidates;
    }
    unary_ranges.reset();
    std::vector<uint32_t>().swap(unary_cached);
    profile_stage("pair candidates");
    if (std::getenv("SEPTA_SGD_PROFILE"))
      std::fprintf(stderr, "pairwise factor: %zu pair classes, %zu edges, %.2f listed pairs per edge\n",
                   pairs.first.size(), edges.size(),
                   candidates.size() ? static_cast<double>(candidates.classes.size()) /
                                           static_cast<double>(candidates.size())
                                     : static_cast<double>(pairs.first.size()));
    // Spread over ranks, the own edges, their lists and this rank's part of the corpus go
    // once the SGD holds the instances it trains: nothing after this reads them.
    context.released = [&] {
      std::vector<LocalInstance>().swap(edges);
      candidates = CandidateLists();
      if (context.releasable_data) *context.releasable_data = Dataset();
    };
    // Tied pair features (pair_ties.h) where the listed-feature cache takes every instance
    // with a loss: SGD, candidate lists of at most 256 classes, column data. Over spread ranks
    // the conditions are agreed (each rank holds its own lists).
    SparseFeatures untied;
    PairTies ties;
    {
      std::size_t longest = 0;
      for (std::size_t c = 0; c < candidates.size(); ++c)
        longest = std::max<std::size_t>(longest, candidates.offsets[c + 1] - candidates.offsets[c]);
      std::vector<uint64_t> eligible{options.pair_ties && options.local_sgd &&
                                     pair_shape.candidates && !pair_shape.mask &&
                                     data.unit_values &&
                                     longest <= ListedEntry::kSlots &&
                                     scorer->pair_features().size() < ListedEntry::kFeatures};
      if (ranks) ranks->allreduce(eligible, Communicator::Op::kMin);
      if (eligible[0])
        ties = find_pair_ties(data, context.encoder.feature_template(), A,
                              scorer->pair_features(), ranks, options.threads);
      if (ties.count > 0) {
        untied = std::move(scorer->pair_features());
        scorer->set_pair_features(without_tied(untied, ties.tied, options.threads));
        pair_shape.tied = &ties.tied;
      }
      profile_stage("pair ties");
      if (std::getenv("SEPTA_SGD_PROFILE"))
        std::fprintf(stderr, "pairwise factor: %zu tied attributes, %zu -> %zu features\n",
                     ties.count, ties.count ? untied.size() : scorer->pair_features().size(),
                     scorer->pair_features().size());
    }
    // The pairwise SGD reads no unary weights (the lists hold their offsets), and only rank 0
    // writes the model: while it trains, rank 0 keeps the unary features, rank 1 the unary
    // weights (sent back to rank 0 after), the other ranks neither.
    const int me = ranks ? ranks->rank() : 0;
    const bool hand_off = ranks && ranks->size() > 1;
    if (hand_off) {
      if (me != 0) scorer->unary_features() = SparseFeatures();
      if (me != 1) std::vector<double>().swap(scorer->unary_weights());
    }
    pair_result =
        fit_local(context, "pairwise", edges, pair_shape, options.threads, scorer->pair_weights(),
                  shared, factor_c2(options.c2, counts[0], counts[2]));
    if (hand_off) {
      std::vector<std::string> to(static_cast<std::size_t>(ranks->size()));
      if (me == 1) {
        ByteWriter out;
        out.vec(scorer->unary_weights());
        std::vector<double>().swap(scorer->unary_weights());
        to[0] = std::move(out.bytes());
      }
      std::vector<std::string> parts = ranks->alltoall(to);
      if (me == 0) {
        ByteReader in(parts[1].data(), parts[1].size(), "rank 1 unary weights");
        scorer->unary_weights() = in.vec<double>();
        SEPTA_CHECK(in.at_end() &&
                    scorer->unary_weights().size() == scorer->unary_features().size() + L);
      }
    }
    if (ties.count > 0) {  // the model's features, each tied one with its partner's weights
      std::vector<double> w = untied_weights(untied, scorer->pair_features(), ties.tied,
                                             scorer->pair_weights(), options.threads);
      scorer->set_pair_features(std::move(untied));
      scorer->pair_weights() = std::move(w);
    }
    profile_stage("pairwise SGD");
  }
  if (shared.stop) pair_result.cancelled = true;

  record_two_parts("unary", unary_result, "pairwise", pair_result, has_edges, result);
  report_final(context, "separate", result.iterations, *scorer);
  profile_stage("final report");
  return scorer;
}

}  // namespace septa::crf
