// The gradient exchange of CrfObjective over ranks: which feature ids each local block touches
// (learned once), the parts of each block sent to their owners as soon as packed, and the
// owners' fold in global block order (the sums keep the bits of one process).
#include "crf/objectives/crf_objective.h"

#include <algorithm>
#include <cstring>

#include "septa/error.h"

namespace septa::crf {

/*
 * The touched feature ids of every local block, split by owner; each owner learns the ids of
 * every block in its range (once; they depend only on the data).
 * The owners' ranges are balanced by memory: a rank holds about 128 bytes per feature of its
 * range (the optimiser's 2 m = 12 history vectors and 4 more, FeatureRanges) and 12 per touched
 * entry in it (4 for the id, 8 for the value received or kept) less the 8 it then no longer
 * sends; the entries crowd into the low ids (the frequent attributes come first in the file),
 * so equal feature counts gave rank 0 the most (CoNLL-2000, 2 ranks: 21.5 against 13.6 MB of
 * exchange buffers). Weights 128 and 6 (fitted: they equalise the 2 ranks' peak resident
 * memory on CoNLL-2000, 93,364 and 93,172 KB; 12 left rank 1 4 MB above rank 0, 20 10 MB). The
 * ranges stay chunk-aligned, so every sum keeps its bits.
 */
void CrfObjective::exchange_touched() {
  const std::size_t F = dimension(), B = block_bounds_.size() - 1;
  const std::size_t L = structure_.labels(), offset = structure_.transition_offset();
  const std::size_t N = static_cast<std::size_t>(layout_->comm->size());
  const std::size_t me = static_cast<std::size_t>(layout_->comm->rank());
  const SparseFeatures& states = structure_.states();
  const SparseFeatures& edges = structure_.edges();
  // A block's ids in ascending order without a sort: its state features are the rows of its
  // attributes (block_attrs_, ascending; row a is [offsets[a], offsets[a+1])), then all
  // transitions, then its edge features (only these need the stamp and a sort; CoNLL-2000's
  // chunking has none). Building them item by item and sorting took 0.07 s per rank at 2 ranks.
  const std::size_t edge_ids = F - structure_.edge_offset();
  std::vector<uint32_t> stamp(edge_ids, UINT32_MAX);  // [edge features] last block that touched
  std::vector<uint32_t> block_edges;                  // the block's edge feature ids
  touched_.assign(B, {});
  cut_.assign(B, {});
  for (std::size_t b = 0; b < B; ++b) {
    std::vector<uint32_t>& ids = touched_[b];
    block_edges.clear();
    if (edge_ids > 0)
      for (std::size_t n = block_bounds_[b]; n < block_bounds_[b + 1]; ++n) {
        const SequenceView s = data_.sequence(n);
        for (std::size_t e = s.edge_offsets[0]; e < s.edge_offsets[s.T]; ++e) {
          const int32_t a = s.edge_ids[e];
          for (uint32_t f = edges.offsets[a]; f < edges.offsets[a + 1]; ++f)
            if (stamp[f] != b) {
              stamp[f] = static_cast<uint32_t>(b);
              block_edges.push_back(static_cast<uint32_t>(structure_.edge_offset() + f));
            }
        }
      }
    std::sort(block_edges.begin(), block_edges.end());
    const bool transitions = block_bounds_[b + 1] > block_bounds_[b];
    ids.reserve(block_states_[b] + (transitions ? L * L : 0) + block_edges.size());
    for (const int32_t a : block_attrs_[b])
      for (uint32_t f = states.offsets[a]; f < states.offsets[a + 1]; ++f) ids.push_back(f);
    if (transitions)
      for (std::size_t q = 0; q < L * L; ++q) ids.push_back(static_cast<uint32_t>(offset + q));
    ids.insert(ids.end(), block_edges.begin(), block_edges.end());
  }
  std::vector<uint32_t>().swap(stamp);
  std::vector<uint32_t>().swap(block_edges);
  const std::size_t C = (F + FeatureRanges::kChunk - 1) / FeatureRanges::kChunk;
  // [chunks] bytes: 6 per touched entry, summed over ranks; rank 0's entries count 0, since
  // rank 0 folds its own blocks without a buffer (fold_own_) and its blocks touch mostly the
  // low features, its own range (CoNLL-2000, 2 ranks: 81.1 / 78.9 MB peak -> 75.5 / 78.9
  // without the buffer at the old balance, and the balance shifted toward rank 0).
  const uint64_t entry_cost = me == 0 ? 0 : 6;
  std::vector<uint64_t> cost(C, 0);
  for (std::size_t b = 0; b < B; ++b)
    for (uint32_t f : touched_[b]) cost[f / FeatureRanges::kChunk] += entry_cost;
  layout_->comm->allreduce(cost, Communicator::Op::kSum);
  for (std::size_t c = 0; c < C; ++c)
    cost[c] += 128 * (std::min(F, (c + 1) * FeatureRanges::kChunk) - c * FeatureRanges::kChunk);
  range_ = FeatureRanges::balanced(F, N, cost);
  ranges_ = FeatureRanges(F, layout_->comm, range_);
  std::vector<ByteWriter> out(N);
  for (std::size_t b = 0; b < B; ++b) {
    const std::vector<uint32_t>& ids = touched_[b];
    for (std::size_t q = 0; q <= N; ++q)
      cut_[b].push_back(static_cast<std::size_t>(
          std::lower_bound(ids.begin(), ids.end(), range_[q]) - ids.begin()));
    for (std::size_t q = 0; q < N; ++q)
      out[q].vec(std::vector<uint32_t>(ids.begin() + cut_[b][q], ids.begin() + cut_[b][q + 1]));
  }
  std::vector<std::string> to(N);
  for (std::size_t q = 0; q < N; ++q) to[q] = std::move(out[q].bytes());
  const std::vector<std::string> parts = layout_->comm->alltoall(to);
  owned_.clear();
  received_bytes_ = 0;
  // Each evaluation's parts from the other ranks arrive in these (one message per block):
  // per block of rank r, its log Z and its entries in this rank's range.
  recv_.assign(N, std::string());
  rank_blocks_.assign(1, 0);
  for (std::size_t r = 0; r < parts.size(); ++r) {
    ByteReader in(parts[r].data(), parts[r].size(), "rank " + std::to_string(r) + " blocks");
    std::size_t bytes = 0;
    while (!in.at_end()) {
      owned_.push_back(in.vec<uint32_t>());
      bytes += sizeof(double) * (1 + owned_.back().size());
    }
    if (r != me) {
      received_bytes_ += bytes;
      recv_[r].assign(bytes, '\0');
    }
    rank_blocks_.push_back(owned_.size());
  }
  SEPTA_CHECK(owned_.size() == layout_->total);
  recv_tickets_.assign(owned_.size(), 0);
  received_bytes_ += sizeof(double) * (F - (range_[me + 1] - range_[me]));
  fold_own_ = me == 0;
  send_.assign(N, std::string());
  send_at_.assign(N, {});
  sent_bytes_ = 0;
  for (std::size_t q = 0; q < N; ++q) {
    std::size_t bytes = 0;
    for (std::size_t b = 0; b < B; ++b) {
      send_at_[q].push_back(bytes);
      bytes += sizeof(double) * (1 + cut_[b][q + 1] - cut_[b][q]);
    }
    // Rank 0 folds its own blocks straight into its range (fold_own_): no buffer for them.
    send_[q].assign(fold_own_ && q == me ? 0 : bytes, '\0');
    if (q != me) sent_bytes_ += bytes;
  }
  sent_bytes_ += sizeof(double) * (range_[me + 1] - range_[me]) * (N - 1);
  range_grad_.assign(range_[me + 1] - range_[me], 0.0);
  // pack() reads the ids of a block's transition and edge entries only: its state entries,
  // the features of its attributes in ascending order, sit at their own position in the
  // block's gradient. The rest of each list goes (3.4 MB a rank on CoNLL-2000 at 2 ranks).
  for (std::size_t b = 0; b < B; ++b) {
    std::vector<uint32_t>& ids = touched_[b];
    const std::size_t S = block_states_[b];
    SEPTA_CHECK(S <= ids.size() && (S == ids.size() || ids[S] >= offset) &&
                (S == 0 || ids[S - 1] < offset));
    std::vector<uint32_t>(ids.begin() + static_cast<std::ptrdiff_t>(S), ids.end()).swap(ids);
  }
  // Entry i of a block sits at g[i] for i < S (its state features) and at S + id - offset
  // after them: the transitions follow the states, so the leading run where that is i again
  // (the block's transitions) needs no id either.
  in_place_.assign(B, 0);
  for (std::size_t b = 0; b < B; ++b) {
    const std::vector<uint32_t>& tail = touched_[b];
    std::size_t k = 0;
    while (k < tail.size() && tail[k] == offset + k) ++k;
    in_place_[b] = block_states_[b] + k;
  }
}

// Every other rank's part of each of its blocks, received into its place in recv_ (sizes
// fixed by the data: no allocation), one message per block, before this rank's own work, so
// that parts arrive while it works and reduce_blocks folds each as soon as it is there.
void CrfObjective::start_receives() {
  Communicator& comm = *layout_->comm;
  const std::size_t me = static_cast<std::size_t>(comm.rank());
  for (std::size_t r = 0; r + 1 < rank_blocks_.size(); ++r) {
    if (r == me) continue;
    char* p = &recv_[r][0];
    for (std::size_t k = rank_blocks_[r]; k < rank_blocks_[r + 1]; ++k) {
      const std::size_t bytes = sizeof(double) * (1 + owned_[k].size());
      recv_tickets_[k] = comm.recv_start(p, bytes, static_cast<int>(r));
      p += bytes;
    }
  }
}

// Local block `block`'s parts, once packed, to their owners (the other ranks).
void CrfObjective::start_sends(std::size_t block) {
  Communicator& comm = *layout_->comm;
  const std::size_t me = static_cast<std::size_t>(comm.rank());
  for (std::size_t q = 0; q + 1 < cut_[block].size(); ++q) {
    if (q == me) continue;
    const std::size_t bytes = sizeof(double) * (1 + cut_[block][q + 1] - cut_[block][q]);
    send_tickets_.push_back(
        comm.send_start(&send_[q][send_at_[q][block]], bytes, static_cast<int>(q)));
  }
}

/*
 * grad = sum of all ranks' blocks in global block order (ranks own consecutive blocks), as one
 * process adds them: each owner folds its feature range, grad[f] = ((0 + g_0f) + g_1f) + ...
 * over the blocks that touch f (an untouched entry is exactly 0, and x + 0.0 = x), then the
 * ranges are allgathered. log Z of every block reaches every rank, summed in block order.
 * Each other rank's block is folded as soon as its part has arrived (start_receives).
 */
void CrfObjective::reduce_blocks(double* grad, double& total_log_z, bool gather) {
  // This rank's own part stays in send_[me].
  Communicator& comm = *layout_->comm;
  const std::size_t me = static_cast<std::size_t>(comm.rank());
  const std::size_t lo = range_[me];
  // With fold_own_, pack() has already folded this rank's own blocks (the first blocks of the
  // block order) into range_grad_ and their log Z into total_log_z; parts[me] is empty.
  if (!fold_own_) std::fill(range_grad_.begin(), range_grad_.end(), 0.0);
  std::size_t block = fold_own_ ? touched_.size() : 0;
  for (std::size_t r = 0; r < recv_.size(); ++r) {
    const std::string& part = r == me ? send_[me] : recv_[r];
    const char* p = part.data();
    const char* end = p + part.size();
    while (p < end) {
      if (r != me) comm.finish(recv_tickets_[block]);
      const std::vector<uint32_t>& ids = owned_[block++];
      double value;
      std::memcpy(&value, p, sizeof value);
      total_log_z += value;
      p += sizeof value;
      for (uint32_t f : ids) {
        std::memcpy(&value, p, sizeof value);
        range_grad_[f - lo] += value;
        p += sizeof value;
      }
    }
  }
  SEPTA_CHECK(block == owned_.size());
  // send_ is packed again in the next evaluation
  for (const std::size_t ticket : send_tickets_) comm.finish(ticket);
  send_tickets_.clear();
  for (std::size_t i = 0; i < range_grad_.size(); ++i) range_grad_[i] -= empirical_[i];
  if (!gather) {
    std::copy(range_grad_.begin(), range_grad_.end(), grad);
    return;
  }
  std::string mine(reinterpret_cast<const char*>(range_grad_.data()),
                   sizeof(double) * range_grad_.size());
  const std::vector<std::string> ranges = layout_->comm->allgather(std::move(mine));
  for (std::size_t q = 0; q < ranges.size(); ++q) {
    SEPTA_CHECK(ranges[q].size() == sizeof(double) * (range_[q + 1] - range_[q]));
    std::memcpy(grad + range_[q], ranges[q].data(), ranges[q].size());
  }
}

}  // namespace septa::crf
