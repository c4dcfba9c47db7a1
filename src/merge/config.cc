// The merge configuration: mergekit's raw-checkpoint YAML subset, read with yaml-cpp.
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <set>

#include "septa/error.h"
#include "septa/merge.h"

namespace septa::merge {

namespace {

struct MethodEntry {
  Method method;
  const char* name;
};
constexpr MethodEntry kMethods[] = {
    {Method::kLinear, "linear"},       {Method::kTaskArithmetic, "task_arithmetic"},
    {Method::kTies, "ties"},           {Method::kDareLinear, "dare_linear"},
    {Method::kDareTies, "dare_ties"},  {Method::kSlerp, "slerp"},
};

class Reader {
 public:
  explicit Reader(const std::string& label) : label_(label) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& what) const {
    const YAML::Mark mark = node.Mark();
    const std::string place = mark.is_null() ? label_ : label_ + ":" + std::to_string(mark.line + 1);
    throw FormatError(place + ": " + what);
  }

  void check_keys(const YAML::Node& map, const std::set<std::string>& allowed, const std::string& where,
                  const std::set<std::string>& unsupported = {}) const {
    if (!map.IsMap()) fail(map, where + " must be a mapping");
    for (const auto& item : map) {
      const std::string key = item.first.as<std::string>();
      if (unsupported.count(key))
        fail(item.first, where + "'" + key + "' is not supported by septa merge (whole-model merges of raw checkpoints only)");
      if (!allowed.count(key)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail(item.first, "unknown key '" + key + "' in " + (where.empty() ? "the config" : where) + " (known: " + list + ")");
      }
    }
  }

  std::string string(const YAML::Node& node, const std::string& key) const {
    if (!node.IsScalar()) fail(node, "'" + key + "' must be a string");
    return node.as<std::string>();
  }

  double number(const YAML::Node& node, const std::string& key) const {
    if (!node.IsScalar())
      fail(node, "'" + key + "' must be a number (gradients and per-tensor filters are not supported)");
    try {
      const double value = node.as<double>();
      if (!std::isfinite(value)) fail(node, "'" + key + "' must be finite");
      return value;
    } catch (const YAML::Exception&) {
      fail(node, "'" + key + "' must be a number, found '" + node.as<std::string>() + "'");
    }
  }

  bool boolean(const YAML::Node& node, const std::string& key) const {
    try {
      if (!node.IsScalar()) throw YAML::Exception(node.Mark(), "");
      return node.as<bool>();
    } catch (const YAML::Exception&) {
      fail(node, "'" + key + "' must be true or false");
    }
  }

  std::uint64_t unsigned_integer(const YAML::Node& node, const std::string& key) const {
    try {
      if (!node.IsScalar() || node.as<std::string>().find('-') != std::string::npos) throw YAML::Exception(node.Mark(), "");
      return node.as<std::uint64_t>();
    } catch (const YAML::Exception&) {
      fail(node, "'" + key + "' must be a non-negative integer");
    }
  }

 private:
  std::string label_;
};

}  // namespace

Method parse_method(const std::string& name) {
  for (const auto& entry : kMethods)
    if (name == entry.name) return entry.method;
  std::string list;
  for (const auto& entry : kMethods) list += (list.empty() ? "" : ", ") + std::string(entry.name);
  throw OptionError("merge_method '" + name + "' is not one of " + list);
}

const char* method_name(Method method) {
  for (const auto& entry : kMethods)
    if (method == entry.method) return entry.name;
  return "?";
}

MergeConfig parse_config(const std::string& yaml, const std::string& label) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    throw FormatError(label + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  const Reader in(label);
  if (!root.IsMap()) throw FormatError(label + ": the config must be a YAML mapping");
  in.check_keys(root, {"merge_method", "base_model", "models", "parameters", "dtype", "out_dtype", "seed"}, "",
                {"slices", "tokenizer_source", "tokenizer", "chat_template", "modules", "merge_method_sequence"});
  MergeConfig config;
  config.source = label;
  if (!root["merge_method"]) throw FormatError(label + ": 'merge_method' is missing");
  try {
    config.method = parse_method(in.string(root["merge_method"], "merge_method"));
  } catch (const OptionError& e) {
    in.fail(root["merge_method"], e.what());
  }
  if (root["base_model"]) config.base_model = in.string(root["base_model"], "base_model");
  if (root["dtype"]) config.dtype = in.string(root["dtype"], "dtype");
  if (root["out_dtype"]) config.dtype = in.string(root["out_dtype"], "out_dtype");
  if (root["seed"]) config.seed = in.unsigned_integer(root["seed"], "seed");
  if (const YAML::Node parameters = root["parameters"]) {
    in.check_keys(parameters, {"normalize", "lambda", "weight", "density", "t"}, "parameters: ");
    if (parameters["normalize"]) config.normalize = in.boolean(parameters["normalize"], "normalize");
    if (parameters["lambda"]) config.lambda = in.number(parameters["lambda"], "lambda");
    if (parameters["weight"]) config.weight = in.number(parameters["weight"], "weight");
    if (parameters["density"]) config.density = in.number(parameters["density"], "density");
    if (parameters["t"]) config.t = in.number(parameters["t"], "t");
  }
  const YAML::Node models = root["models"];
  if (!models) throw FormatError(label + ": 'models' is missing");
  if (!models.IsSequence()) in.fail(models, "'models' must be a list of {model, parameters}");
  for (const YAML::Node& item : models) {
    in.check_keys(item, {"model", "parameters"}, "models[]: ");
    if (!item["model"]) in.fail(item, "a models entry without 'model'");
    ModelEntry entry;
    entry.model = in.string(item["model"], "model");
    if (const YAML::Node parameters = item["parameters"]) {
      in.check_keys(parameters, {"weight", "density"}, "models[].parameters: ");
      if (parameters["weight"]) entry.weight = in.number(parameters["weight"], "weight");
      if (parameters["density"]) entry.density = in.number(parameters["density"], "density");
    }
    config.models.push_back(std::move(entry));
  }
  return config;
}

MergeConfig load_config(const std::string& path) {
  std::string text;
  {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw IoError(path + ": cannot open the merge config");
    char buffer[4096];
    while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, f)) text.append(buffer, n);
    std::fclose(f);
  }
  return parse_config(text, path);
}

std::uint64_t parse_size(const std::string& text, const std::string& option) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::pair<const char*, double> kUnits[] = {
      {"", 1}, {"B", 1}, {"K", 1e3}, {"KB", 1e3}, {"M", 1e6}, {"MB", 1e6}, {"G", 1e9}, {"GB", 1e9},
      {"T", 1e12}, {"TB", 1e12}, {"KIB", 1024.0}, {"MIB", 1048576.0}, {"GIB", 1073741824.0}};
  for (const auto& [name, factor] : kUnits)
    if (used > 0 && unit == name && value >= 0 && std::isfinite(value))
      return static_cast<std::uint64_t>(value * factor);
  throw OptionError(option + " '" + text + "' is not a size (bytes, optionally with KB, MB, GB, KiB, MiB or GiB)");
}

}  // namespace septa::merge
