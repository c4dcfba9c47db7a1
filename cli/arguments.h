// A small command-line parser: "--name value", "--name=value", short aliases, flags, positionals.
#pragma once

#include <cstddef>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace septa::cli {

// A usage error: exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Arguments {
 public:
  // `with_value`: options that take a value; `flags`: options that do not; `aliases`: short
  // names ("-m") mapped to long ones ("model"); `booleans`: true/false options, "true" when
  // given bare (--name) and never taking the next argument, else --name=VALUE.
  Arguments(int argc, char** argv, const std::set<std::string>& with_value,
            const std::set<std::string>& flags, const std::map<std::string, std::string>& aliases,
            const std::set<std::string>& booleans = {});

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  // The value of a required option; throws UsageError naming it when absent.
  std::string require(const std::string& name) const;
  const std::map<std::string, std::string>& values() const { return values_; }
  // A byte or count limit: option `name` (e.g. "max-line-bytes") parsed as an integer >= 1, or
  // `fallback`; throws OptionError naming the option and its range.
  std::size_t limit(const std::string& name, std::size_t fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;   // option name -> value ("" for flags)
  std::vector<std::string> positional_;
};

// Flushes standard output; throws IoError when anything written to it was lost (a full disk,
// /dev/full, a closed pipe).
void check_stdout();

}  // namespace septa::cli
