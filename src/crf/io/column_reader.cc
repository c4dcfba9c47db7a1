// Column (CoNLL / CRF++) format reader.
#include <cerrno>
#include <cstring>
#include <fstream>

#include "crf/io/line_reader.h"
#include "septa/crf/corpus.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

constexpr std::string_view kDocStart = "-DOCSTART-";

// The sentence being read and, when the caller wants it, its echo.
struct Reading {
  std::vector<ColumnSentence> sentences;
  std::vector<ColumnEcho>* echoes = nullptr;
  ColumnSentence sentence;
  ColumnEcho echo;

  void finish_sentence() {
    if (sentence.columns.empty()) return;
    sentences.push_back(std::move(sentence));
    sentence = ColumnSentence();
    if (!echoes) return;
    echoes->push_back(std::move(echo));
    echo = ColumnEcho();
  }
};

}  // namespace

std::vector<ColumnSentence> read_columns(std::istream& in, const std::string& name,
                                         std::size_t min_columns, std::size_t first_line,
                                         std::size_t max_line_bytes,
                                         std::vector<ColumnEcho>* echo) {
  Reading reading;
  reading.echoes = echo;
  if (echo) echo->clear();
  ColumnSentence& sentence = reading.sentence;
  std::vector<std::string_view> fields;
  std::size_t expected_columns = 0;  // fixed by the first token line of the file
  LineReader reader(in, name, max_line_bytes);
  reader.start_at_line(first_line);
  std::string_view line;
  while (reader.next(line)) {
    const std::size_t number = reader.line_number();
    if (number == 1) strip_utf8_bom(line);
    const char* why = nullptr;
    if (!is_text(line, &why))
      throw FormatError(error_place(name, number) + "not a text file (" + why + ")");
    check_no_carriage_return(line, name, number);
    split_whitespace(line, fields);
    if (fields.empty()) {
      reading.finish_sentence();
      continue;
    }
    if (fields[0] == kDocStart) {
      reading.finish_sentence();
      if (echo) reading.echo.markers_before.emplace_back(line);
      continue;
    }
    if (expected_columns == 0) {
      if (fields.size() < min_columns)
        throw FormatError(error_place(name, number) + "expected at least " +
                          std::to_string(min_columns) + " columns, found " +
                          std::to_string(fields.size()));
      expected_columns = fields.size();
    } else if (fields.size() != expected_columns) {
      throw FormatError(error_place(name, number) + "expected " +
                        std::to_string(expected_columns) + " columns, found " +
                        std::to_string(fields.size()));
    }
    if (fields.back().empty()) throw FormatError(error_place(name, number) + "empty label");
    if (sentence.columns.empty()) {
      sentence.first_line = number;
      sentence.source = name;
    }
    auto& token = sentence.columns.emplace_back();
    token.reserve(fields.size());
    for (const auto field : fields) token.emplace_back(field);
    if (echo) reading.echo.lines.emplace_back(line);
  }
  reading.finish_sentence();
  return std::move(reading.sentences);
}

std::vector<ColumnSentence> read_columns_file(const std::string& path, std::size_t min_columns,
                                              std::size_t max_line_bytes,
                                              std::vector<ColumnEcho>* echo) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open for reading: " + std::strerror(errno));
  auto sentences = read_columns(in, path, min_columns, 1, max_line_bytes, echo);
  if (in.bad()) throw IoError(path + ": read error");
  return sentences;
}

}  // namespace septa::crf
