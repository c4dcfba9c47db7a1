#include "crf/io/line_reader.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "septa/error.h"

namespace septa::crf {

namespace {
constexpr std::size_t kFirstBlock = 4096;
}  // namespace

LineReader::LineReader(std::istream& in, std::string name, std::size_t max_line_bytes,
                       std::size_t max_block)
    : in_(in), name_(std::move(name)), max_line_bytes_(max_line_bytes),
      max_block_(std::max<std::size_t>(max_block, 1)),
      block_(std::min(kFirstBlock, max_block_)) {}

bool LineReader::fill() {
  if (eof_) return false;
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, size_ - begin_);
    size_ -= begin_;
    begin_ = 0;
  }
  const std::size_t block = block_;
  block_ = std::min(2 * block_, max_block_);
  if (buffer_.size() < size_ + block) buffer_.resize(size_ + block);
  in_.read(buffer_.data() + size_, static_cast<std::streamsize>(block));
  const auto got = static_cast<std::size_t>(in_.gcount());
  size_ += got;
  if (got < block) eof_ = true;
  return got > 0;
}

void LineReader::too_long() const {
  throw FormatError(error_place(name_, line_number_ + 1) + "line longer than " +
                    std::to_string(max_line_bytes_) +
                    " bytes, the limit (--max-line-bytes raises it)");
}

bool LineReader::next(std::string_view& line) {
  std::size_t scanned = begin_;
  for (;;) {
    const char* start = buffer_.data() + scanned;
    const void* nl = scanned < size_ ? std::memchr(start, '\n', size_ - scanned) : nullptr;
    if (nl != nullptr) {
      const std::size_t end = static_cast<const char*>(nl) - buffer_.data();
      std::size_t stop = end;
      if (stop > begin_ && buffer_[stop - 1] == '\r') --stop;
      if (stop - begin_ > max_line_bytes_) too_long();
      line = std::string_view(buffer_.data() + begin_, stop - begin_);
      begin_ = end + 1;
      ++line_number_;
      return true;
    }
    const std::size_t pending = size_ - begin_;
    if (pending > max_line_bytes_ + 1) too_long();  // + 1: room for a CR before the LF
    if (!fill()) {
      if (size_ == begin_) return false;
      std::size_t stop = size_;
      if (buffer_[stop - 1] == '\r') --stop;
      if (stop - begin_ > max_line_bytes_) too_long();
      line = std::string_view(buffer_.data() + begin_, stop - begin_);
      begin_ = size_;
      ++line_number_;
      return true;
    }
    scanned = begin_ + pending;
  }
}

bool is_text(std::string_view text, const char** why) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHighs = 0x8080808080808080ULL;
  while (p < end) {
    // 8 ASCII bytes, none of them NUL, at a time (no high bit set, no zero byte).
    if (end - p >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      if (((w | ((w - kOnes) & ~w)) & kHighs) == 0) {
        p += 8;
        continue;
      }
    }
    const unsigned char c = *p;
    if (c == 0) {
      *why = "NUL byte";
      return false;
    }
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t extra = 0;
    unsigned int code = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
      code = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      code = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      code = c & 0x07;
    } else {
      *why = "invalid UTF-8";
      return false;
    }
    if (static_cast<std::size_t>(end - p) <= extra) {
      *why = "invalid UTF-8";
      return false;
    }
    for (std::size_t k = 1; k <= extra; ++k) {
      if ((p[k] & 0xC0) != 0x80) {
        *why = "invalid UTF-8";
        return false;
      }
      code = (code << 6) | (p[k] & 0x3F);
    }
    const bool overlong = (extra == 2 && code < 0x800) || (extra == 3 && code < 0x10000);
    if (overlong || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      *why = "invalid UTF-8";
      return false;
    }
    p += extra + 1;
  }
  return true;
}

void split_whitespace(std::string_view line, std::vector<std::string_view>& fields) {
  fields.clear();
  // One test per byte: a space, TAB, CR, VT or FF is at most ' ' and has its bit set in the
  // mask (five comparisons per byte had made this a quarter of reading a column file).
  constexpr uint64_t kSpaces = (uint64_t{1} << ' ') | (uint64_t{1} << '\t') |
                               (uint64_t{1} << '\r') | (uint64_t{1} << '\v') | (uint64_t{1} << '\f');
  const auto is_space = [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= ' ' && ((kSpaces >> u) & 1) != 0;
  };
  std::size_t i = 0;
  const std::size_t n = line.size();
  while (i < n) {
    while (i < n && is_space(line[i])) ++i;
    if (i == n) break;
    const std::size_t start = i;
    while (i < n && !is_space(line[i])) ++i;
    fields.push_back(line.substr(start, i - start));
  }
}

void check_no_carriage_return(std::string_view line, const std::string& name,
                              std::size_t number) {
  if (line.find('\r') != std::string_view::npos)
    throw FormatError(error_place(name, number) +
                      "carriage return inside a line (a file with CR-only line ends? convert "
                      "them to LF)");
}

std::string error_place(const std::string& name, std::size_t line) {
  return name + ":" + std::to_string(line) + ": ";
}

}  // namespace septa::crf
