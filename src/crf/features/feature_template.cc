// CRF++ template parsing and expansion.
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <sstream>

#include <sys/stat.h>

#include "crf/io/line_reader.h"
#include "septa/crf/feature_template.h"
#include "septa/error.h"
#include "util/atomic_file.h"
#include "util/parse_int.h"

namespace septa::crf {

struct TemplateLine {
  struct Macro {    // one %x[row,col]
    int row = 0;
    int col = 0;
  };
  struct Piece {    // literal text followed by an optional macro
    std::string literal;
    bool has_macro = false;
    Macro macro;
  };
  std::vector<Piece> pieces;
  std::string text;              // the trimmed source line
  std::size_t literal_size = 0;  // total length of the literals
};

namespace {

// Same text as examples/chunking.template.
constexpr const char* kChunkingTemplate =
    "# CoNLL-2000 chunking: columns are word (0), POS (1), chunk label (2).\n"
    "\n"
    "# Words at offsets -2..2, word bigrams.\n"
    "U00:%x[-2,0]\n"
    "U01:%x[-1,0]\n"
    "U02:%x[0,0]\n"
    "U03:%x[1,0]\n"
    "U04:%x[2,0]\n"
    "U05:%x[-1,0]/%x[0,0]\n"
    "U06:%x[0,0]/%x[1,0]\n"
    "\n"
    "# POS at offsets -2..2, POS bigrams and trigrams.\n"
    "U10:%x[-2,1]\n"
    "U11:%x[-1,1]\n"
    "U12:%x[0,1]\n"
    "U13:%x[1,1]\n"
    "U14:%x[2,1]\n"
    "U15:%x[-2,1]/%x[-1,1]\n"
    "U16:%x[-1,1]/%x[0,1]\n"
    "U17:%x[0,1]/%x[1,1]\n"
    "U18:%x[1,1]/%x[2,1]\n"
    "U20:%x[-2,1]/%x[-1,1]/%x[0,1]\n"
    "U21:%x[-1,1]/%x[0,1]/%x[1,1]\n"
    "U22:%x[0,1]/%x[1,1]/%x[2,1]\n"
    "\n"
    "# Label bigram.\n"
    "B\n";

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\v\f");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\v\f");
  return s.substr(first, last - first + 1);
}

// A macro's row or column: a signed integer of at most six digits.
bool parse_coordinate(std::string_view s, int& value) {
  long long v = 0;
  if (!util::parse_int(s, -999999, 999999, v)) return false;
  value = static_cast<int>(v);
  return true;
}

void append_int(std::string& out, long v) {
  char buf[24];
  const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  out.append(buf, static_cast<std::size_t>(end - buf));
}

// Parses one "U..." or "B..." line; raises max_column to the highest column read.
TemplateLine parse_line(std::string_view line, const std::string& place, int& max_column) {
  TemplateLine unigram;
  TemplateLine::Piece piece;
  std::size_t i = 0;
  while (i < line.size()) {
    if (line[i] != '%') {
      piece.literal.push_back(line[i++]);
      continue;
    }
    const std::size_t start = i;
    const std::size_t close = line.find(']', i);
    const std::string_view macro =
        line.substr(start, close == std::string_view::npos ? std::string_view::npos
                                                           : close - start + 1);
    const std::string bad = place + "malformed macro '" + std::string(macro) +
                            "' (expected %x[row,col])";
    if (line.substr(i, 3) != "%x[" || close == std::string_view::npos) throw FormatError(bad);
    const std::string_view inside = line.substr(i + 3, close - i - 3);
    const std::size_t comma = inside.find(',');
    if (comma == std::string_view::npos) throw FormatError(bad);
    int row = 0;
    int col = 0;
    if (!parse_coordinate(trim(inside.substr(0, comma)), row) ||
        !parse_coordinate(trim(inside.substr(comma + 1)), col))
      throw FormatError(bad);
    if (col < 0)
      throw FormatError(place + "negative column in macro '" + std::string(macro) + "'");
    piece.has_macro = true;
    piece.macro.row = row;
    piece.macro.col = col;
    if (col > max_column) max_column = col;
    unigram.pieces.push_back(std::move(piece));
    piece = TemplateLine::Piece();
    i = close + 1;
  }
  if (!piece.literal.empty()) unigram.pieces.push_back(std::move(piece));
  for (const auto& p : unigram.pieces) unigram.literal_size += p.literal.size();
  unigram.text = std::string(line);
  return unigram;
}

}  // namespace

FeatureTemplate FeatureTemplate::parse(const std::string& text, const std::string& name) {
  FeatureTemplate result;
  result.text_ = text;
  auto unigrams = std::make_shared<std::vector<TemplateLine>>();
  auto bigrams = std::make_shared<std::vector<TemplateLine>>();
  std::istringstream in(text);
  LineReader reader(in, name, text.size());
  std::string_view raw;
  while (reader.next(raw)) {
    const std::size_t number = reader.line_number();
    const std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    const std::string place = error_place(name, number);
    if (line.front() == 'B') {
      if (line.find('%') != std::string_view::npos)
        bigrams->push_back(parse_line(line, place, result.max_column_));
      else
        result.has_bigram_ = true;
      continue;
    }
    if (line.front() != 'U')
      throw FormatError(place + "unknown template line '" + std::string(line) +
                        "' (expected U..., B or # comment)");
    unigrams->push_back(parse_line(line, place, result.max_column_));
  }
  if (unigrams->empty() && bigrams->empty() && !result.has_bigram_)
    throw FormatError(name + ": the template has no feature lines (expected U... or B lines)");
  result.unigrams_ = std::move(unigrams);
  result.bigrams_ = std::move(bigrams);
  return result;
}

FeatureTemplate FeatureTemplate::parse_file(const std::string& path, std::size_t max_bytes) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    throw IoError(path + ": is a directory, not a template file");
  return parse(read_file(path, max_bytes, "--max-template-bytes"), path);
}

FeatureTemplate FeatureTemplate::default_chunking() {
  return parse(kChunkingTemplate, "<default chunking template>");
}

namespace {

// Appends the expansion of one template line at token t of `sentence` to `s` (padding "_B-1",
// "_B+1"... beyond its ends).
void expand_line(const TemplateLine& line, const ColumnSentence& sentence, std::size_t t,
                 std::string& s) {
  const long length = static_cast<long>(sentence.columns.size());
  const std::size_t columns = sentence.columns[t].size();
  for (const TemplateLine::Piece& piece : line.pieces) {
    s.append(piece.literal);
    if (!piece.has_macro) continue;
    const auto col = static_cast<std::size_t>(piece.macro.col);
    if (col >= columns)
      throw FormatError(item_place(sentence, t) + ": template '" +
                        line.text + "' reads column " + std::to_string(col) +
                        " but the token has " + std::to_string(columns) + " columns");
    const long position = static_cast<long>(t) + piece.macro.row;
    if (position < 0) {
      s.append("_B");
      append_int(s, position);
    } else if (position >= length) {
      s.append("_B+");
      append_int(s, position - length + 1);
    } else {
      s.append(sentence.columns[static_cast<std::size_t>(position)][col]);
    }
  }
}

// Expands each of `lines` at token t of `sentence`, one string each.
void expand_lines(const std::vector<TemplateLine>& lines, const ColumnSentence& sentence,
                  std::size_t t, std::vector<std::string>& out) {
  for (const TemplateLine& line : lines) {
    std::string& s = out.emplace_back();
    s.reserve(line.literal_size + 16 * line.pieces.size());
    expand_line(line, sentence, t, s);
  }
}

[[noreturn]] __attribute__((noinline, cold)) void missing_column(const TemplateLine& line,
                                                                 const ColumnSentence& sentence,
                                                                 std::size_t t, std::size_t col) {
  throw FormatError(item_place(sentence, t) + ": template '" + line.text + "' reads column " +
                    std::to_string(col) + " but the token has " +
                    std::to_string(sentence.columns[t].size()) + " columns");
}

// The text a macro stands for at token t, as (data, size): a field of the sentence, or a
// boundary marker ("_B-2", "_B+1") written into `marker` [32].
inline void macro_text(const TemplateLine& line, const TemplateLine::Piece& piece,
                       const ColumnSentence& sentence, std::size_t t, char* marker,
                       const char*& data, std::size_t& size) {
  const auto col = static_cast<std::size_t>(piece.macro.col);
  if (col >= sentence.columns[t].size()) missing_column(line, sentence, t, col);
  const long length = static_cast<long>(sentence.columns.size());
  const long position = static_cast<long>(t) + piece.macro.row;
  if (position >= 0 && position < length) {
    const std::string& field = sentence.columns[static_cast<std::size_t>(position)][col];
    data = field.data();
    size = field.size();
    return;
  }
  const bool before = position < 0;
  std::memcpy(marker, before ? "_B" : "_B+", before ? 2 : 3);
  const char* end =
      std::to_chars(marker + (before ? 2 : 3), marker + 32, before ? position : position - length + 1)
          .ptr;
  data = marker;
  size = static_cast<std::size_t>(end - marker);
}

// Copies n bytes with a few word moves, reading and writing only [src, src + n) and
// [dst, dst + n) (attribute pieces are short: a libc memcpy call per piece cost more).
inline void copy_short(char* dst, const char* src, std::size_t n) {
  if (n >= 8) {
    uint64_t w;
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
      std::memcpy(&w, src + i, 8);
      std::memcpy(dst + i, &w, 8);
    }
    std::memcpy(&w, src + n - 8, 8);
    std::memcpy(dst + n - 8, &w, 8);
  } else if (n >= 4) {
    uint32_t lo, hi;
    std::memcpy(&lo, src, 4);
    std::memcpy(&hi, src + n - 4, 4);
    std::memcpy(dst, &lo, 4);
    std::memcpy(dst + n - 4, &hi, 4);
  } else if (n > 0) {
    const char a = src[0], b = src[n / 2], c = src[n - 1];
    dst[0] = a;
    dst[n / 2] = b;
    dst[n - 1] = c;
  }
}

/*
 * The same, concatenated into `text` with each string's end offset appended to `ends`: the
 * token's pieces are looked up and measured first, `text` grows once, and the pieces are
 * copied in place (an append per piece, each a call with its own capacity check, was a tenth
 * of tagging). The bytes are those of expand_line.
 */
void expand_lines(const std::vector<TemplateLine>& lines, const ColumnSentence& sentence,
                  std::size_t t, std::string& text, std::vector<std::size_t>& ends) {
  thread_local std::vector<const char*> data_scratch;  // [macros] the text of each ...
  thread_local std::vector<std::size_t> size_scratch;  // [macros] ... and its size
  thread_local std::vector<char> markers_scratch;      // [macros][32] boundary markers
  std::size_t macros = 0;
  for (const TemplateLine& line : lines) macros += line.pieces.size();
  if (data_scratch.size() < macros) {
    data_scratch.resize(macros);
    size_scratch.resize(macros);
    markers_scratch.resize(32 * macros);
  }
  const char** data = data_scratch.data();
  std::size_t* sizes = size_scratch.data();
  char* markers = markers_scratch.data();
  std::size_t size = text.size(), m = 0;
  for (const TemplateLine& line : lines) {
    size += line.literal_size;
    for (const TemplateLine::Piece& piece : line.pieces) {
      if (!piece.has_macro) continue;
      macro_text(line, piece, sentence, t, markers + 32 * m, data[m], sizes[m]);
      size += sizes[m++];
    }
  }
  std::size_t at = text.size();
  text.resize(size);
  char* out = text.data();
  m = 0;
  for (const TemplateLine& line : lines) {
    for (const TemplateLine::Piece& piece : line.pieces) {
      copy_short(out + at, piece.literal.data(), piece.literal.size());
      at += piece.literal.size();
      if (!piece.has_macro) continue;
      copy_short(out + at, data[m], sizes[m]);
      at += sizes[m++];
    }
    ends.push_back(at);
  }
}

}  // namespace

void FeatureTemplate::expand(const ColumnSentence& sentence, std::size_t t,
                             std::vector<std::string>& out) const {
  if (unigrams_) expand_lines(*unigrams_, sentence, t, out);
}

void FeatureTemplate::expand_edge(const ColumnSentence& sentence, std::size_t t,
                                  std::vector<std::string>& out) const {
  if (bigrams_ && t > 0) expand_lines(*bigrams_, sentence, t, out);
}

void FeatureTemplate::expand(const ColumnSentence& sentence, std::size_t t, std::string& text,
                             std::vector<std::size_t>& ends) const {
  if (unigrams_) expand_lines(*unigrams_, sentence, t, text, ends);
}

void FeatureTemplate::expand_edge(const ColumnSentence& sentence, std::size_t t,
                                  std::string& text, std::vector<std::size_t>& ends) const {
  if (bigrams_ && t > 0) expand_lines(*bigrams_, sentence, t, text, ends);
}

std::size_t FeatureTemplate::conditioned_bigram_count() const {
  return bigrams_ ? bigrams_->size() : 0;
}

const std::string& FeatureTemplate::conditioned_bigram_text(std::size_t i) const {
  if (i >= conditioned_bigram_count())
    throw std::out_of_range("bigram template index out of range");
  return (*bigrams_)[i].text;
}

std::size_t FeatureTemplate::unigram_count() const { return unigrams_ ? unigrams_->size() : 0; }

const std::string& FeatureTemplate::unigram_text(std::size_t i) const {
  if (i >= unigram_count()) throw std::out_of_range("unigram template index out of range");
  return (*unigrams_)[i].text;
}

std::vector<int> FeatureTemplate::unigram_shift_partners() const {
  const std::size_t U = unigram_count();
  std::vector<int> partner(U, -1);
  const auto reads_shifted = [](const TemplateLine& u, const TemplateLine& v) {
    if (u.pieces.size() != v.pieces.size()) return false;
    bool any_macro = false;
    for (std::size_t i = 0; i < u.pieces.size(); ++i) {
      const TemplateLine::Piece &a = u.pieces[i], &b = v.pieces[i];
      if (a.has_macro != b.has_macro || (i > 0 && a.literal != b.literal)) return false;
      if (!a.has_macro) continue;
      if (a.macro.col != b.macro.col || a.macro.row + 1 != b.macro.row) return false;
      any_macro = true;
    }
    return any_macro;
  };
  for (std::size_t u = 0; u < U; ++u)
    for (std::size_t v = 0; v < U && partner[u] < 0; ++v)
      if (v != u && reads_shifted((*unigrams_)[u], (*unigrams_)[v])) partner[u] = static_cast<int>(v);
  return partner;
}

}  // namespace septa::crf
