// The library's own access to a Model's private parts (the public face shows neither).
#pragma once

#include <memory>
#include <utility>

#include "crf/scoring/scorer.h"
#include "septa/crf/model.h"

namespace septa::crf {

struct ModelAccess {
  static Model make(std::shared_ptr<const ModelData> data) { return Model(std::move(data)); }
  static const ModelData& data(const Model& model) { return model.data(); }
};

}  // namespace septa::crf
