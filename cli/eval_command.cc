// septa eval: conlleval's report for lines whose last two columns are gold and guess.
#include <sys/stat.h>

#include <fstream>
#include <iostream>

#include "arguments.h"
#include "commands.h"
#include "plot.h"
#include "septa/crf/evaluation.h"
#include "septa/error.h"

namespace septa::cli {

int run_eval(int argc, char** argv) {
  const Arguments args(argc, argv, {"scheme", "confusion-plot", "max-line-bytes"}, {"help", "confusion"},
                       {{"-h", "help"}});
  if (args.has("help")) {
    std::cout << "usage: septa eval [--scheme iob|iobes] FILE|-\n\n"
                 "Chunk/entity precision, recall and F1 per type and overall, and token accuracy,\n"
                 "computed exactly as conlleval does, from lines whose last two columns are the\n"
                 "gold and the guessed tag. IOB1 and IOB2 work as they are; IOBES with --scheme\n"
                 "iobes. '-' reads standard input.\n\n"
                 "  --scheme iob|iobes      the tag encoding (default iob)\n"
                 "  --confusion             also print the token-level confusion of chunk types\n"
                 "                          (rows gold, columns guess; O for outside)\n"
                 "  --confusion-plot FILE   draw that matrix (row percentages) to FILE.png or\n"
                 "                          FILE.svg with gnuplot\n"
                 "  --max-line-bytes N      refuse longer lines (default 16 MiB)\n";
    return 0;
  }
  if (args.positional().size() != 1) throw UsageError("expected one FILE (or - for stdin)");
  const std::string scheme_name = args.get("scheme", "iob");
  if (scheme_name != "iob" && scheme_name != "iobes")
    throw OptionError("option --scheme: invalid value '" + scheme_name +
                      "' (allowed: iob, iobes)");
  const crf::TagScheme scheme = scheme_name == "iob" ? crf::TagScheme::kIob : crf::TagScheme::kIobes;
  const std::string path = args.positional()[0];
  const std::size_t max_line = args.limit("max-line-bytes", crf::kDefaultMaxLineBytes);
  crf::EvaluationResult result;
  if (path == "-") {
    result = crf::evaluate_stream(std::cin, "<stdin>", scheme, max_line);
  } else {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
      throw IoError(path + ": is a directory, not a file to evaluate");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(path + ": cannot open");
    result = crf::evaluate_stream(in, path, scheme, max_line);
  }
  crf::write_conlleval_report(result, std::cout);
  if (args.has("confusion")) {
    std::cout << "\n";
    crf::write_confusion_matrix(result, std::cout);
  }
  if (args.has("confusion-plot")) plot_confusion(result, args.get("confusion-plot"));
  check_stdout();
  return 0;
}

}  // namespace septa::cli
