// Collective steps of data-parallel training over the ranks of a Communicator, each built so
// that every rank ends with exactly what one process would compute on the whole corpus.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "crf/features/dataset.h"
#include "crf/features/dictionary.h"
#include "crf/features/sparse_features.h"
#include "septa/communicator.h"

namespace septa::crf {

// Replaces `dictionary` (this rank's strings in first-seen order) by the union over ranks, the
// strings of rank 0 first, then the new ones of rank 1, ...: for shards that are consecutive
// parts of one file this is the first-seen order of a sequential pass. Returns [local id] ->
// global id. With `slice`, only rank 0 keeps the merged strings; every other rank r keeps
// the count (Dictionary::release) and, in *slice, the packed strings of its id range
// [size r/N, size (r+1)/N) (Dictionary::pack), so that the strings are spread over the ranks.
std::vector<int32_t> merge_dictionary(Dictionary& dictionary, Communicator& comm,
                                      std::string* slice = nullptr);

// The id range of the dictionary strings that rank r of N keeps while training.
inline std::pair<std::size_t, std::size_t> name_slice(std::size_t size, int r, int n) {
  return {size * static_cast<std::size_t>(r) / static_cast<std::size_t>(n),
          size * static_cast<std::size_t>(r + 1) / static_cast<std::size_t>(n)};
}

// (attribute, class) features from this rank's `builder` with occurrence counts summed over the
// ranks, then the min_freq / all_classes rule of SparseFeaturesBuilder::build: the same
// features, in the same order, as one builder fed the whole corpus.
SparseFeatures build_features_across(SparseFeaturesBuilder& builder, std::size_t A, std::size_t K,
                                     int min_freq, bool all_classes, Communicator& comm);
// The same from this rank's features (every pair seen, i.e. min_freq 1 and not all_classes)
// and their occurrence counts [F], which it frees once sent.
SparseFeatures merge_features_across(SparseFeatures local, std::vector<uint32_t> counts,
                                     std::size_t A, std::size_t K, int min_freq,
                                     bool all_classes, Communicator& comm);

// The same at min_freq <= 1 with K <= 256 classes, where no count is needed: a class is kept
// (with all_classes: every class of an attribute) if any rank has it. `local` holds each
// attribute's classes in increasing order; it is freed once sent.
SparseFeatures union_features_across(SparseFeatures local, std::size_t A, std::size_t K,
                                     bool all_classes, Communicator& comm);

// The datasets of all ranks concatenated in rank order, on every rank (the whole corpus for
// shards that are consecutive parts of it; ids must already be global). `local` is released
// once serialised, and each received part once appended. `own_items`, when given, receives the
// item range [first, end) of this rank's part in the result.
Dataset gather_dataset(Dataset local, Communicator& comm,
                       std::pair<std::size_t, std::size_t>* own_items = nullptr);

// mask[i] = OR over ranks.
void allreduce_or(std::vector<char>& mask, Communicator& comm);

// The fixed reduction blocks of a corpus spread over ranks (see CrfObjective): this rank owns
// blocks [first, first + bounds.size() - 1) of `total`; bounds are its sequence ranges.
struct BlockLayout {
  Communicator* comm = nullptr;
  std::vector<std::size_t> bounds;  // [local blocks + 1] sequence ranges
  std::size_t first = 0;
  std::size_t total = 0;
  bool root() const { return comm == nullptr || comm->rank() == 0; }
};

}  // namespace septa::crf
