// Input data as read from disk: column (CoNLL/CRF++) and CRFsuite attribute formats.
#pragma once

#include <cstddef>
#include <istream>
#include <string>
#include <vector>

#include "septa/communicator.h"
#include "septa/crf/limits.h"

namespace septa::crf {

// One sentence of a column file, or of in-memory data.
struct ColumnSentence {
  std::vector<std::vector<std::string>> columns;  // [T][C] whitespace-separated fields
  std::size_t first_line = 0;                     // 1-based line of token 0; 0: not from a file
  std::string source;     // the file read (set by the readers), or a name for in-memory data
  std::size_t index = 0;  // in-memory data (first_line 0): 0-based position in its collection
};

// What a client that echoes its input (septa tag) needs of a column sentence beyond its fields;
// the library never reads it, and the readers fill it only when asked to.
struct ColumnEcho {
  std::vector<std::string> lines;           // [T] each token's original line, without CR/LF
  std::vector<std::string> markers_before;  // "-DOCSTART-" lines just before token 0
};

// One attribute (name and value) of an item in CRFsuite's attribute format.
struct Attribute {
  std::string name;
  double value = 1.0;  // stored as float in training data: |value| <= kMaxAttributeValue
};

// Largest |value| of an attribute (FLT_MAX, the largest finite float), and its printed form.
inline constexpr double kMaxAttributeValue = 3.4028234663852886e38;
inline constexpr const char* kMaxAttributeValueText = "3.4028234663852886e38";
// Whether `value` is finite and fits a float.
inline bool in_value_range(double value) {
  return value >= -kMaxAttributeValue && value <= kMaxAttributeValue;
}

// One sequence of a CRFsuite attribute file.
struct AttributeSequence {
  std::vector<std::string> labels;                   // [T] gold labels
  std::vector<std::vector<Attribute>> attributes;    // [T][*] attributes of each item
  double weight = 1.0;                               // from an "@weight:w" line
  std::size_t first_line = 0;                        // 1-based line of item 0; 0: not from a file
  std::string source;     // the file read (set by the readers), or a name for in-memory data
  std::size_t index = 0;  // in-memory data (first_line 0): 0-based position in its collection
};

// Where item t of a sequence is, the prefix of the library's error messages about it:
// "source:line" for a sequence read from a file; for in-memory data, "X[index][t]" when the
// source is named "X", else "sequence <index>, item <t>".
std::string item_place(const ColumnSentence& sentence, std::size_t t);
std::string item_place(const AttributeSequence& sequence, std::size_t t);

// Reads a column file: blank lines end sentences, "-DOCSTART-" lines are skipped, CRLF and a
// missing final newline are accepted; every token line must have the same number of columns
// (>= min_columns). `name` prefixes error messages ("name:line: ..."); `first_line` numbers the
// stream's first line (a part of a file). A CR inside a line (a file with old Mac line ends) and
// a line longer than `max_line_bytes` are FormatErrors. With `echo`, it also receives [N] the
// original text of each sentence returned.
std::vector<ColumnSentence> read_columns(std::istream& in, const std::string& name,
                                         std::size_t min_columns = 1, std::size_t first_line = 1,
                                         std::size_t max_line_bytes = kDefaultMaxLineBytes,
                                         std::vector<ColumnEcho>* echo = nullptr);

// Opens `path` and reads it as a column file; throws IoError when it cannot be opened.
std::vector<ColumnSentence> read_columns_file(const std::string& path,
                                              std::size_t min_columns = 1,
                                              std::size_t max_line_bytes = kDefaultMaxLineBytes,
                                              std::vector<ColumnEcho>* echo = nullptr);

// Reads a CRFsuite attribute file: "LABEL<TAB>attr[:value]<TAB>...", "\:" and "\\" escapes,
// "@weight:w" lines, blank lines between sequences; values within the float range.
std::vector<AttributeSequence> read_attributes(std::istream& in, const std::string& name,
                                               std::size_t max_line_bytes = kDefaultMaxLineBytes);

// Opens `path` and reads it as an attribute file; throws IoError when it cannot be opened.
std::vector<AttributeSequence> read_attributes_file(
    const std::string& path, std::size_t max_line_bytes = kDefaultMaxLineBytes);

// One rank's part of a column file spread over the ranks of a job. The file is cut into
// `total_blocks` fixed blocks of about equal byte size, each moved forward to the next
// sentence start (the line after a blank line), so sentences are never split and the blocks
// depend only on the file; rank r of R holds blocks [B r / R, B (r+1) / R).
struct ColumnShard {
  std::vector<ColumnSentence> sentences;  // this rank's sentences, in file order
  std::vector<std::size_t> block_bounds;  // [blocks of this rank + 1] sentence ranges
  std::size_t first_block = 0;            // global index of this rank's first block
  std::size_t total_blocks = 0;           // B
};

// The block count of training files read in parts (the CLI's training reads): the most ranks a
// job can use, and the reduction blocks of standard training.
constexpr std::size_t kShardBlocks = 16;

// Reads only this rank's bytes of `path` (B = `blocks`); line numbers in errors are the
// file's (the ranks exchange their newline counts). Every rank of `comm` calls it. The blocks
// parse on up to `threads` threads (the same sentences for any count).
ColumnShard read_column_shard(const std::string& path, std::size_t blocks, Communicator& comm,
                              std::size_t max_line_bytes = kDefaultMaxLineBytes, int threads = 1);

}  // namespace septa::crf
