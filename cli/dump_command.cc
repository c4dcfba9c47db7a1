// septa dump: a model as readable text.
#include <climits>
#include <cstdlib>
#include <iostream>

#include "arguments.h"
#include "commands.h"
#include "septa/crf/model.h"
#include "septa/error.h"
#include "util/parse_int.h"

namespace septa::cli {

int run_dump(int argc, char** argv) {
  const Arguments args(argc, argv, {"model", "top", "max-model-bytes"}, {"help"}, {{"-m", "model"}, {"-h", "help"}});
  if (args.has("help")) {
    std::cout << "usage: septa dump -m MODEL [--top N]\n\n"
                 "Prints the algorithm, template, labels, transition weights and the N state\n"
                 "features of largest |weight| (default 50).\n\n"
                 "  --max-model-bytes N  refuse larger model files (default 4 GiB)\n";
    return 0;
  }
  if (!args.positional().empty()) throw UsageError("unexpected argument " + args.positional()[0]);
  const std::string top_text = args.get("top", "50");
  long long top = 0;
  if (!util::parse_int(top_text, 0, LLONG_MAX, top))
    throw OptionError("option --top: invalid value '" + top_text + "' (allowed: 0 or more)");
  crf::Model::load(args.require("model"),
                   args.limit("max-model-bytes", crf::kDefaultMaxModelBytes))
      .dump(std::cout, static_cast<std::size_t>(top));
  check_stdout();
  return 0;
}

}  // namespace septa::cli
