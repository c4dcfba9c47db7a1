// septa tag: echoes each input line with the predicted label appended as a last column.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>

#include "arguments.h"
#include "commands.h"
#include "interrupt.h"
#include "septa/crf/corpus.h"
#include "septa/crf/evaluation.h"
#include "septa/crf/model.h"
#include "septa/crf/options.h"
#include "septa/error.h"
#include "util/atomic_file.h"
#include "util/parse_int.h"

namespace septa::cli {
namespace {

void print_help() {
  std::cout << "usage: septa tag -m MODEL [-n K] [-p] [-i] [-v1|-v2] [--marginals] [-t|-q|-qt]\n"
               "                 [--iob-constraints] [--constraints RULES] [--force] [-o OUT]\n"
               "                 [--threads N] FILE|-\n\n"
               "Writes each input line followed by the predicted label as a last column (blank\n"
               "lines kept), so the output feeds 'septa eval' and conlleval directly. FILE is in\n"
               "the model's input format, with or without the gold label column. For CRFsuite\n"
               "attribute input each line becomes 'GOLD GUESS'. '-' reads standard input.\n"
               "-DOCSTART- lines are kept (with the label O), not tagged.\n\n"
               "  -m, --model FILE    the model (required)\n"
               "  -p, --probability   before each sentence a line '@probability\tP(y|x)' of the\n"
               "                      predicted labelling (CRFsuite's tag -p)\n"
               "  -i, --marginal      after each predicted label a tab and its marginal\n"
               "                      P(y_t = label | x) (CRFsuite's tag -i)\n"
               "  -v1, -v2            CRF++'s crf_test -v1/-v2 layout: '# P(y|x)' before each\n"
               "                      sentence, 'label/P' per token, and with -v2 'l/P(l)' for\n"
               "                      every label\n"
               "  -n, --nbest K       the K most probable labellings of each sentence, each\n"
               "                      preceded by '# RANK P(y|x)' (CRF++'s crf_test -n)\n"
               "  --marginals         a tab and 'label:P(y_t=label|x)' for every label, and\n"
               "                      '# log P(y|x) = ...' before each sentence\n"
               "  -qt, --evaluate     print only conlleval's report of the predictions against\n"
               "                      the gold labels of FILE (CRFsuite's tag -qt)\n"
               "  -t, --test          the tagged output, then that report (CRFsuite's tag -t)\n"
               "  -q, --quiet         no tagged output (CRFsuite's tag -q; with -t: -qt)\n"
               "  -r, --reference     accepted for CRFsuite's tag -r: the output always carries\n"
               "                      the reference (the input line, gold label included)\n"
               "  --iob-constraints   never predict what IOB2 cannot encode (O -> I-PER, B-LOC ->\n"
               "                      I-PER, I-PER first)\n"
               "  --constraints FILE  transition rules, one per line: 'forbid PREV CUR' or\n"
               "                      'allow PREV CUR' ('*' any label), applied in order after\n"
               "                      --iob-constraints\n"
               "  --force             keep the labels given in the input's last column (Wapiti's\n"
               "                      --force); '_' there marks the items to predict\n"
               "  -o, --output FILE   write there (atomically) instead of standard output\n"
               "  --threads N         sentences tagged on N threads (1 to 256, default the\n"
               "                      cores); the output does not depend on it\n"
               "  --max-line-bytes N  refuse longer input lines (default 16 MiB)\n"
               "  --max-model-bytes N refuse larger model files (default 4 GiB)\n"
               "Output with -p, -i, -v1, -v2 or --marginals is for inspection, not for eval.\n";
}

struct Decoding {
  crf::DecodeConstraints constraints;  // transitions (the forced labels are set per sentence)
  bool force = false;
};

// A forced label the model does not know is an error of the input file, named by its place.
template <typename Place>
void check_forced_labels(const crf::Model& model, const std::vector<std::string>& forced,
                         Place place) {
  const std::vector<std::string>& labels = model.labels();
  for (std::size_t t = 0; t < forced.size(); ++t)
    if (!forced[t].empty() && std::find(labels.begin(), labels.end(), forced[t]) == labels.end())
      throw FormatError(place(t) + ": forced label '" + forced[t] +
                        "' is not a label of the model");
}

// The constraints of one sentence: the transition rules plus, with --force, its given labels.
crf::DecodeConstraints sentence_constraints(const Decoding& decoding, const crf::Model& model,
                                            const crf::ColumnSentence& sentence) {
  crf::DecodeConstraints c = decoding.constraints;
  if (!decoding.force) return c;
  if (!model.has_gold_column(sentence))
    throw FormatError(crf::item_place(sentence, 0) +
                      ": --force needs a label column ('_' for the items to predict)");
  for (const auto& columns : sentence.columns)
    c.forced.push_back(columns.back() == "_" ? std::string() : columns.back());
  check_forced_labels(model, c.forced, [&](std::size_t t) { return crf::item_place(sentence, t); });
  return c;
}
crf::DecodeConstraints sentence_constraints(const Decoding& decoding, const crf::Model& model,
                                            const crf::AttributeSequence& sequence) {
  crf::DecodeConstraints c = decoding.constraints;
  if (!decoding.force) return c;
  for (const std::string& label : sequence.labels)
    c.forced.push_back(label == "_" ? std::string() : label);
  check_forced_labels(model, c.forced, [&](std::size_t t) { return crf::item_place(sequence, t); });
  return c;
}

struct OutputStyle {
  std::size_t nbest = 0;           // -n K
  bool probability = false;        // -p
  bool predicted_marginal = false; // -i
  int crfpp_verbose = 0;           // -v1, -v2
  bool all_marginals = false;      // --marginals
  bool needs_marginals() const {
    return probability || predicted_marginal || crfpp_verbose > 0 || all_marginals;
  }
};

// What stands before each predicted label: for column input the input line itself, for
// attribute input its gold label (the line's first field), so that the last two columns are
// gold and guess either way. Document markers (column input) are not tagged but kept, with the
// outside label, so that the output lines up with the input and conlleval counts them as it
// would in the gold file.
struct Echo {
  const std::vector<std::string>& items;    // [T]
  const std::vector<std::string>& markers;  // "-DOCSTART-" lines before the sentence
};

/*
 * The tagged text, built in one string and written in blocks of about 64 KiB (or, with -o, kept
 * whole for the atomic write): an ostream insertion per field (cout synchronised with stdio)
 * cost about as much as reading the input.
 */
class Output {
 public:
  // `stream` null: keep everything (take() at the end); else flush to it block by block.
  explicit Output(std::ostream* stream) : stream_(stream) {}
  std::string& text() { return text_; }
  Output& operator<<(const std::string& s) { text_ += s; return *this; }
  Output& operator<<(const char* s) { text_ += s; return *this; }
  Output& operator<<(char c) { text_ += c; return *this; }
  Output& operator<<(std::size_t n) { text_ += std::to_string(n); return *this; }
  // printf-style `pattern` with one %s (`text`) and one double.
  void format(const char* pattern, const char* text, double value) {
    char buffer[512];
    const int n = std::snprintf(buffer, sizeof buffer, pattern, text, value);
    if (n > 0) text_.append(buffer, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buffer - 1));
  }
  // Writes the pending text when a block is full; stops at the first lost write (full disk).
  void maybe_flush() {
    if (stream_ && text_.size() >= kBlock) flush();
  }
  void flush() {
    if (!stream_) return;
    errno = 0;
    stream_->write(text_.data(), static_cast<std::streamsize>(text_.size()));
    text_.clear();
    if (!*stream_) {
      const int error = errno;
      throw IoError(std::string("standard output: write failed") +
                    (error != 0 ? std::string(": ") + std::strerror(error) : std::string()));
    }
  }

 private:
  static constexpr std::size_t kBlock = std::size_t{1} << 16;
  std::ostream* stream_;
  std::string text_;
};

// Writes one sentence in `style`; returns its best labelling.
template <typename Sentence>
std::vector<std::string> write_sentence(const crf::Model& model, const Sentence& sentence,
                                        const Echo& echo, const OutputStyle& style,
                                        const Decoding& decoding, Output& out) {
  for (const std::string& marker : echo.markers) out << marker << " O\n\n";
  if (style.nbest > 0) {
    const auto results =
        model.tag_nbest(sentence, style.nbest, sentence_constraints(decoding, model, sentence));
    for (std::size_t k = 0; k < results.size(); ++k) {
      out << "# " << k;
      out.format(" %s%.6f\n", "", std::exp(results[k].log_probability));
      for (std::size_t t = 0; t < results[k].labels.size(); ++t)
        out << echo.items[t] << ' ' << results[k].labels[t] << '\n';
      out << '\n';
    }
    return results.empty() ? std::vector<std::string>() : results.front().labels;
  }
  crf::TagResult result = model.tag(sentence, style.needs_marginals(),
                                    sentence_constraints(decoding, model, sentence));
  const std::vector<std::string>& labels = model.labels();
  const double probability = std::exp(result.log_probability);
  if (style.probability) out.format("%s%.6f\n", "@probability\t", probability);
  if (style.crfpp_verbose > 0) out.format("%s%.6f\n", "# ", probability);
  if (style.all_marginals) out.format("%s%.6f\n", "# log P(y|x) = ", result.log_probability);
  for (std::size_t t = 0; t < result.labels.size(); ++t) {
    const std::string& label = result.labels[t];
    out << echo.items[t] << ' ' << label;
    std::size_t predicted = 0;
    if (style.needs_marginals())
      while (predicted < labels.size() && labels[predicted] != label) ++predicted;
    if (style.crfpp_verbose > 0) out.format("%s%.6f", "/", result.marginals[t][predicted]);
    if (style.predicted_marginal) out.format("%s%.6f", "\t", result.marginals[t][predicted]);
    if (style.crfpp_verbose > 1)
      for (std::size_t j = 0; j < labels.size(); ++j)
        out.format(" %s/%.6f", labels[j].c_str(), result.marginals[t][j]);
    if (style.all_marginals) {
      out << '\t';
      for (std::size_t j = 0; j < labels.size(); ++j)
        out.format(j ? " %s:%.6f" : "%s:%.6f", labels[j].c_str(), result.marginals[t][j]);
    }
    out << '\n';
  }
  out << '\n';
  return std::move(result.labels);
}

// The gold labels of a sentence, for --evaluate and --test.
std::vector<std::string> gold_labels(const crf::Model& model, const crf::ColumnSentence& sentence) {
  if (!model.has_gold_column(sentence))
    throw FormatError(crf::item_place(sentence, 0) +
                      ": --evaluate/--test needs the gold label as the last column");
  std::vector<std::string> gold;
  for (const auto& columns : sentence.columns) gold.push_back(columns.back());
  return gold;
}
std::vector<std::string> gold_labels(const crf::Model&, const crf::AttributeSequence& sequence) {
  return sequence.labels;
}

// What tagging one sentence gives: its text (unless quiet) and, for the report, its gold and
// predicted labels.
struct Tagged {
  std::string text;
  std::vector<std::string> gold, labels;
  std::exception_ptr error;  // set instead of the rest when tagging the sentence failed
};

// Tags one sentence: its text into `out` unless `quiet`, its labels into `tagged` (with the
// gold labels when `evaluate`).
template <typename Sentence>
void tag_sentence(const crf::Model& model, const Sentence& sentence, const Echo& echo,
                  const OutputStyle& style, const Decoding& decoding, bool quiet, bool evaluate,
                  Output& out, Tagged& tagged) {
  if (evaluate) tagged.gold = gold_labels(model, sentence);  // before any output: fail early
  tagged.labels =
      quiet ? model.tag(sentence, false, sentence_constraints(decoding, model, sentence)).labels
            : write_sentence(model, sentence, echo, style, decoding, out);
}

/*
 * Tags the sentences on `threads` threads, a batch at a time: the threads take the batch's
 * sentences in turn, each into its own text, and the texts are appended to `out` (and the
 * labels given to `evaluator`) in input order, so the output is the same for any thread count.
 * A sentence that fails stops the run after the sentences before it, with its own error, as
 * one thread would. The model's tagging keeps its scratch per thread.
 */
template <typename Sentence, typename EchoOf>
void tag_all(const crf::Model& model, const std::vector<Sentence>& sentences, EchoOf echo_of,
             const OutputStyle& style, const Decoding& decoding, bool quiet,
             crf::ChunkEvaluator* evaluator, int threads, Output& out) {
  constexpr std::size_t kBatch = 1024;  // sentences whose texts are held at once
  const std::size_t N = sentences.size();
  const std::size_t workers = std::min<std::size_t>(static_cast<std::size_t>(threads), N);
  if (workers <= 1) {  // straight into `out`
    Tagged tagged;
    for (std::size_t n = 0; n < N; ++n) {
      tag_sentence(model, sentences[n], echo_of(n), style, decoding, quiet, evaluator != nullptr,
                   out, tagged);
      if (evaluator) evaluator->add_sentence(tagged.gold, tagged.labels);
      out.maybe_flush();
    }
    return;
  }
  std::vector<Tagged> batch(std::min(N, kBatch));
  for (std::size_t begin = 0; begin < N; begin += kBatch) {
    const std::size_t end = std::min(N, begin + kBatch);
    std::atomic<std::size_t> next{begin};
    const auto work = [&] {
      Output text(nullptr);
      for (std::size_t n = next++; n < end; n = next++) {
        Tagged& tagged = batch[n - begin];
        text.text().swap(tagged.text);  // reuses the slot's buffer
        text.text().clear();
        try {
          tag_sentence(model, sentences[n], echo_of(n), style, decoding, quiet,
                       evaluator != nullptr, text, tagged);
        } catch (...) {
          tagged.error = std::current_exception();
        }
        text.text().swap(tagged.text);
      }
    };
    std::vector<std::thread> helpers;
    for (std::size_t w = 1; w < workers; ++w) helpers.emplace_back(work);
    work();
    for (std::thread& helper : helpers) helper.join();
    for (std::size_t n = begin; n < end; ++n) {
      Tagged& tagged = batch[n - begin];
      if (tagged.error) std::rethrow_exception(tagged.error);
      out.text() += tagged.text;
      if (evaluator) evaluator->add_sentence(tagged.gold, tagged.labels);
      out.maybe_flush();
    }
  }
}

// A column file read as attribute format has no tab-separated attributes at all: every line is
// one "label". Tagging it would give nonsense, so refuse it with the reason.
void reject_column_input(const std::vector<crf::AttributeSequence>& sequences) {
  for (const crf::AttributeSequence& sequence : sequences)
    for (const auto& attributes : sequence.attributes)
      if (!attributes.empty()) return;
  if (sequences.empty()) return;
  throw FormatError(crf::item_place(sequences.front(), 0) +
                    ": no tab-separated attributes in the whole file; the model was trained on "
                    "CRFsuite attribute format (LABEL<TAB>attr<TAB>...), and this looks like "
                    "column format");
}

}  // namespace

int run_tag(int argc, char** argv) {
  const Arguments args(argc, argv,
                       {"model", "output", "constraints", "max-line-bytes", "max-model-bytes",
                        "nbest", "threads"},
                       {"help", "marginals", "probability", "marginal", "v1", "v2", "evaluate",
                        "iob-constraints", "force", "test", "quiet", "reference"},
                       {{"-m", "model"}, {"-o", "output"}, {"-h", "help"}, {"-p", "probability"},
                        {"-i", "marginal"}, {"-v1", "v1"}, {"-v2", "v2"}, {"-qt", "evaluate"},
                        {"-tq", "evaluate"}, {"-t", "test"}, {"-q", "quiet"}, {"-r", "reference"},
                        {"-n", "nbest"}});
  if (args.has("help")) {
    print_help();
    return 0;
  }
  if (args.positional().size() != 1) throw UsageError("expected one input FILE");
  int threads = crf::default_threads();
  if (args.has("threads")) {
    const std::string n = args.get("threads");
    long long value = 0;
    if (!util::parse_int(n, 1, 256, value))
      throw OptionError("option --threads: invalid value '" + n + "' (allowed: 1 to 256)");
    threads = static_cast<int>(value);
  }
  const std::size_t max_line = args.limit("max-line-bytes", crf::kDefaultMaxLineBytes);
  const std::string path = args.positional()[0];
  const std::string name = path == "-" ? "<stdin>" : path;
  // With more than one thread, a regular file is read as columns while the model loads (most
  // models read columns; an attribute-format model reads the file again once loaded). Standard
  // input, pipes and devices are read once, after loading, as before; so is everything with
  // one thread.
  std::vector<crf::ColumnEcho> early_echoes;          // [N]
  std::vector<crf::ColumnSentence> early_sentences;  // [N]
  std::exception_ptr early_error;
  struct stat input_info {};
  const bool read_early = threads > 1 && path != "-" && stat(path.c_str(), &input_info) == 0 &&
                          S_ISREG(input_info.st_mode);
  std::thread early;
  if (read_early)
    early = std::thread([&] {
      try {
        early_sentences = crf::read_columns_file(path, 1, max_line, &early_echoes);
      } catch (...) {
        early_error = std::current_exception();
      }
    });
  crf::Model model;
  try {
    model = crf::Model::load(args.require("model"),
                             args.limit("max-model-bytes", crf::kDefaultMaxModelBytes),
                             std::min(threads, 2));
  } catch (...) {
    if (early.joinable()) early.join();
    throw;
  }
  if (early.joinable()) early.join();
  OutputStyle style;
  if (args.has("nbest")) {
    const std::string k = args.get("nbest");
    long long value = 0;
    if (!util::parse_int(k, 1, 100000, value))
      throw OptionError("option --nbest: invalid value '" + k + "' (allowed: 1 to 100000)");
    style.nbest = static_cast<std::size_t>(value);
  }
  style.probability = args.has("probability");
  style.predicted_marginal = args.has("marginal");
  style.crfpp_verbose = args.has("v2") ? 2 : args.has("v1") ? 1 : 0;
  style.all_marginals = args.has("marginals");
  // CRFsuite's -t (report after the output), -q (no output), -qt (report only). -r is accepted
  // and changes nothing: the output always carries the input line with its reference label.
  const bool quiet = args.has("evaluate") || args.has("quiet");
  const bool evaluate = args.has("evaluate") || args.has("test");
  Decoding decoding;
  decoding.force = args.has("force");
  if (args.has("iob-constraints") || args.has("constraints")) {
    const std::string rules_path = args.get("constraints");
    decoding.constraints = crf::transition_constraints(
        model.labels(), args.has("iob-constraints"),
        rules_path.empty() ? std::string() : read_file(rules_path), rules_path);
  }
  crf::ChunkEvaluator evaluator;
  Output out(args.has("output") ? nullptr : &std::cout);
  if (model.input_format() == crf::InputFormat::kColumns) {
    if (early_error) std::rethrow_exception(early_error);
    std::vector<crf::ColumnEcho> echoes = std::move(early_echoes);  // [N]
    const auto sentences =
        read_early ? std::move(early_sentences)
        : path == "-" ? crf::read_columns(std::cin, name, 1, 1, max_line, &echoes)
                      : crf::read_columns_file(path, 1, max_line, &echoes);
    tag_all(
        model, sentences,
        [&](std::size_t n) { return Echo{echoes[n].lines, echoes[n].markers_before}; }, style,
        decoding, quiet, evaluate ? &evaluator : nullptr, threads, out);
  } else {
    static const std::vector<std::string> kNoMarkers;
    const auto sequences =
        path == "-" ? crf::read_attributes(std::cin, name, max_line)
                    : crf::read_attributes_file(path, max_line);
    reject_column_input(sequences);
    tag_all(
        model, sequences, [&](std::size_t n) { return Echo{sequences[n].labels, kNoMarkers}; },
        style, decoding, quiet, evaluate ? &evaluator : nullptr, threads, out);
  }
  if (evaluate) {
    std::ostringstream report;
    crf::write_conlleval_report(evaluator.result(), report);
    out << report.str();
  }
  if (args.has("output")) write_file_atomically(args.get("output"), out.text());
  out.flush();
  check_stdout();
  return 0;
}

}  // namespace septa::cli
