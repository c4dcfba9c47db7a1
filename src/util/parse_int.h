// Part of septa_util, the utilities shared by the libraries and clients (not public).
// Integer parsing for options, templates and command lines.
#pragma once

#include <string_view>

namespace septa {

// Parses all of `text` as a decimal integer with an optional sign ("+7", "-3"), no spaces;
// false when it is not one or lies outside [low, high] (value is then unchanged).
bool parse_int(std::string_view text, long long low, long long high, long long& value);

}  // namespace septa
