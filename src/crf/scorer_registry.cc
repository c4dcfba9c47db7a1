// Maps the algorithm recorded in a model file to the scorer that reads its weights.
#include "crf/linear_chain.h"
#include "crf/scorer.h"
#include "crf/separate_scorer.h"
#include "crf/count_scorer.h"
#include "crf/memm_scorer.h"

namespace septa::crf {

std::unique_ptr<Scorer> read_scorer(const std::string& algorithm, ByteReader& in) {
  if (algorithm == "lbfgs" || algorithm == "piecewise") return LinearChainScorer::read(in);
  if (algorithm == "separate") return SeparateScorer::read(in);
  if (algorithm == "separate-counts") return CountScorer::read(in);
  if (algorithm == "memm") return MemmScorer::read(in);
  in.fail("unknown algorithm '" + algorithm + "'");
}

}  // namespace septa::crf
