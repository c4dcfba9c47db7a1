// libFuzzer target: the IDX (MNIST / Fashion-MNIST) parser, plain and gzip.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "nn/data/idx.h"
#include "septa/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  try {
    const auto array = septa::nn::parse_idx(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.idx");
    uint64_t elements = 1;
    for (int64_t d : array.dims) elements *= static_cast<uint64_t>(d);
    if (elements != array.data.size()) __builtin_trap();  // the header must describe the data
  } catch (const septa::Error&) {
  }
  return 0;
}
