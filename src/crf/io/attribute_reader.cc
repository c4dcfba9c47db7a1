// CRFsuite attribute format reader: "LABEL<TAB>attr[:value]<TAB>...".
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>

#include "crf/io/line_reader.h"
#include "septa/crf/corpus.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

constexpr std::string_view kWeight = "@weight:";

// Parses `text` as a whole as a finite double; false when it is not one.
bool parse_finite(std::string_view text, double& value) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size() && std::isfinite(value);
}

// Position of the last colon not escaped by a backslash, or npos.
std::size_t last_unescaped_colon(std::string_view field) {
  std::size_t colon = std::string_view::npos;
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 1 < field.size()) {
      ++i;
    } else if (field[i] == ':') {
      colon = i;
    }
  }
  return colon;
}

// Appends `raw` to `out` with "\:" and "\\" turned into ":" and "\".
void unescape(std::string_view raw, std::string& out) {
  out.reserve(out.size() + raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size() && (raw[i + 1] == ':' || raw[i + 1] == '\\')) ++i;
    out.push_back(raw[i]);
  }
}

class AttributeParser {
 public:
  explicit AttributeParser(const std::string& name) : name_(name) {}

  void line(std::string_view text, std::size_t number) {
    const char* why = nullptr;
    if (!is_text(text, &why))
      throw FormatError(error_place(name_, number) + "not a text file (" + why + ")");
    check_no_carriage_return(text, name_, number);
    if (text.find_first_not_of(" \t\r\v\f") == std::string_view::npos) {
      finish();
      return;
    }
    const std::size_t tab = text.find('\t');
    const std::string_view label = text.substr(0, tab);
    if (label.substr(0, kWeight.size()) == kWeight) {
      weight_line(label.substr(kWeight.size()), number);
      return;
    }
    if (label.empty()) throw FormatError(error_place(name_, number) + "empty label");
    if (current_.labels.empty()) {
      current_.first_line = number;
      current_.source = name_;
    }
    current_.labels.emplace_back(label);
    auto& attributes = current_.attributes.emplace_back();
    std::size_t start = tab;
    while (start != std::string_view::npos) {
      ++start;
      const std::size_t end = text.find('\t', start);
      const std::string_view field = text.substr(start, end - start);
      if (!field.empty()) attributes.push_back(parse_attribute(field, number));
      start = end;
    }
  }

  void finish() {
    if (current_.labels.empty()) {
      if (weight_line_ != 0)
        throw FormatError(error_place(name_, weight_line_) + "@weight line without items");
      return;
    }
    sequences_.push_back(std::move(current_));
    current_ = AttributeSequence();
    weight_line_ = 0;
  }

  std::vector<AttributeSequence> take() { return std::move(sequences_); }

 private:
  void weight_line(std::string_view value_text, std::size_t number) {
    if (weight_line_ != 0)
      throw FormatError(error_place(name_, number) + "second @weight line in one sequence");
    const std::size_t tab = value_text.find('\t');
    if (tab != std::string_view::npos) value_text = value_text.substr(0, tab);
    double weight = 0;
    if (!parse_finite(value_text, weight) || weight < 0)
      throw FormatError(error_place(name_, number) + "invalid sequence weight '" +
                        std::string(value_text) + "' (expected a finite number >= 0)");
    current_.weight = weight;
    weight_line_ = number;
  }

  Attribute parse_attribute(std::string_view field, std::size_t number) const {
    Attribute attribute;
    const std::size_t colon = last_unescaped_colon(field);
    const std::string_view raw_name = field.substr(0, colon);
    if (colon != std::string_view::npos) {
      const std::string_view value_text = field.substr(colon + 1);
      if (!parse_finite(value_text, attribute.value))
        throw FormatError(error_place(name_, number) + "invalid attribute value '" +
                          std::string(value_text) + "' in '" + std::string(field) +
                          "' (expected a finite number)");
      if (!in_value_range(attribute.value))
        throw FormatError(error_place(name_, number) + "attribute value '" +
                          std::string(value_text) + "' in '" + std::string(field) +
                          "' is out of range (|value| <= " + kMaxAttributeValueText + ")");
    }
    if (raw_name.empty())
      throw FormatError(error_place(name_, number) + "empty attribute name in '" +
                        std::string(field) + "'");
    unescape(raw_name, attribute.name);
    return attribute;
  }

  const std::string& name_;
  std::vector<AttributeSequence> sequences_;
  AttributeSequence current_;
  std::size_t weight_line_ = 0;  // line of the current sequence's @weight, 0 when none
};

}  // namespace

std::vector<AttributeSequence> read_attributes(std::istream& in, const std::string& name,
                                               std::size_t max_line_bytes) {
  AttributeParser parser(name);
  LineReader reader(in, name, max_line_bytes);
  std::string_view line;
  while (reader.next(line)) {
    if (reader.line_number() == 1) strip_utf8_bom(line);
    parser.line(line, reader.line_number());
  }
  parser.finish();
  return parser.take();
}

std::vector<AttributeSequence> read_attributes_file(const std::string& path,
                                                    std::size_t max_line_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open for reading: " + std::strerror(errno));
  auto sequences = read_attributes(in, path, max_line_bytes);
  if (in.bad()) throw IoError(path + ": read error");
  return sequences;
}

}  // namespace septa::crf
