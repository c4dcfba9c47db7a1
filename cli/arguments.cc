#include "arguments.h"

#include <cerrno>
#include <climits>
#include <cstring>
#include <iostream>

#include "septa/error.h"
#include "util/parse_int.h"

namespace septa::cli {

Arguments::Arguments(int argc, char** argv, const std::set<std::string>& with_value,
                     const std::set<std::string>& flags,
                     const std::map<std::string, std::string>& aliases,
                     const std::set<std::string>& booleans) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() < 2 || arg[0] != '-') {
      positional_.push_back(arg);
      continue;
    }
    std::string name, value;
    bool has_value = false;
    if (arg.rfind("--", 0) == 0) {
      name = arg.substr(2);
      const auto eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_value = true;
      }
    } else {
      const auto alias = aliases.find(arg);
      if (alias == aliases.end()) throw UsageError("unknown option " + arg);
      name = alias->second;
    }
    if (booleans.count(name)) {
      values_[name] = has_value ? value : "true";
    } else if (flags.count(name)) {
      if (has_value) throw UsageError("option --" + name + " takes no value");
      values_[name] = "";
    } else if (with_value.count(name)) {
      if (!has_value) {
        if (i + 1 >= argc) throw UsageError("option --" + name + " needs a value");
        value = argv[++i];
      }
      values_[name] = value;
    } else {
      throw UsageError("unknown option " + arg);
    }
  }
}

std::string Arguments::get(const std::string& name, const std::string& fallback) const {
  const auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

std::string Arguments::require(const std::string& name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) throw UsageError("option --" + name + " is required");
  return it->second;
}

std::size_t Arguments::limit(const std::string& name, std::size_t fallback) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const std::string& text = it->second;
  long long value = 0;
  if (!util::parse_int(text, 1, LLONG_MAX, value))
    throw OptionError("option --" + name + ": invalid value '" + text + "' (allowed: 1 to " +
                      std::to_string(LLONG_MAX) + ")");
  return static_cast<std::size_t>(value);
}

void check_stdout() {
  errno = 0;
  std::cout.flush();
  if (!std::cout) {
    const int error = errno;
    throw IoError(std::string("standard output: write failed") +
                  (error != 0 ? std::string(": ") + std::strerror(error) : std::string()));
  }
}

}  // namespace septa::cli
