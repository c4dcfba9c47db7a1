// libFuzzer target: the model loader over arbitrary file bytes (most stop at the checksum).
#include <cstddef>
#include <cstdint>

#include "model_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  septa::fuzz::exercise_model(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
