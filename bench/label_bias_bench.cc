// The label-bias experiment (Lafferty et al. 2001): train each algorithm on 2,000 noisy rib/rob
// sequences, report token and sequence error on 500 test sequences.
//
//   label_bias_bench [--train N] [--test N] [--seed S]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "septa/crf/feature_template.h"
#include "bench/label_bias.h"
#include "septa/crf/trainer.h"

int main(int argc, char** argv) {
  using namespace septa::crf;
  std::size_t train_count = 2000, test_count = 500;
  uint64_t seed = 1;
  for (int i = 1; i < argc; i += 2) {
    const std::string name = argv[i];
    if (name == "--help" || name == "-h") {
      std::printf("usage: label_bias_bench [--train N] [--test N] [--seed S]\n");
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "usage: label_bias_bench [--train N] [--test N] [--seed S]\n");
      return 2;
    }
    if (name == "--train") train_count = std::strtoul(argv[i + 1], nullptr, 10);
    else if (name == "--test") test_count = std::strtoul(argv[i + 1], nullptr, 10);
    else if (name == "--seed") seed = std::strtoull(argv[i + 1], nullptr, 10);
    else {
      std::fprintf(stderr, "usage: label_bias_bench [--train N] [--test N] [--seed S]\n");
      return 2;
    }
  }
  const auto train_data = generate_rib_rob(train_count, seed);
  const auto test_data = generate_rib_rob(test_count, seed + 1000);
  const FeatureTemplate features = FeatureTemplate::parse("U00:%x[0,0]\nB\n", "rib-rob template");
  std::printf("label bias (rib/rob, noise 3/32): %zu training, %zu test sequences\n", train_count,
              test_count);
  std::printf("%-16s %12s %15s\n", "algorithm", "token error", "sequence error");
  for (const char* algorithm : {"lbfgs", "separate", "separate-counts", "piecewise", "memm"}) {
    TrainOptions options;
    options.algorithm = algorithm;
    const Model model = train(train_data, "rib-rob", features, options).model;
    std::size_t token_errors = 0, sequence_errors = 0;
    for (const ColumnSentence& s : test_data) {
      const auto guess = model.tag(s).labels;
      bool wrong = false;
      for (std::size_t t = 0; t < guess.size(); ++t)
        if (guess[t] != s.columns[t][1]) {
          ++token_errors;
          wrong = true;
        }
      sequence_errors += wrong;
    }
    std::printf("%-16s %11.1f%% %14.1f%%\n", algorithm, 100.0 * token_errors / (3.0 * test_count),
                100.0 * sequence_errors / test_count);
  }
  return 0;
}
