// Forged model files for the tests of corrupt input: payloads that pass the checksum and reach
// the payload checks.
#pragma once

#include <string>
#include <vector>

#include "crf/io/binary_io.h"
#include "crf/model/model_file.h"

namespace septa::crf::testing {

// An lbfgs attribute-format model whose attribute list names "x" twice ({"x", "y", "x"}; one
// label, one feature per attribute), with the weights [4] given (3 features and 1 transition).
inline std::string model_with_an_attribute_named_twice(const std::vector<double>& weights) {
  ByteWriter out;
  out.str("lbfgs");
  out.u8(1);
  out.u64(0);
  out.str("");
  out.strings({"A"});
  out.strings({"x", "y", "x"});
  out.u64(1);  // L
  out.u64(3);  // A
  out.u64(1);  // K
  out.vec(std::vector<uint32_t>{0, 1, 2, 3});
  out.vec(std::vector<int32_t>{0, 0, 0});
  out.vec(weights);
  return frame_model_payload(out.bytes());
}

}  // namespace septa::crf::testing
