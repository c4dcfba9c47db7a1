// libFuzzer target: the CRFsuite attribute reader, then the encoder over what it read.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "crf/features/dataset.h"
#include "crf/features/encoder.h"
#include "septa/crf/corpus.h"
#include "septa/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  try {
    const auto sequences = septa::crf::read_attributes(in, "fuzz", /*max_line_bytes=*/4096);
    septa::crf::Encoder encoder;
    septa::crf::Dataset encoded;
    encoder.encode_training(sequences, encoded);
    if (encoded.size() != sequences.size()) __builtin_trap();
  } catch (const septa::Error&) {
  }
  return 0;
}
