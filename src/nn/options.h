// A method's option values, validated against its table (septa/nn/nn.h: OptionSpec).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "septa/nn/nn.h"

namespace septa::nn {

// Rows shared by several methods' tables (each method picks its own default).
OptionSpec epochs_option(int default_epochs, const std::string& help);
OptionSpec batch_option();
OptionSpec seed_option();
OptionSpec learning_rate_option(const std::string& name, const std::string& default_value,
                                const std::string& help);

class Options {
 public:
  // Defaults of `info`'s table overridden by `given`. OptionError naming the option ("--lr") for
  // a name outside the table, a malformed value or a value outside the range.
  Options(const MethodInfo& info, const OptionValues& given);

  const std::string& method() const { return method_; }
  int64_t integer(const std::string& name) const;
  double real(const std::string& name) const;
  std::vector<int64_t> sizes(const std::string& name) const;
  bool has(const std::string& name) const;
  uint64_t seed() const { return static_cast<uint64_t>(integer("seed")); }
  // All values, "name=value" joined by ';' in table order (checkpoint metadata).
  std::string canonical() const;
  // The inverse of canonical(); OptionError as the constructor.
  static OptionValues parse_canonical(const std::string& text);

 private:
  const std::string& text(const std::string& name) const;
  std::string method_;
  std::vector<std::pair<std::string, std::string>> values_;  // table order
};

}  // namespace septa::nn
