// Buffered line splitting over an istream, shared by the septa text readers.
#pragma once

#include <cstddef>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

namespace septa::crf {

// Yields the lines of a stream without their LF or CRLF ends; a missing final newline is
// accepted. Lines are views into an internal buffer, valid until the next call to next().
class LineReader {
 public:
  explicit LineReader(std::istream& in, std::size_t block_size = 1 << 20);
  // Stores the next line in `line` and returns true, or returns false at the end of input.
  bool next(std::string_view& line);
  // 1-based number of the line last returned (0 before the first).
  std::size_t line_number() const { return line_number_; }
  // Numbers the next line `first` (a reader of part of a file).
  void start_at_line(std::size_t first) { line_number_ = first - 1; }

 private:
  bool fill();  // reads one more block; false when the stream is exhausted

  std::istream& in_;
  std::size_t block_size_;
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

// "name:line: " prefix of every input error message.
std::string error_place(const std::string& name, std::size_t line);

}  // namespace septa::crf
