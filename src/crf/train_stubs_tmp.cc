// TEMPORARY: algorithms not written yet.
#include "crf/training_context.h"
#include "septa/error.h"
namespace septa::crf {
AlgorithmResult train_piecewise(const TrainingContext&) { throw OptionError("option --algorithm: piecewise is not available yet"); }
AlgorithmResult train_separate_counts(const TrainingContext&) { throw OptionError("option --algorithm: separate-counts is not available yet"); }
AlgorithmResult train_memm(const TrainingContext&) { throw OptionError("option --algorithm: memm is not available yet"); }
}
