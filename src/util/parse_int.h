// Integer parsing shared by option parsers, template macros and command lines.
#pragma once

#include <string_view>

namespace septa::util {

// Parses all of `text` as a decimal integer with an optional sign ("+5", "-3"; no spaces, no
// other characters) within [low, high] into `value`; returns false, leaving `value` as it was,
// otherwise (including on overflow).
bool parse_int(std::string_view text, long long low, long long high, long long& value);

}  // namespace septa::util
