// Input data as read from disk: column (CoNLL/CRF++) and CRFsuite attribute formats.
#pragma once

#include <cstddef>
#include <istream>
#include <string>
#include <vector>

namespace septa::crf {

// One sentence of a column file. Every token keeps its original line so tagging can echo it.
struct ColumnSentence {
  std::vector<std::vector<std::string>> columns;  // [T][C] whitespace-separated fields
  std::vector<std::string> lines;                 // [T] original text, without CR/LF
  std::size_t first_line = 0;                     // 1-based line number of token 0
  std::vector<std::string> markers_before;         // "-DOCSTART-" lines just before token 0
};

// One attribute (name and value) of an item in CRFsuite's attribute format.
struct Attribute {
  std::string name;
  double value = 1.0;
};

// One sequence of a CRFsuite attribute file.
struct AttributeSequence {
  std::vector<std::string> labels;                   // [T] gold labels
  std::vector<std::vector<Attribute>> attributes;    // [T][*] attributes of each item
  std::vector<std::string> lines;                    // [T] original text, without CR/LF
  double weight = 1.0;                               // from an "@weight:w" line
  std::size_t first_line = 0;                        // 1-based line number of item 0
};

// Reads a column file: blank lines end sentences, "-DOCSTART-" lines are skipped, CRLF and a
// missing final newline are accepted; every token line must have the same number of columns
// (>= min_columns). `name` prefixes error messages ("name:line: ...").
std::vector<ColumnSentence> read_columns(std::istream& in, const std::string& name,
                                         std::size_t min_columns = 1);

// Opens `path` and reads it as a column file; throws IoError when it cannot be opened.
std::vector<ColumnSentence> read_columns_file(const std::string& path,
                                              std::size_t min_columns = 1);

// Reads a CRFsuite attribute file: "LABEL<TAB>attr[:value]<TAB>...", "\:" and "\\" escapes,
// "@weight:w" lines, blank lines between sequences.
std::vector<AttributeSequence> read_attributes(std::istream& in, const std::string& name);

// Opens `path` and reads it as an attribute file; throws IoError when it cannot be opened.
std::vector<AttributeSequence> read_attributes_file(const std::string& path);

}  // namespace septa::crf
