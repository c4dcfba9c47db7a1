// Buffered line splitting over an istream, shared by the septa text readers.
#pragma once

#include <cstddef>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

#include "septa/crf/limits.h"

namespace septa::crf {

// Yields the lines of a stream without their LF or CRLF ends; a missing final newline is
// accepted. Lines are views into an internal buffer, valid until the next call to next().
// A line longer than `max_line_bytes` throws FormatError naming `name`, the line, the limit
// and --max-line-bytes. Reads grow from 4 KiB blocks to `max_block` bytes, so a small input
// costs a small buffer.
class LineReader {
 public:
  explicit LineReader(std::istream& in, std::string name = "<input>",
                      std::size_t max_line_bytes = kDefaultMaxLineBytes,
                      std::size_t max_block = std::size_t{1} << 20);
  // Stores the next line in `line` and returns true, or returns false at the end of input.
  bool next(std::string_view& line);
  // 1-based number of the line last returned (0 before the first).
  std::size_t line_number() const { return line_number_; }
  // Numbers the next line `first` (a reader of part of a file).
  void start_at_line(std::size_t first) { line_number_ = first - 1; }

 private:
  bool fill();  // reads one more block; false when the stream is exhausted
  [[noreturn]] void too_long() const;

  std::istream& in_;
  std::string name_;
  std::size_t max_line_bytes_;
  std::size_t max_block_;
  std::size_t block_;         // size of the next read; doubles up to max_block_
  std::vector<char> buffer_;  // [size_] bytes read, lines start at begin_
  std::size_t begin_ = 0;
  std::size_t size_ = 0;
  std::size_t line_number_ = 0;
  bool eof_ = false;
};

// Whether `text` is valid UTF-8 without NUL bytes; on failure `why` says what was found.
bool is_text(std::string_view text, const char** why);

// Splits `line` at runs of spaces and tabs (and stray CR, VT, FF) into `fields`.
void split_whitespace(std::string_view line, std::vector<std::string_view>& fields);

// Throws FormatError when `line` holds a carriage return: LineReader strips a CR before LF, so
// one left inside means CR-only line ends, which would read the file as one long line.
void check_no_carriage_return(std::string_view line, const std::string& name, std::size_t number);

// "name:line: " prefix of every input error message.
std::string error_place(const std::string& name, std::size_t line);

// Removes a UTF-8 byte-order mark from the start of `line` (the first line of a file).
inline void strip_utf8_bom(std::string_view& line) {
  constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
  if (line.substr(0, kUtf8Bom.size()) == kUtf8Bom) line.remove_prefix(kUtf8Bom.size());
}

}  // namespace septa::crf
