// libFuzzer target: the conlleval reader and report.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "septa/crf/evaluation.h"
#include "septa/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  try {
    const auto result = septa::crf::evaluate_stream(in, "fuzz", septa::crf::TagScheme::kIobes, 4096);
    if (result.overall.correct > result.overall.gold ||
        result.overall.correct > result.overall.guessed)
      __builtin_trap();  // a correct chunk is both a gold and a guessed chunk
    std::ostringstream report;
    septa::crf::write_conlleval_report(result, report);
  } catch (const septa::Error&) {
  }
  return 0;
}
