// Datasets from IDX files and tensors.
#include "nn/data/dataset.h"

#include <sys/stat.h>

#include "nn/data/idx.h"
#include "septa/error.h"

namespace septa::nn {
namespace {

bool file_exists(const std::string& path) {
  struct stat info {};
  return stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

// The path of `name` in `dir`, preferring the gzip form; IoError when neither exists.
std::string find_file(const std::string& dir, const std::string& name) {
  const std::string base = dir + "/" + name;
  if (file_exists(base + ".gz")) return base + ".gz";
  if (file_exists(base)) return base;
  throw IoError(base + ".gz: no such file (is the dataset-fashion-mnist package installed? "
                "use --data DIR)");
}

torch::Tensor to_tensor(IdxArray& array) {
  // The tensor takes a copy: the IdxArray's vector dies with it.
  return torch::from_blob(array.data.data(), array.dims, torch::kUInt8).clone();
}

int64_t max_label(const torch::Tensor& labels) {
  return labels.numel() == 0 ? -1 : labels.max().item<int64_t>();
}

}  // namespace

int64_t Dataset::features() const {
  int64_t f = 1;
  for (int64_t d : shape) f *= d;
  return f;
}

Dataset image_dataset(const std::string& images_path, const std::string& labels_path,
                      int64_t classes) {
  IdxArray images = read_idx(images_path);
  IdxArray labels = read_idx(labels_path);
  if (images.dims.size() != 2 && images.dims.size() != 3)
    throw FormatError(images_path + ":0: expected images [N][H][W] or rows [N][F], got rank " +
                      std::to_string(images.dims.size()));
  if (labels.dims.size() != 1) throw FormatError(labels_path + ":0: expected labels of shape [N]");
  const int64_t n = images.dims[0];
  if (n == 0) throw FormatError(images_path + ":0: the file holds no examples");
  if (labels.dims[0] != n)
    throw FormatError(labels_path + ":0: " + std::to_string(labels.dims[0]) + " labels for " +
                      std::to_string(n) + " images in " + images_path);
  Dataset set;
  if (images.dims.size() == 3) set.shape = {1, images.dims[1], images.dims[2]};
  else set.shape = {images.dims[1]};
  if (set.features() == 0) throw FormatError(images_path + ":0: examples of size 0");
  set.inputs = to_tensor(images).reshape({n, set.features()}).to(torch::kFloat32).div_(255.0);
  set.labels = to_tensor(labels).to(torch::kInt64);
  const int64_t top = max_label(set.labels);
  set.classes = classes > 0 ? classes : top + 1;
  if (top >= set.classes)
    throw FormatError(labels_path + ":0: label " + std::to_string(top) + " outside [0, " +
                      std::to_string(set.classes) + ")");
  return set;
}

Dataset tabular_dataset(const torch::Tensor& features, const torch::Tensor& labels,
                        int64_t classes) {
  if (features.dim() != 2 || labels.dim() != 1 || features.size(0) != labels.size(0))
    throw FormatError("tabular data: expected features [N][F] and labels [N]");
  Dataset set;
  set.inputs = features.to(torch::kFloat32).contiguous();
  set.labels = labels.to(torch::kInt64).contiguous();
  set.shape = {features.size(1)};
  const int64_t top = max_label(set.labels);
  if (labels.numel() > 0 && set.labels.min().item<int64_t>() < 0)
    throw FormatError("tabular data: negative label");
  set.classes = classes > 0 ? classes : top + 1;
  if (top >= set.classes)
    throw FormatError("tabular data: label " + std::to_string(top) + " outside [0, " +
                      std::to_string(set.classes) + ")");
  return set;
}

Split load_idx_split(const std::string& dir) {
  Split split;
  const std::string train_images = find_file(dir, "train-images-idx3-ubyte");
  split.train = image_dataset(train_images, find_file(dir, "train-labels-idx1-ubyte"));
  const std::string test_images = find_file(dir, "t10k-images-idx3-ubyte");
  split.test = image_dataset(test_images, find_file(dir, "t10k-labels-idx1-ubyte"));
  if (split.train.shape != split.test.shape)
    throw FormatError(test_images + ":0: example shape differs from " + train_images);
  const int64_t classes = std::max(split.train.classes, split.test.classes);
  split.train.classes = split.test.classes = classes;
  return split;
}

Dataset take_first(const Dataset& set, int64_t count) {
  if (count <= 0 || count >= set.size()) return set;
  Dataset out = set;
  out.inputs = set.inputs.narrow(/*dim=*/0, /*start=*/0, count);
  out.labels = set.labels.narrow(/*dim=*/0, /*start=*/0, count);
  return out;
}

Dataset to_device(const Dataset& set, const torch::Device& device) {
  Dataset out = set;
  out.inputs = set.inputs.to(device);
  out.labels = set.labels.to(device);
  return out;
}

}  // namespace septa::nn
