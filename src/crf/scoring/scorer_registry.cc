// Maps the algorithm recorded in a model file to the scorer that reads its weights.
#include "crf/scoring/linear_chain.h"
#include "crf/scoring/scorer.h"
#include "crf/scoring/separate_scorer.h"
#include "crf/scoring/count_scorer.h"
#include "crf/scoring/memm_scorer.h"

namespace septa::crf {

std::unique_ptr<Scorer> read_scorer(const std::string& algorithm, ByteReader& in) {
  if (algorithm == "lbfgs" || algorithm == "piecewise" || algorithm == "ap" || algorithm == "pa" ||
      algorithm == "arow" || algorithm == "l2sgd")
    return LinearChainScorer::read(in);
  if (algorithm == "separate") return SeparateScorer::read(in);
  if (algorithm == "separate-counts") return CountScorer::read(in);
  if (algorithm == "memm") return MemmScorer::read(in);
  in.fail("unknown algorithm '" + algorithm + "'");
}

}  // namespace septa::crf
