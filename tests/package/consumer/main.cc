// Trains and tags through the installed public headers only: prints the tags of a training
// sentence, which the test compares with its gold labels.
#include <iostream>
#include <vector>

#include "septa/crf/corpus.h"
#include "septa/crf/feature_template.h"
#include "septa/crf/model.h"
#include "septa/crf/trainer.h"
#include "septa/error.h"

int main() {
  using namespace septa::crf;
  const std::vector<std::vector<std::string>> words = {
      {"the", "DT", "B-NP"}, {"cat", "NN", "I-NP"}, {"sat", "VBD", "B-VP"}};
  ColumnSentence sentence;
  sentence.first_line = 1;
  for (const auto& columns : words) sentence.columns.push_back(columns);
  const std::vector<ColumnSentence> data(3, sentence);
  try {
    TrainOptions options;
    options.max_iterations = 50;
    const TrainResult result =
        train(data, "consumer", FeatureTemplate::default_chunking(), options);
    for (const std::string& label : result.model.tag(sentence).labels) std::cout << label << " ";
    std::cout << "\n";
  } catch (const septa::Error& error) {
    std::cerr << "consumer: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
