// libFuzzer target: the column (CoNLL / CRF++) reader over arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "septa/crf/corpus.h"
#include "septa/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  try {
    std::vector<septa::crf::ColumnEcho> echo;
    const auto sentences = septa::crf::read_columns(in, "fuzz", 1, /*first_line=*/1,
                                                    /*max_line_bytes=*/4096, &echo);
    if (echo.size() != sentences.size()) __builtin_trap();  // one echo per sentence
    for (std::size_t n = 0; n < sentences.size(); ++n)
      if (sentences[n].columns.empty() || sentences[n].columns.size() != echo[n].lines.size())
        __builtin_trap();  // the reader promises non-empty sentences, one line per token
  } catch (const septa::Error&) {
  }
  return 0;
}
