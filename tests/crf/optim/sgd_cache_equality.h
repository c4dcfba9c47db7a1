// Shared check of the SGD's feature caches: the sharded SGD over a problem whose attribute
// values are flagged as unit (cached path) and over the same values not flagged (looked-up
// path) must give the same weights bit for bit, on 1 and 3 threads.
#pragma once

#include <gtest/gtest.h>

#include <vector>

#include "crf/optim/sgd.h"
#include "crf/random_data.h"

namespace septa::crf::testing {

// Problem: any fixture with members data, instances and shape.
template <class Problem>
void expect_cached_sgd_equals_looked_up(const Problem& unit, const Problem& plain) {
  ShardedSgdOptions options;
  options.shards = 5;
  options.mixes = 3;
  options.epochs = 3;
  options.c2 = 0.5;
  const std::vector<double> w0 = random_weights(unit.shape.dimension(), 0.1, 5);
  for (int threads : {1, 3}) {
    std::vector<double> cached = w0, looked_up = w0;
    const ShardedSgd a(unit.data, unit.instances, unit.shape, options, w0, threads);
    fit_sharded_sgd(a, options.epochs, options.c2, threads, cached, {});
    const ShardedSgd b(plain.data, plain.instances, plain.shape, options, w0, threads);
    fit_sharded_sgd(b, options.epochs, options.c2, threads, looked_up, {});
    EXPECT_EQ(cached, looked_up) << threads << " threads";
    EXPECT_NE(cached, w0);
  }
}

}  // namespace septa::crf::testing
