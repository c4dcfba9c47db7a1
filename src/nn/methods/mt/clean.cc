#include "nn/methods/mt/clean.h"

#include <cstring>

namespace septa::nn::mt {
namespace {

bool is_alnum(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
// Accelerator keys: ASCII letters and digits, and non-ASCII letters (a UTF-8 lead byte).
bool is_key(unsigned char c) { return is_alnum(c) || c >= 0xc0; }

bool starts_with(const std::string& s, size_t i, const char* prefix) {
  return s.compare(i, std::strlen(prefix), prefix) == 0;
}

// Removes "<tag ...>" and "</tag>" (a tag starts with a letter, '/' or '!'), keeps other '<'.
std::string strip_tags(const std::string& in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '<' && i + 1 < in.size()) {
      const unsigned char next = in[i + 1];
      const size_t close = in.find('>', i + 1);
      const size_t reopen = in.find('<', i + 1);
      if ((is_alnum(next) && !is_digit(next)) || next == '/' || next == '!') {
        if (close != std::string::npos && (reopen == std::string::npos || close < reopen)) {
          out += ' ';
          i = close;
          continue;
        }
      }
    }
    out += in[i];
  }
  return out;
}

// Decodes the entities and drops '&' accelerators in one pass (so "&amp;" is never an accelerator).
std::string entities_and_ampersands(const std::string& in) {
  static const struct { const char* name; const char* text; } kEntities[] = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&nbsp;", " "}};
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '&') {
      out += in[i];
      continue;
    }
    bool entity = false;
    for (const auto& e : kEntities)
      if (starts_with(in, i, e.name)) {
        out += e.text;
        i += std::strlen(e.name) - 1;
        entity = true;
        break;
      }
    if (entity) continue;
    if (starts_with(in, i, "&#")) {
      size_t j = i + 2;
      unsigned code = 0;
      while (j < in.size() && is_digit(in[j]) && code < 0x110000) code = code * 10 + (in[j++] - '0');
      if (j < in.size() && in[j] == ';' && j > i + 2 && code < 128 && code >= 32) {
        out += static_cast<char>(code);
        i = j;
        continue;
      }
    }
    if (i + 1 < in.size() && in[i + 1] == '&') {
      out += '&';
      ++i;
    } else if (i + 1 < in.size() && is_key(in[i + 1])) {
      // accelerator: dropped
    } else {
      out += '&';
    }
  }
  return out;
}

// "(_F)" and "(&F)" (CJK labels keep the Latin key in parentheses): removed.
std::string strip_parenthesised_keys(const std::string& in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '(' && i + 3 < in.size() && (in[i + 1] == '_' || in[i + 1] == '&') &&
        is_alnum(in[i + 2]) && in[i + 3] == ')') {
      i += 3;
      continue;
    }
    out += in[i];
  }
  return out;
}

// GTK ("_Open", "Re_load") and LibreOffice ("~Open") accelerators: the mark before the key goes.
std::string strip_underscore_tilde(const std::string& in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if ((in[i] == '_' || in[i] == '~') && i + 1 < in.size() && is_key(in[i + 1])) continue;
    out += in[i];
  }
  return out;
}

// End of a printf width or precision starting at in[j]: digits, or '*' with an optional argument
// position ("*2$", POSIX).
size_t width_end(const std::string& in, size_t j) {
  if (j < in.size() && in[j] == '*') {
    size_t k = j + 1;
    while (k < in.size() && is_digit(in[k])) ++k;
    return k > j + 1 && k < in.size() && in[k] == '$' ? k + 1 : j + 1;
  }
  while (j < in.size() && is_digit(in[j])) ++j;
  return j;
}

// Length of a printf / Python / Qt specifier starting at in[i] == '%', 0 when none.
size_t format_length(const std::string& in, size_t i) {
  size_t j = i + 1;
  if (j >= in.size()) return 0;
  if (in[j] == '(') {  // %(name)s
    const size_t close = in.find(')', j);
    if (close == std::string::npos || close + 1 >= in.size()) return 0;
    j = close + 1;
    return std::strchr("diouxXeEfFgGcrsa", in[j]) ? j + 1 - i : 0;
  }
  size_t digits = j;
  while (digits < in.size() && is_digit(in[digits])) ++digits;
  if (digits > j && (digits >= in.size() || in[digits] != '$')) {
    // %1 (Qt/KDE) unless it is a width followed by a conversion (handled below)
    size_t k = digits;
    if (k < in.size() && std::strchr("diouxXeEfFgGcs", in[k]) && !is_alnum(in.size() > k + 1 ? in[k + 1] : ' '))
      return k + 1 - i;
    return digits - i;
  }
  if (digits > j) j = digits + 1;  // %1$s
  while (j < in.size() && std::strchr("-+ #0'", in[j])) ++j;
  j = width_end(in, j);  // width: 12, *, *2$
  if (j < in.size() && in[j] == '.') j = width_end(in, j + 1);  // precision: .3, .*, .*2$
  for (const char* length : {"hh", "ll", "I64", "h", "l", "L", "q", "j", "z", "t"})
    if (starts_with(in, j, length)) {
      j += std::strlen(length);
      break;
    }
  if (j < in.size() && std::strchr("diouxXeEfFgGaAcspSC", in[j]) && in[j] != '\0') return j + 1 - i;
  return 0;
}

std::string strip_formats(const std::string& in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 1 < in.size() && in[i + 1] == '%') {
        out += '%';
        ++i;
        continue;
      }
      const size_t n = format_length(in, i);
      if (n > 0) {
        out += ' ';
        i += n - 1;
        continue;
      }
    } else if (in[i] == '{') {
      size_t j = i + 1;
      while (j < in.size() && (is_alnum(in[j]) || in[j] == '_' || in[j] == '.' || in[j] == ':' || in[j] == '!'))
        ++j;
      if (j < in.size() && in[j] == '}') {
        out += ' ';
        i = j;
        continue;
      }
    }
    out += in[i];
  }
  return out;
}

std::string squeeze_spaces(const std::string& in) {
  std::string out;
  for (char c : in) {
    const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (space) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::string clean_message(const std::string& text, std::size_t max_bytes) {
  std::string s = strip_tags(text);
  s = strip_parenthesised_keys(s);
  s = entities_and_ampersands(s);
  s = strip_underscore_tilde(s);
  s = strip_formats(s);
  s = squeeze_spaces(s);
  bool letter = false;
  for (unsigned char c : s)
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) letter = true;
  if (!letter || s.size() > max_bytes) return "";
  return s;
}

}  // namespace septa::nn::mt
