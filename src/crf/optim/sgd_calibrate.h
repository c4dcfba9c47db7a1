// Private to src/crf/optim: the SGD rate chosen on a sample (Bottou's calibration).
#ifndef SEPTA_CRF_OPTIM_SGD_CALIBRATE_H
#define SEPTA_CRF_OPTIM_SGD_CALIBRATE_H

#include <cstddef>
#include <vector>

#include "crf/optim/sgd.h"

namespace septa::crf {

// The rate of kRates with the lowest objective on `sample` from `w0` (see sgd_calibrate.cc).
double calibrate_rate(const Dataset& data, const std::vector<LocalInstance>& instances,
                      const std::vector<std::size_t>& sample, const SoftmaxModelShape& shape,
                      const std::vector<double>& w0, double c2, std::size_t N, int threads,
                      Communicator* ranks, const ListedFeatureCache* cache,
                      const RangeCache* range_cache);

}  // namespace septa::crf

#endif  // SEPTA_CRF_OPTIM_SGD_CALIBRATE_H
