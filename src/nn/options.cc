// Option validation from the methods' tables.
#include "nn/options.h"

#include <cmath>
#include <cstdint>
#include <sstream>

#include "util/parse_int.h"

namespace septa::nn {
namespace {

std::string number_text(double x) {
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  std::ostringstream out;
  out << x;
  return out.str();
}

bool parse_number(const std::string& text, double* value) {
  try {
    size_t used = 0;
    *value = std::stod(text, &used);
    return used == text.size() && std::isfinite(*value);
  } catch (const std::exception&) {
    return false;
  }
}

bool parse_integer(const std::string& text, int64_t* value) {
  long long v = 0;
  if (!util::parse_int(text, INT64_MIN, INT64_MAX, v)) return false;
  *value = v;
  return true;
}

bool in_range(const OptionSpec& spec, double x) {
  return (spec.min_open ? x > spec.min : x >= spec.min) &&
         (spec.max_open ? x < spec.max : x <= spec.max);
}

[[noreturn]] void reject(const OptionSpec& spec, const std::string& value, const std::string& method) {
  const char* what = spec.type == OptionType::kInteger ? "an integer"
                     : spec.type == OptionType::kReal  ? "a number"
                                                       : "comma-separated integers";
  throw OptionError("--" + spec.name + " of method " + method + " expects " + what + " in " +
                    spec.range() + ", got '" + value + "'");
}

void check(const OptionSpec& spec, const std::string& value, const std::string& method) {
  switch (spec.type) {
    case OptionType::kInteger: {
      int64_t v = 0;
      if (!parse_integer(value, &v) || !in_range(spec, static_cast<double>(v)))
        reject(spec, value, method);
      return;
    }
    case OptionType::kReal: {
      double v = 0;
      if (!parse_number(value, &v) || !in_range(spec, v)) reject(spec, value, method);
      return;
    }
    case OptionType::kSizes: {
      std::stringstream stream(value);
      std::string item;
      int count = 0;
      while (std::getline(stream, item, ',')) {
        int64_t v = 0;
        if (!parse_integer(item, &v) || !in_range(spec, static_cast<double>(v)))
          reject(spec, value, method);
        ++count;
      }
      if (count == 0 || value.back() == ',') reject(spec, value, method);
      return;
    }
  }
}

}  // namespace

std::string OptionSpec::range() const {
  const std::string interval =
      std::string(min_open ? "(" : "[") + number_text(min) + ", " + number_text(max) +
      (max_open ? ")" : "]");
  return type == OptionType::kSizes ? "list of " + interval : interval;
}

OptionSpec epochs_option(int default_epochs, const std::string& help) {
  return {"epochs", OptionType::kInteger, std::to_string(default_epochs), 1, 100000, false, help};
}

OptionSpec batch_option() {
  return {"batch", OptionType::kInteger, "100", 1, 1e9, false, "mini-batch size"};
}

OptionSpec seed_option() {
  return {"seed", OptionType::kInteger, "1", 0, 9.2e18, false,
          "random seed (initialisation, data order, noise)"};
}

OptionSpec learning_rate_option(const std::string& name, const std::string& default_value,
                                const std::string& help) {
  return {name, OptionType::kReal, default_value, 0, 10, true, help};
}

Options::Options(const MethodInfo& info, const OptionValues& given) : method_(info.name) {
  for (const auto& [name, value] : given) {
    bool known = false;
    for (const auto& spec : info.options) known = known || spec.name == name;
    if (!known)
      throw OptionError("--" + name + " is not an option of method " + info.name +
                        " (see septa nn --help)");
  }
  for (const auto& spec : info.options) {
    const auto it = given.find(spec.name);
    const std::string& value = it == given.end() ? spec.default_value : it->second;
    check(spec, value, info.name);
    values_.emplace_back(spec.name, value);
  }
}

bool Options::has(const std::string& name) const {
  for (const auto& [key, value] : values_)
    if (key == name) return true;
  return false;
}

const std::string& Options::text(const std::string& name) const {
  for (const auto& [key, value] : values_)
    if (key == name) return value;
  throw InternalError("method " + method_ + " has no option '" + name + "'");
}

int64_t Options::integer(const std::string& name) const { return std::stoll(text(name)); }

double Options::real(const std::string& name) const { return std::stod(text(name)); }

std::vector<int64_t> Options::sizes(const std::string& name) const {
  std::vector<int64_t> out;
  std::stringstream stream(text(name));
  std::string item;
  while (std::getline(stream, item, ',')) out.push_back(std::stoll(item));
  return out;
}

std::string Options::canonical() const {
  std::string out;
  for (const auto& [key, value] : values_) out += (out.empty() ? "" : ";") + key + "=" + value;
  return out;
}

OptionValues Options::parse_canonical(const std::string& text) {
  OptionValues values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ';')) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos) throw OptionError("malformed option list '" + text + "'");
    values[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return values;
}

}  // namespace septa::nn
