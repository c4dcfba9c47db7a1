// libFuzzer target: the safetensors reader (header JSON, offsets, dtypes, checksum).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "safetensors/safetensors.h"
#include "septa/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  try {
    const auto reader = septa::safetensors::Reader::from_bytes(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.safetensors");
    reader.verify_checksum();
    std::vector<float> values;
    for (const auto& info : reader.tensors()) {
      reader.data(info);
      if (info.nbytes() > (1u << 20)) continue;
      try {
        values.resize(info.nbytes());
        reader.read_f32(info, values.data());
      } catch (const septa::Error&) {
      }
    }
  } catch (const septa::Error&) {
  }
  return 0;
}
