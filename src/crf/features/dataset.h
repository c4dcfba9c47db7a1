// Sequences in id space: the input every trainer and tagger works on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>
#include <vector>

#include "util/default_init.h"

namespace septa::crf {

/*
 * std::allocator whose construct() without arguments default-initialises: resize() of a
 * trivial element type leaves the new elements unwritten instead of zeroing them. For arrays
 * that are then written in full on several threads (the encoder's attribute entries: 19 MB on
 * CoNLL-2003 NER, zeroed and faulted in on the calling thread alone before the chunks ran).
 */
template <class T>
struct UnzeroedAllocator : std::allocator<T>, util::DefaultInitConstruct {
  template <class U>
  struct rebind {
    using other = UnzeroedAllocator<U>;
  };
  UnzeroedAllocator() = default;
  template <class U>
  UnzeroedAllocator(const UnzeroedAllocator<U>&) noexcept {}
  using util::DefaultInitConstruct::construct;
};

// A read-only view of one sequence of a Dataset.
struct SequenceView {
  std::size_t T = 0;                   // items
  const std::size_t* item_offsets;     // [T+1] absolute offsets into ids/values
  const int32_t* attribute_ids;        // indexed by item_offsets
  const float* attribute_values;       // indexed by item_offsets; null: every value is 1
  const int32_t* labels;               // [T] gold label ids, -1 when unknown
  // Attributes of the edge (t-1, t) into item t, from observation-conditioned B templates:
  // edge_ids[edge_offsets[t] .. edge_offsets[t+1]) (absolute offsets; none for t = 0).
  const std::size_t* edge_offsets;     // [T+1]
  const int32_t* edge_ids;             // indexed by edge_offsets
  double weight = 1.0;
  std::size_t first_item = 0;          // index of item 0 in the dataset
};

// N sequences stored flat: items of all sequences, attributes of all items.
struct Dataset {
  std::vector<std::size_t> sequence_offsets{0};  // [N+1] into items
  std::vector<std::size_t> item_offsets{0};      // [items+1] into attribute entries
  // [nnz] attribute of each entry (resize leaves new entries unwritten: UnzeroedAllocator)
  std::vector<int32_t, UnzeroedAllocator<int32_t>> attribute_ids;
  std::vector<float> attribute_values;           // [nnz] value of each entry
  std::vector<int32_t> labels;                   // [items] gold label, -1 when unknown
  std::vector<double> weights;                   // [N] sequence weights
  // Edge attributes (observation-conditioned B templates; value 1): those of the edge into
  // each item, empty ranges for items that start a sequence and without such templates.
  std::vector<std::size_t> edge_offsets{0};      // [items+1] into edge_ids
  std::vector<int32_t> edge_ids;                 // [edge entries] attribute of each entry
  // Every attribute value is 1 (column data, set by the encoder that built it): the training
  // kernels then never read attribute_values (ItemArrays::of). False unless known.
  bool unit_values = false;

  std::size_t size() const { return weights.size(); }
  // Empties the dataset, keeping the buffers' capacity (a tagger reuses one per thread).
  void clear() {
    sequence_offsets.assign(1, 0);
    item_offsets.assign(1, 0);
    attribute_ids.clear();
    attribute_values.clear();
    labels.clear();
    weights.clear();
    edge_offsets.assign(1, 0);
    edge_ids.clear();
    unit_values = false;
  }
  std::size_t items() const { return labels.size(); }
  SequenceView sequence(std::size_t n) const {
    SequenceView v;
    const std::size_t first = sequence_offsets[n];
    v.T = sequence_offsets[n + 1] - first;
    v.item_offsets = &item_offsets[first];
    v.attribute_ids = attribute_ids.data();
    // Unit-valued data may drop its values (training, see unit_values): null then.
    v.attribute_values = attribute_values.empty() ? nullptr : attribute_values.data();
    v.labels = labels.data() + first;
    v.edge_offsets = &edge_offsets[first];
    v.edge_ids = edge_ids.data();
    v.weight = weights[n];
    v.first_item = first;
    return v;
  }
  // Appends an attribute entry to the item being built.
  void add_attribute(int32_t id, float value) {
    attribute_ids.push_back(id);
    attribute_values.push_back(value);
  }
  // Appends an attribute of the edge into the item being built.
  void add_edge_attribute(int32_t id) { edge_ids.push_back(id); }
  // Closes the item being built with gold label `label` (-1 unknown).
  void end_item(int32_t label) {
    labels.push_back(label);
    item_offsets.push_back(attribute_ids.size());
    edge_offsets.push_back(edge_ids.size());
  }
  // Whether any item has edge attributes.
  bool has_edges() const { return !edge_ids.empty(); }
  // Closes the sequence being built.
  void end_sequence(double weight) {
    weights.push_back(weight);
    sequence_offsets.push_back(labels.size());
  }
};

// Splits [0, N) into `parts` contiguous ranges of about equal item counts; returns [parts+1]
// boundaries. Depends only on the data, never on the thread count.
std::vector<std::size_t> partition_by_items(const Dataset& data, std::size_t parts);

}  // namespace septa::crf
