// libFuzzer target: the column (CoNLL / CRF++) reader over arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "septa/crf/corpus.h"
#include "septa/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  try {
    const auto sentences =
        septa::crf::read_columns(in, "fuzz", 1, /*first_line=*/1, /*max_line_bytes=*/4096);
    for (const auto& sentence : sentences)
      if (sentence.columns.empty() || sentence.columns.size() != sentence.lines.size())
        __builtin_trap();  // the reader promises non-empty sentences, one line per token
  } catch (const septa::Error&) {
  }
  return 0;
}
