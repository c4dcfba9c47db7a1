// septa tag: echoes each input line with the predicted label appended as a last column.
#include <cstdio>
#include <iostream>
#include <sstream>
#include <type_traits>

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
  std::cout << "usage: septa tag -m MODEL [--marginals] [-o OUT] FILE|-\n\n"
               "Writes each input line followed by the predicted label as a last column (blank\n"
               "lines kept), so the output feeds 'septa eval' and conlleval directly. FILE is in\n"
               "the model's input format, with or without the gold label column. For CRFsuite\n"
               "attribute input each line becomes 'GOLD GUESS'. '-' reads standard input.\n"
               "-DOCSTART- lines are kept (with the label O), not tagged.\n\n"
               "  -m, --model FILE   the model (required)\n"
               "  --marginals        also write, after the predicted label, a tab and then\n"
               "                     'label:P(y_t=label|x)' for every label, and before each\n"
               "                     sentence a line '# log P(y|x) = ...' (CRF++ -v2 style;\n"
               "                     such output is for inspection, not for eval)\n"
               "  -o, --output FILE  write there (atomically) instead of standard output\n";
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
  if constexpr (std::is_same_v<Sentence, crf::ColumnSentence>) {
    // Document markers are not tagged but kept, with the outside label, so that the output
    // lines up with the input and conlleval counts them as it would in the gold file.
    for (const std::string& marker : sentence.markers_before) out << marker << " O\n\n";
  }
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

// A column file read as attribute format has no tab-separated attributes at all: every line is
// one "label". Tagging it would give nonsense, so refuse it with the reason.
void reject_column_input(const std::vector<crf::AttributeSequence>& sequences,
                         const std::string& name) {
  for (const crf::AttributeSequence& sequence : sequences)
    for (const auto& attributes : sequence.attributes)
      if (!attributes.empty()) return;
  if (sequences.empty()) return;
  throw FormatError(name + ":" + std::to_string(sequences.front().first_line) +
                    ": no tab-separated attributes in the whole file; the model was trained on "
                    "CRFsuite attribute format (LABEL<TAB>attr<TAB>...), and this looks like "
                    "column format");
}

}  // namespace

int run_tag(int argc, char** argv) {
  const Arguments args(argc, argv, {"model", "output"}, {"help", "marginals"},
                       {{"-m", "model"}, {"-o", "output"}, {"-h", "help"}});
  if (args.has("help")) {
    print_help();
    return 0;
  }
  if (args.positional().size() != 1) throw UsageError("expected one input FILE");
  const crf::Model model = crf::Model::load(args.require("model"));
  const std::string path = args.positional()[0];
  const std::string name = path == "-" ? "<stdin>" : path;
  const bool marginals = args.has("marginals");
  std::ostringstream buffered;
  std::ostream& out = args.has("output") ? buffered : std::cout;
  if (model.input_format() == crf::InputFormat::kColumns) {
    const auto sentences =
        path == "-" ? crf::read_columns(std::cin, name) : crf::read_columns_file(path);
    for (const crf::ColumnSentence& sentence : sentences) {
      try {
        write_sentence(model, sentence, marginals, out);
      } catch (const FormatError& e) {
        throw FormatError(name + ": " + e.what());
      }
    }
  } else {
    const auto sequences =
        path == "-" ? crf::read_attributes(std::cin, name) : crf::read_attributes_file(path);
    reject_column_input(sequences, name);
    for (const crf::AttributeSequence& sequence : sequences)
      write_sentence(model, sequence, marginals, out);
  }
  if (args.has("output")) write_file_atomically(args.get("output"), buffered.str());
  out.flush();
  return 0;
}

}  // namespace septa::cli
