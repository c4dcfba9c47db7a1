// A strict JSON reader and string escaper for safetensors headers and shard indexes.
//
// Strict means: one value per document (trailing whitespace only), no duplicate object keys,
// valid UTF-8 in strings, no leading zeros, no NaN/Infinity, nesting at most kMaxDepth deep.
// Errors throw septa::ModelError "<label>: header byte <offset>: <what>".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace septa::safetensors::json {

constexpr int kMaxDepth = 64;

struct Value {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  std::string text;            // kString: the decoded string; kNumber: the literal as written
  bool is_uint = false;        // kNumber: a non-negative integer that fits in uint64
  std::uint64_t uint = 0;      // kNumber with is_uint
  std::vector<Value> items;    // kArray
  std::vector<std::pair<std::string, Value>> members;  // kObject, in document order

  // Member `key` of an object, or nullptr.
  const Value* find(std::string_view key) const;
};

// Parses `document`; `label` (a file name) starts every error message.
Value parse(std::string_view document, const std::string& label);

// `text` as a quoted JSON string ("\"", "\\", control characters escaped; UTF-8 kept).
std::string quote(std::string_view text);

const char* kind_name(Value::Kind kind);

}  // namespace septa::safetensors::json
