// Encoder::merge_across: the dictionaries of training data spread over ranks.
#include "crf/features/encoder.h"
#include "crf/parallel/collective.h"
#include "septa/error.h"

namespace septa::crf {

void Encoder::merge_across(Communicator& comm, Dataset& data, const std::string& name,
                           std::string* attribute_slice) {
  if (comm.size() == 1) return;
  std::vector<uint64_t> most{columns_}, least{columns_ == 0 ? UINT64_MAX : columns_};
  comm.allreduce(most, Communicator::Op::kMax);
  comm.allreduce(least, Communicator::Op::kMin);
  if (most[0] != least[0] && least[0] != UINT64_MAX)
    throw FormatError(name + ": parts of the file have " + std::to_string(least[0]) + " and " +
                      std::to_string(most[0]) + " columns");
  columns_ = most[0];
  const std::vector<int32_t> attribute_ids = merge_dictionary(attributes_, comm, attribute_slice);
  const std::vector<int32_t> label_ids = merge_dictionary(labels_, comm);
  for (int32_t& id : data.attribute_ids) id = attribute_ids[id];
  for (int32_t& id : data.edge_ids) id = attribute_ids[id];
  for (int32_t& label : data.labels)
    if (label >= 0) label = label_ids[label];
}

}  // namespace septa::crf
