// Shared body of the model-loader targets: load, then use every part of a loaded model.
#pragma once

#include <sstream>
#include <string>

#include "septa/crf/model.h"
#include "septa/error.h"

namespace septa::fuzz {

inline void exercise_model(const std::string& bytes) {
  try {
    const crf::Model model = crf::Model::from_bytes(bytes, "fuzz.model");
    std::ostringstream sink;
    model.dump(sink, 10);
    model.state_features();
    model.transition_features();
    if (model.input_format() == crf::InputFormat::kColumns) {
      if (model.columns() > 64) return;
      crf::ColumnSentence sentence;
      for (std::size_t t = 0; t < 3; ++t)
        sentence.columns.emplace_back(model.columns() - (t == 2 ? 1 : 0), "w" + std::to_string(t));
      model.tag(sentence, /*marginals=*/true);
    } else {
      crf::AttributeSequence sequence;
      sequence.labels = {"A", "B"};
      for (const std::string& label : model.labels()) sequence.labels.push_back(label);
      for (std::size_t t = 0; t < sequence.labels.size(); ++t)
        sequence.attributes.push_back({{"x", 1.0}, {"y", -2.0}});
      model.tag(sequence, /*marginals=*/true);
    }
    model.to_bytes();
  } catch (const Error&) {
  }
}

}  // namespace septa::fuzz
