// The instances of one softmax factor moved to the ranks that train them: SGD over ranks with
// each rank holding only the instances of its own SGD shards (and the fixed samples), not the
// whole corpus.
#pragma once

#include <cstdint>
#include <vector>

#include "crf/features/dataset.h"
#include "crf/objectives/softmax_objective.h"
#include "septa/communicator.h"

namespace septa::crf {

// What a rank holds of a factor whose instances are spread over the ranks: instances with the
// items they span and their candidate lists renumbered into these arrays, and the global id
// of each (its place in the factor's instance list of one process: rank 0's instances first,
// then rank 1's, ...). The order is the order of arrival, not the global one.
struct HeldInstances {
  // The items of the held instances only: item_offsets [items+1] and attribute_ids [entries],
  // every value 1 (unit_values; attribute_values, labels and the sequence arrays are empty).
  Dataset data;
  std::vector<LocalInstance> instances;  // [held] item: into data; candidates: into candidates
  CandidateLists candidates;             // the held instances' lists (none without own_lists)
  std::vector<uint64_t> global;          // [held] global instance ids
};

/*
 * Sends each own instance i (global id first + i; `own` in item order, each spanning
 * own[i].span consecutive items of `own_data`) to the ranks whose bit is set in dest[i] (bit q:
 * rank q), with its items' attribute ids and, given own_lists, its candidate list (and base
 * offsets). An item shared by consecutive instances (the edges of a sequence) goes once per
 * message. The totals are exchanged first (one alltoall, so that the receiving arrays are
 * allocated once), then the instances in a fixed number of rounds (an alltoall each), so that
 * the bytes in flight are a fraction of what moves. Returns what the ranks (this one
 * included) sent here. Attribute values must all be 1 (column data).
 */
HeldInstances exchange_instances(const Dataset& own_data, const std::vector<LocalInstance>& own,
                                 const CandidateLists* own_lists, uint64_t first,
                                 const std::vector<uint64_t>& dest, Communicator& comm);

}  // namespace septa::crf
