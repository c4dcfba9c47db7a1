// The training algorithms: one table entry per algorithm (name, help, trainer, scorer reader).
// The table is the only place outside an algorithm's own files that a new algorithm touches:
// option parsing, the CLI help, training and model loading all read it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "crf/algorithms/training_context.h"
#include "crf/io/binary_io.h"
#include "crf/scoring/scorer.h"

namespace septa::crf {

// Reads the scorer that an algorithm's model file holds.
using ScorerReader = std::unique_ptr<Scorer> (*)(ByteReader& in);

struct AlgorithmEntry {
  const char* name;           // --algorithm value, also recorded in model files
  const char* help;           // one line for the CLI help
  TrainFunction train;
  ScorerReader read_scorer;
};

// All algorithms, in help order.
const std::vector<AlgorithmEntry>& algorithm_table();
// The entry named `name`, or nullptr.
const AlgorithmEntry* find_algorithm(const std::string& name);

// Reads the scorer of `algorithm` from a model file; fails `in` for an unknown algorithm.
std::unique_ptr<Scorer> read_scorer(const std::string& algorithm, ByteReader& in);

}  // namespace septa::crf
