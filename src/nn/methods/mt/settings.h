// The study's directions, settings and options: which model serves each direction in each
// setting, and where its file lies in a study directory (torch-free).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "nn/methods/mt/corpus.h"

namespace septa::nn::mt {

struct Direction {
  std::string source, target;  // language codes, "en" among them
  std::string name() const { return source + "-" + target; }
};

// Every direction of the study: X->en then en->X for each language, in group order.
std::vector<Direction> all_directions(const Groups& groups);
// The X->en directions of group g.
std::vector<Direction> to_english(const Groups& groups, size_t g);
std::vector<Direction> from_english(const Groups& groups, size_t g);

// The merges of DATM: `septa merge` methods and the settings they serve, in the same order.
inline constexpr const char* kMergeMethods[] = {"ties", "linear", "task_arithmetic"};
inline constexpr const char* kMergeSettings[] = {"datm-ties", "datm-linear", "datm-ta"};

// Files of a study directory, relative to it: a trained model, a merged model's folder.
std::string model_file(const std::string& name);
std::string merged_dir(const std::string& method, size_t g);

// Which model serves each direction in each setting: setting -> direction -> model reference
// ("models/<name>.safetensors" or "merged/<method>.g<g>/model.safetensors", relative to the
// study directory; "" for the copy baseline). Settings in table order.
std::vector<std::pair<std::string, std::map<std::string, std::string>>> setting_models(const Groups& groups);

}  // namespace septa::nn::mt
