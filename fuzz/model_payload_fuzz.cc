// libFuzzer target: the model loader with the checksum recomputed. The input is a model payload
// (the bytes between the header and the checksum), framed into a valid file, so every input
// reaches the payload checks as a forger's file would.
#include <cstddef>
#include <cstdint>

#include "crf/model/model_file.h"
#include "model_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  septa::fuzz::exercise_model(septa::crf::frame_model_payload(
      std::string(reinterpret_cast<const char*>(data), size)));
  return 0;
}
