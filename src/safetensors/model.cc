// Opening a model: a .safetensors file, a directory with model.safetensors, or a sharded
// directory with model.safetensors.index.json.
#include <sys/stat.h>

#include <set>

#include "safetensors/json.h"
#include "safetensors/safetensors.h"
#include "safetensors/file_io.h"
#include "septa/error.h"

namespace septa::safetensors {

namespace {

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

Model Model::open(const std::string& path) {
  Model model;
  model.path_ = path;
  std::vector<std::string> files;
  // weight_map of the index, checked against the shards' contents below.
  std::vector<std::pair<std::string, std::string>> weight_map;
  std::string index_path;
  if (is_directory(path)) {
    if (exists(path + "/" + kIndexFile)) {
      index_path = path + "/" + kIndexFile;
      const json::Value root = json::parse(read_text_file(index_path), index_path);
      const json::Value* map = root.kind == json::Value::Kind::kObject ? root.find("weight_map") : nullptr;
      if (!map || map->kind != json::Value::Kind::kObject)
        throw ModelError(index_path + ": no \"weight_map\" object");
      std::set<std::string> seen;
      for (const auto& [tensor, file] : map->members) {
        if (file.kind != json::Value::Kind::kString)
          throw ModelError(index_path + ": weight_map '" + tensor + "': expected a file name string");
        if (file.text.empty() || file.text.find('/') != std::string::npos || file.text[0] == '.')
          throw ModelError(index_path + ": weight_map '" + tensor + "': file name '" + file.text +
                           "' must be a plain name inside the model directory");
        weight_map.emplace_back(tensor, file.text);
        if (seen.insert(file.text).second) files.push_back(file.text);
      }
      for (auto& file : files) file = path + "/" + file;
    } else if (exists(path + "/" + kSingleFile)) {
      files.push_back(path + "/" + kSingleFile);
    } else {
      throw IoError(path + ": neither " + kSingleFile + " nor " + kIndexFile + " in this directory");
    }
  } else {
    files.push_back(path);
  }
  for (const auto& file : files) model.files_.push_back(Reader::open(file));
  for (std::size_t f = 0; f < model.files_.size(); ++f)
    for (const TensorInfo& info : model.files_[f].tensors()) {
      const auto [it, inserted] = model.file_of_.emplace(info.name, f);
      if (!inserted)
        throw ModelError(path + ": tensor '" + info.name + "' is in both " + model.files_[it->second].path() +
                         " and " + model.files_[f].path());
      model.order_.push_back(&info);
    }
  if (!index_path.empty()) {
    for (const auto& [tensor, file] : weight_map) {
      const auto it = model.file_of_.find(tensor);
      const std::string expected = path + "/" + file;
      if (it == model.file_of_.end() || model.files_[it->second].path() != expected)
        throw ModelError(index_path + ": tensor '" + tensor + "' is listed in " + file +
                         (it == model.file_of_.end() ? std::string(", which does not hold it")
                                                     : ", but found in " + model.files_[it->second].path()));
    }
    if (weight_map.size() != model.order_.size()) {
      std::set<std::string_view> listed;
      for (const auto& entry : weight_map) listed.insert(entry.first);
      for (const TensorInfo* info : model.order_)
        if (!listed.count(info->name))
          throw ModelError(index_path + ": tensor '" + info->name + "' of a shard is missing from weight_map");
    }
  }
  return model;
}

const TensorInfo* Model::find(std::string_view name) const {
  const auto it = file_of_.find(name);
  return it == file_of_.end() ? nullptr : files_[it->second].find(name);
}

const Reader& Model::reader_of(std::string_view name) const {
  const auto it = file_of_.find(name);
  if (it == file_of_.end()) throw ModelError(path_ + ": no tensor '" + std::string(name) + "'");
  return files_[it->second];
}

const TensorInfo& Model::tensor(std::string_view name) const { return reader_of(name).tensor(name); }

std::uint64_t Model::total_bytes() const {
  std::uint64_t total = 0;
  for (const auto& file : files_) total += file.data_bytes();
  return total;
}

}  // namespace septa::safetensors
