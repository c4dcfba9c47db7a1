// libFuzzer target: template parsing and feature expansion. The input is a template, then a
// NUL byte, then column data the template is expanded over.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "septa/crf/corpus.h"
#include "septa/crf/feature_template.h"
#include "septa/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::size_t split = bytes.find('\0');
  try {
    const auto tmpl = septa::crf::FeatureTemplate::parse(bytes.substr(0, split), "fuzz.template");
    if (split == std::string::npos) return 0;
    std::istringstream in(bytes.substr(split + 1));
    const auto sentences =
        septa::crf::read_columns(in, "fuzz.txt", 1, /*first_line=*/1, /*max_line_bytes=*/4096);
    std::vector<std::string> expanded;
    for (const auto& sentence : sentences)
      for (std::size_t t = 0; t < sentence.columns.size(); ++t) {
        expanded.clear();
        tmpl.expand(sentence, t, expanded);
        if (expanded.size() != tmpl.unigram_count()) __builtin_trap();
      }
  } catch (const septa::Error&) {
  }
  return 0;
}
