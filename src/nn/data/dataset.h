// The data interface of the neural methods: labelled examples as tensors, with the example shape
// and the class count taken from the data. Sources: IDX image files (Fashion-MNIST), in-memory
// tabular tensors, and parallel text (the interface the translation methods will fill).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace septa::nn {

// Labelled examples. Inputs are stored flat; `shape` says how a method may view one example
// (images: {C, H, W}; tabular rows: {F}).
struct Dataset {
  torch::Tensor inputs;        // [N][F] float32, F = prod(shape)
  torch::Tensor labels;        // [N] int64 in [0, classes)
  std::vector<int64_t> shape;  // per example
  int64_t classes = 0;

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  int64_t features() const;  // F
};

// A training and a test set over the same example shape and classes.
struct Split {
  Dataset train;
  Dataset test;
};

// Images [N][H][W] (IDX rank 3) or rows [N][F] (rank 2) scaled to [0, 1], and their labels [N];
// `classes` = largest label + 1 unless given (> 0). FormatError names the file for mismatched
// counts, an empty set or a label out of range.
Dataset image_dataset(const std::string& images_path, const std::string& labels_path,
                      int64_t classes = 0);

// Tabular data already in memory: features [N][F] (converted to float32), labels [N].
// classes = largest label + 1 unless given. FormatError for inconsistent shapes.
Dataset tabular_dataset(const torch::Tensor& features, const torch::Tensor& labels,
                        int64_t classes = 0);

// Loads an IDX split from `dir`: train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
// t10k-images-..., t10k-labels-... (the MNIST / Fashion-MNIST names). Both sets get the larger
// class count of the two; their example shapes must agree. IoError names a missing file.
Split load_idx_split(const std::string& dir);

// The default data directory: Debian's dataset-fashion-mnist package.
inline constexpr const char* kDefaultImageDir = "/usr/share/datasets/fashion-mnist";

// The first `count` examples (all when count <= 0 or count >= size).
Dataset take_first(const Dataset& set, int64_t count);

// Moves inputs and labels to `device`.
Dataset to_device(const Dataset& set, const torch::Device& device);

// Sentence pairs for translation methods: source[i] translates into target[i]. No method reads
// it yet; readers of Debian's translation catalogs will return it.
struct ParallelText {
  std::string source_language;  // "en"
  std::string target_language;  // "de"
  std::vector<std::string> source;
  std::vector<std::string> target;
  int64_t size() const { return static_cast<int64_t>(source.size()); }
};

}  // namespace septa::nn
