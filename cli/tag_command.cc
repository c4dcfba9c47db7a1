// septa tag: echoes each input line with the predicted label appended as a last column.
#include <cstdio>
#include <iostream>
#include <sstream>

#include "arguments.h"
#include "commands.h"
#include "interrupt.h"
#include "septa/atomic_file.h"
#include "septa/crf/corpus.h"
#include "septa/crf/model.h"
#include "septa/error.h"

namespace septa::cli {
namespace {

void print_help() {
  std::cout << "usage: septa tag -m MODEL [--marginals] [-o OUT] FILE\n\n"
               "Writes each input line followed by the predicted label as a last column (blank\n"
               "lines kept), so the output feeds 'septa eval' and conlleval directly. FILE is in\n"
               "the model's input format, with or without the gold label column. For CRFsuite\n"
               "attribute input each line becomes 'GOLD GUESS'.\n\n"
               "  -m, --model FILE   the model (required)\n"
               "  --marginals        also write, after the predicted label, a tab and then\n"
               "                     'label:P(y_t=label|x)' for every label, and before each\n"
               "                     sentence a line '# log P(y|x) = ...' (CRF++ -v2 style;\n"
               "                     such output is for inspection, not for eval)\n"
               "  -o, --output FILE  write there (atomically) instead of standard output\n"
               "  --max-line-bytes N   refuse longer input lines (default 16 MiB)\n"
               "  --max-model-bytes N  refuse larger model files (default 4 GiB)\n";
}

// Column input: the line itself. Attribute input: its gold label (the line's first field), so
// that the last two columns are gold and guess either way.
const std::string& echo(const crf::ColumnSentence& sentence, std::size_t t) {
  return sentence.lines[t];
}
const std::string& echo(const crf::AttributeSequence& sequence, std::size_t t) {
  return sequence.labels[t];
}

template <typename Sentence>
void write_sentence(const crf::Model& model, const Sentence& sentence, bool marginals,
                    std::ostream& out) {
  const crf::TagResult result = model.tag(sentence, marginals);
  if (marginals) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "# log P(y|x) = %.6f\n", result.log_probability);
    out << buffer;
  }
  for (std::size_t t = 0; t < result.labels.size(); ++t) {
    out << echo(sentence, t) << ' ' << result.labels[t];
    if (marginals) {
      out << '\t';
      for (std::size_t j = 0; j < result.marginals[t].size(); ++j) {
        char buffer[64];
        std::snprintf(buffer, sizeof buffer, "%s%s:%.6f", j ? " " : "",
                      model.labels()[j].c_str(), result.marginals[t][j]);
        out << buffer;
      }
    }
    out << '\n';
  }
  out << '\n';
}

}  // namespace

int run_tag(int argc, char** argv) {
  const Arguments args(argc, argv, {"model", "output", "max-line-bytes", "max-model-bytes"},
                       {"help", "marginals"},
                       {{"-m", "model"}, {"-o", "output"}, {"-h", "help"}});
  if (args.has("help")) {
    print_help();
    return 0;
  }
  if (args.positional().size() != 1) throw UsageError("expected one input FILE");
  const crf::Model model = crf::Model::load(
      args.require("model"), args.limit("max-model-bytes", crf::kDefaultMaxModelBytes));
  const std::size_t max_line = args.limit("max-line-bytes", crf::kDefaultMaxLineBytes);
  const std::string path = args.positional()[0];
  const bool marginals = args.has("marginals");
  std::ostringstream buffered;
  std::ostream& out = args.has("output") ? buffered : std::cout;
  if (model.input_format() == crf::InputFormat::kColumns) {
    for (const crf::ColumnSentence& sentence : crf::read_columns_file(path, 1, max_line)) {
      try {
        write_sentence(model, sentence, marginals, out);
      } catch (const FormatError& e) {
        throw FormatError(path + ": " + e.what());
      }
      if (!out) check_stdout();  // stop at the first lost write (full disk)
    }
  } else {
    for (const crf::AttributeSequence& sequence : crf::read_attributes_file(path, max_line)) {
      write_sentence(model, sequence, marginals, out);
      if (!out) check_stdout();
    }
  }
  if (args.has("output")) write_file_atomically(args.get("output"), buffered.str());
  check_stdout();
  return 0;
}

}  // namespace septa::cli
