// Unsupervised Forward-Forward (Hwang, Seo, Jung 2024, "Unsupervised Forward-Forward").
//
//   x_0 = images;  z_k = cell_k.encode(x_k);  x_{k+1} = LayerNorm(z_k).detach()
//   cell_k minimises its own unsupervised loss L_k(x_k) with its own AdamW; x_k carries no graph,
//   so no gradient crosses cells. The head minimises CE(head([x_1, ..., x_K]), y) on detached
//   features, so it changes no cell weight.
// Determinism: cell k is initialised and trained right after manual_seed(seed + 1000 (k + 1)),
// the head after manual_seed(seed + 999'983); latents are computed in fixed chunks. Training
// cell k in another process from the saved cells 0..k-1 therefore repeats the same arithmetic.
#include "septa/nn/uff.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "septa/error.h"

namespace septa::nn {
namespace {

constexpr int64_t kEncodeChunk = 1000;
constexpr uint64_t kHeadSeedOffset = 999'983;

uint64_t cell_seed(const UffOptions& options, int k) {
  return options.seed + 1000 * static_cast<uint64_t>(k + 1);
}

std::vector<int64_t> example_shape(const torch::Tensor& batch) {
  return std::vector<int64_t>(batch.sizes().begin() + 1, batch.sizes().end());
}

void ensure_dir(const std::string& dir) {
  struct stat info {};
  if (stat(dir.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) return;
  if (::mkdir(dir.c_str(), 0755) != 0) throw IoError(dir + ": cannot create directory");
}

// The input of the cell after `cells` (the last normalised latent; `images` when there are no
// cells); appends every cell's flattened normalised latent to `latents` when non-null.
torch::Tensor chain_inputs(std::vector<Cell>& cells, const torch::Tensor& images,
                           std::vector<torch::Tensor>* latents) {
  torch::Tensor x = images;
  for (auto& cell : cells) {
    x = encode_normalised(cell, x);
    if (latents) latents->push_back(x.reshape({x.size(0), -1}));
  }
  return x;
}

}  // namespace

void validate(const UffOptions& options) {
  if (options.widths.empty()) throw OptionError("--widths needs at least one cell");
  for (int64_t w : options.widths)
    if (w < 1) throw OptionError("--widths entries must be >= 1");
  if (options.cell_epochs < 1) throw OptionError("--epochs must be >= 1");
  if (options.head_epochs < 1) throw OptionError("--head-epochs must be >= 1");
  if (options.batch_size < 1) throw OptionError("--batch must be >= 1");
  if (!(options.learning_rate > 0.0)) throw OptionError("--lr must be > 0");
  if (!(options.head_learning_rate > 0.0)) throw OptionError("--head-lr must be > 0");
  if (options.head_hidden < 0) throw OptionError("--head-hidden must be >= 0");
  if (options.noise < 0.0 || options.noise >= 1.0) throw OptionError("--noise must be in [0, 1)");
}

CellSpec cell_spec(const UffOptions& options, int k, const std::vector<int64_t>& input_shape) {
  if (k < 0 || k >= static_cast<int>(options.widths.size()))
    throw OptionError("--cell " + std::to_string(k) + " outside [0, " +
                      std::to_string(options.widths.size() - 1) + "]");
  CellSpec spec;
  spec.kind = options.kind;
  spec.input_shape = input_shape;
  spec.width = options.widths[k];
  spec.noise = options.noise;
  spec.learning_rate = options.learning_rate;
  spec.weight_decay = options.weight_decay;
  return spec;
}

std::vector<int64_t> image_shape(CellKind kind) {
  if (kind == CellKind::kConvAutoencoder) return {1, 28, 28};
  return {784};
}

torch::Tensor encode_normalised(Cell& cell, const torch::Tensor& inputs) {
  torch::NoGradGuard no_grad;
  cell->eval();
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < inputs.size(0); start += kEncodeChunk) {
    const int64_t len = std::min(kEncodeChunk, inputs.size(0) - start);
    parts.push_back(normalise_latent(cell->encode(inputs.narrow(/*dim=*/0, start, len))));
  }
  return torch::cat(parts);
}

Cell train_cell(const UffOptions& options, int k, const torch::Tensor& inputs,
                const ProgressCallback& progress, double* final_loss) {
  validate(options);
  std::vector<int64_t> shape = example_shape(inputs);
  if (k == 0) shape = image_shape(options.kind);
  seed_everything(cell_seed(options, k));
  Cell cell = make_cell(cell_spec(options, k, shape));
  cell->train();
  const int64_t n = inputs.size(0);
  for (int epoch = 1; epoch <= options.cell_epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    const torch::Tensor order = shuffled_order(n);
    double sum = 0.0;
    int64_t batches = 0;
    for (int64_t first = 0; first < n; first += options.batch_size, ++batches)
      sum += cell->train_step(inputs.index_select(0, batch_indices(order, first, options.batch_size)));
    const double mean = sum / static_cast<double>(std::max<int64_t>(batches, 1));
    if (final_loss) *final_loss = mean;
    report_progress(progress, TrainProgress{"cell " + std::to_string(k), epoch,
                                            options.cell_epochs, {mean}, seconds_since(start), -1.0});
  }
  cell->reset_optimizer();
  return cell;
}

HeadImpl::HeadImpl(const HeadOptions& options) : options_(options) {
  int64_t in = options.in_features;
  if (options.hidden > 0) {
    hidden_ = register_module("hidden", torch::nn::Linear(in, options.hidden));
    in = options.hidden;
  }
  output_ = register_module("output", torch::nn::Linear(in, options.classes));
}

torch::Tensor HeadImpl::forward(const torch::Tensor& features) {
  torch::Tensor h = features;
  if (hidden_) h = torch::relu(hidden_->forward(h));
  return output_->forward(h);
}

torch::Tensor head_features(std::vector<Cell>& cells, const torch::Tensor& images) {
  std::vector<torch::Tensor> latents;
  chain_inputs(cells, images, &latents);
  return torch::cat(latents, /*dim=*/1);
}

Head train_head(const UffOptions& options, const torch::Tensor& features,
                const torch::Tensor& labels, const ProgressCallback& progress, double* final_loss) {
  validate(options);
  seed_everything(options.seed + kHeadSeedOffset);
  Head head(HeadOptions{features.size(1), options.head_hidden, /*classes=*/10});
  torch::optim::AdamW optimizer(head->parameters(),
                                torch::optim::AdamWOptions(options.head_learning_rate)
                                    .weight_decay(options.weight_decay));
  const torch::Tensor inputs = features.detach();
  const int64_t n = inputs.size(0);
  for (int epoch = 1; epoch <= options.head_epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    const torch::Tensor order = shuffled_order(n);
    double sum = 0.0;
    int64_t batches = 0;
    for (int64_t first = 0; first < n; first += options.batch_size, ++batches) {
      const torch::Tensor idx = batch_indices(order, first, options.batch_size);
      const torch::Tensor loss =
          torch::nn::functional::cross_entropy(head->forward(inputs.index_select(0, idx)), labels.index_select(0, idx));
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      sum += loss.item<double>();
    }
    const double mean = sum / static_cast<double>(std::max<int64_t>(batches, 1));
    if (final_loss) *final_loss = mean;
    report_progress(progress, TrainProgress{"head", epoch, options.head_epochs, {mean},
                                            seconds_since(start), -1.0});
  }
  return head;
}

torch::Tensor predict_head(Head& head, const torch::Tensor& features) {
  torch::NoGradGuard no_grad;
  head->eval();
  return head->forward(features).argmax(/*dim=*/1);
}

void save_head(Head& head, const std::string& path) {
  torch::serialize::OutputArchive archive;
  const auto& o = head->options_;
  archive.write("septa_head_version", torch::tensor({1.0}, torch::kFloat64));
  archive.write("septa_head_shape",
                torch::tensor({o.in_features, o.hidden, o.classes}, torch::kInt64).to(torch::kFloat64));
  head->save(archive);
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  try {
    archive.save_to(temp);
  } catch (const c10::Error& e) {
    std::remove(temp.c_str());
    throw IoError(path + ": cannot write head file");
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    throw IoError(path + ": cannot rename " + temp);
  }
}

Head load_head(const std::string& path) {
  if (!std::ifstream(path).good()) throw IoError(path + ": no such head file");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    throw ModelError(path + ": not a readable head file (truncated or corrupt)");
  }
  torch::Tensor shape;
  if (!archive.try_read("septa_head_shape", shape) || shape.numel() != 3)
    throw ModelError(path + ": not a septa head file");
  shape = shape.to(torch::kInt64);
  Head head(HeadOptions{shape[0].item<int64_t>(), shape[1].item<int64_t>(), shape[2].item<int64_t>()});
  try {
    head->load(archive);
  } catch (const c10::Error& e) {
    throw ModelError(path + ": head weights do not match the stored shape");
  }
  return head;
}

std::string cell_path(const std::string& dir, int k) {
  return dir + "/cell_" + std::to_string(k) + ".pt";
}

std::string head_path(const std::string& dir) { return dir + "/head.pt"; }

std::vector<Cell> load_cells(const std::string& dir, int count) {
  std::vector<Cell> cells;
  for (int k = 0; k < count; ++k) cells.push_back(load_cell(cell_path(dir, k)));
  return cells;
}

MethodResult train_uff(const UffOptions& options, const ImageSet& train, const ImageSet& test,
                       const ProgressCallback& progress, const std::string& save_dir) {
  validate(options);
  if (!save_dir.empty()) ensure_dir(save_dir);
  const auto start = std::chrono::steady_clock::now();
  MethodResult result;
  result.method = "uff-" + cell_kind_name(options.kind);
  result.epochs = options.cell_epochs;
  std::vector<Cell> cells;
  std::vector<torch::Tensor> latents;  // [N][D_k] per cell, normalised
  torch::Tensor inputs = train.images;
  for (int k = 0; k < static_cast<int>(options.widths.size()); ++k) {
    double loss = 0.0;
    cells.push_back(train_cell(options, k, inputs, progress, &loss));
    if (!save_dir.empty()) save_cell(cells.back(), cell_path(save_dir, k));
    result.parts.push_back("cell " + std::to_string(k));
    result.part_losses.push_back(loss);
    inputs = encode_normalised(cells.back(), inputs);
    latents.push_back(inputs.reshape({inputs.size(0), -1}));
  }
  double head_loss = 0.0;
  Head head = train_head(options, torch::cat(latents, /*dim=*/1), train.labels, progress, &head_loss);
  if (!save_dir.empty()) save_head(head, head_path(save_dir));
  result.parts.push_back("head");
  result.part_losses.push_back(head_loss);
  result.seconds = seconds_since(start);
  result.test_accuracy = accuracy(predict_head(head, head_features(cells, test.images)), test.labels);
  return result;
}

double train_cell_from_dir(const UffOptions& options, int k, const std::string& dir,
                           const ImageSet& train, const ProgressCallback& progress) {
  validate(options);
  cell_spec(options, k, {1});  // range check of k
  ensure_dir(dir);
  std::vector<Cell> before = load_cells(dir, k);
  const torch::Tensor inputs = chain_inputs(before, train.images, nullptr);
  double loss = 0.0;
  Cell cell = train_cell(options, k, inputs, progress, &loss);
  save_cell(cell, cell_path(dir, k));
  return loss;
}

double train_head_from_dir(const UffOptions& options, const std::string& dir,
                           const ImageSet& train, const ImageSet& test,
                           const ProgressCallback& progress) {
  validate(options);
  std::vector<Cell> cells = load_cells(dir, static_cast<int>(options.widths.size()));
  Head head = train_head(options, head_features(cells, train.images), train.labels, progress, nullptr);
  save_head(head, head_path(dir));
  return accuracy(predict_head(head, head_features(cells, test.images)), test.labels);
}

double evaluate_dir(const std::string& dir, int count, const ImageSet& test) {
  std::vector<Cell> cells = load_cells(dir, count);
  Head head = load_head(head_path(dir));
  const torch::Tensor features = head_features(cells, test.images);
  if (features.size(1) != head->options_.in_features)
    throw ModelError(head_path(dir) + ": head expects " +
                     std::to_string(head->options_.in_features) + " features, the cells give " +
                     std::to_string(features.size(1)));
  return accuracy(predict_head(head, features), test.labels);
}

bool same_weights(torch::nn::Module& a, torch::nn::Module& b) {
  const auto pa = a.named_parameters(/*recurse=*/true);
  const auto pb = b.named_parameters(/*recurse=*/true);
  if (pa.size() != pb.size()) return false;
  for (const auto& item : pa) {
    const torch::Tensor* other = pb.find(item.key());
    if (!other || !item.value().sizes().equals(other->sizes()) ||
        item.value().scalar_type() != other->scalar_type())
      return false;
    const torch::Tensor x = item.value().contiguous();
    const torch::Tensor y = other->contiguous();
    if (std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()) != 0) return false;
  }
  return true;
}

}  // namespace septa::nn
