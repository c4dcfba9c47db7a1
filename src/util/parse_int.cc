#include "util/parse_int.h"

#include <charconv>
#include <system_error>

namespace septa::util {

bool parse_int(std::string_view text, long long low, long long high, long long& value) {
  if (!text.empty() && text.front() == '+') {
    text.remove_prefix(1);
    if (!text.empty() && text.front() == '-') return false;  // "+-5"
  }
  if (text.empty()) return false;
  long long v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, error] = std::from_chars(text.data(), end, v);
  if (error != std::errc() || ptr != end || v < low || v > high) return false;
  value = v;
  return true;
}

}  // namespace septa::util
