// Unsupervised Forward-Forward (Hwang, Seo, Jung 2024, "Unsupervised Forward-Forward").
//
//   x_0 = inputs;  z_k = cell_k.encode(x_k);  x_{k+1} = LayerNorm(z_k).detach()
//   cell_k minimises its own unsupervised loss L_k(x_k) with its own AdamW; x_k carries no graph,
//   so no gradient crosses cells. The head minimises CE(head([x_1, ..., x_K]), y) on detached
//   features, so it changes no cell weight.
// Determinism: cell k is initialised right after seeding with seed + 1000 (k + 1), the head with
// seed + 999'983, and each then draws from its own generator continuing that stream; latents are
// computed in fixed chunks. Training cell k in another process from the saved cells 0..k-1
// therefore repeats the same arithmetic.
#include "nn/methods/uff/uff.h"

#include <sys/stat.h>

#include <fstream>

#include "septa/error.h"
#include "util/parse_int.h"

namespace septa::nn {
namespace {

constexpr int64_t kEncodeChunk = 1000;
constexpr uint64_t kHeadSeedOffset = 999'983;
constexpr const char* kHeadKind = "head";

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

bool exists(const std::string& path) { return std::ifstream(path).good(); }

std::string method_of(const RunContext& ctx) {
  const auto it = ctx.metadata.find(kMethodKey);
  return it == ctx.metadata.end() ? std::string() : it->second;
}

// The input of the cell after `cells` (the last normalised latent; `inputs` when there are no
// cells); appends every cell's flattened normalised latent to `latents` when non-null.
torch::Tensor chain_inputs(std::vector<Cell>& cells, const torch::Tensor& inputs,
                           std::vector<torch::Tensor>* latents) {
  torch::Tensor x = inputs;
  for (auto& cell : cells) {
    x = encode_normalised(cell, x);
    if (latents) latents->push_back(x.reshape({x.size(0), -1}));
  }
  return x;
}

void validate(const UffOptions& options) {
  if (options.widths.empty()) throw OptionError("--widths needs at least one cell");
  for (int64_t w : options.widths)
    if (w < 1) throw OptionError("--widths entries must be >= 1");
  if (options.cell_epochs < 1) throw OptionError("--epochs must be >= 1");
  if (options.head_epochs < 1) throw OptionError("--head-epochs must be >= 1");
  if (options.batch_size < 1) throw OptionError("--batch must be >= 1");
  if (options.noise < 0.0 || options.noise >= 1.0) throw OptionError("--noise must be in [0, 1)");
}

PartResult part(const std::string& name, const StageOutcome& outcome) {
  PartResult result{name, {}};
  const auto it = outcome.metrics.find("loss");
  if (it != outcome.metrics.end()) result.metrics["loss"] = it->second;
  return result;
}

double test_accuracy(std::vector<Cell>& cells, Head& head, const Dataset& test) {
  const torch::Tensor features = head_features(cells, test.inputs);
  if (features.size(1) != head->options_.in_features)
    throw ModelError("the head expects " + std::to_string(head->options_.in_features) +
                     " features, the cells give " + std::to_string(features.size(1)));
  return accuracy(predict_head(head, features), test.labels);
}

}  // namespace

UffOptions uff_options(const Options& options, CellKind kind) {
  UffOptions o;
  o.kind = kind;
  o.widths = options.sizes("widths");
  o.cell_epochs = static_cast<int>(options.integer("epochs"));
  if (options.has("head-epochs")) o.head_epochs = static_cast<int>(options.integer("head-epochs"));
  o.batch_size = options.integer("batch");
  o.learning_rate = options.real("lr");
  if (options.has("head-lr")) o.head_learning_rate = options.real("head-lr");
  o.weight_decay = options.real("weight-decay");
  if (options.has("noise")) o.noise = options.real("noise");
  o.head_hidden = options.integer("head-hidden");
  o.seed = options.seed();
  return o;
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

std::vector<int64_t> cell_input_shape(CellKind kind, const std::vector<int64_t>& example_shape) {
  if (kind == CellKind::kConvAutoencoder) {
    if (example_shape.size() != 3)
      throw OptionError("convolutional cells need image data ([C][H][W] examples)");
    return example_shape;
  }
  int64_t features = 1;
  for (int64_t d : example_shape) features *= d;
  return {features};
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
                const std::vector<int64_t>& input_shape, const RunContext& ctx,
                StageOutcome* outcome) {
  validate(options);
  const CellSpec spec = cell_spec(options, k, input_shape);
  Cell cell = nullptr;
  Stage stage;
  stage.generator = seeded_build(cell_seed(options, k), [&] { cell = make_cell(spec); });
  cell->to(ctx.device);
  cell->train();
  cell->generator_ = stage.generator;
  stage.name = "cell " + std::to_string(k);
  stage.epochs = options.cell_epochs;
  stage.batch_size = options.batch_size;
  stage.examples = inputs.size(0);
  stage.modules = {cell.get()};
  stage.optimizers = {&cell->optimizer()};
  stage.step = [&cell, &inputs](const torch::Tensor& batch) {
    return std::vector<double>{cell->train_step(inputs.index_select(0, batch))};
  };
  *outcome = run_stage(stage, ctx);
  cell->reset_optimizer();
  cell->generator_.reset();
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

torch::Tensor head_features(std::vector<Cell>& cells, const torch::Tensor& inputs) {
  std::vector<torch::Tensor> latents;
  chain_inputs(cells, inputs, &latents);
  return torch::cat(latents, /*dim=*/1);
}

Head train_head(const UffOptions& options, const torch::Tensor& features,
                const torch::Tensor& labels, int64_t classes, const RunContext& ctx,
                StageOutcome* outcome) {
  validate(options);
  Head head = nullptr;
  Stage stage;
  stage.generator = seeded_build(options.seed + kHeadSeedOffset, [&] {
    head = Head(HeadOptions{features.size(1), options.head_hidden, classes});
  });
  head->to(ctx.device);
  torch::optim::AdamW optimizer(head->parameters(),
                                torch::optim::AdamWOptions(options.head_learning_rate)
                                    .weight_decay(options.weight_decay));
  const torch::Tensor inputs = features.detach();
  stage.name = "head";
  stage.epochs = options.head_epochs;
  stage.batch_size = options.batch_size;
  stage.examples = inputs.size(0);
  stage.modules = {head.get()};
  stage.optimizers = {&optimizer};
  stage.step = [&](const torch::Tensor& batch) {
    const torch::Tensor loss = torch::nn::functional::cross_entropy(
        head->forward(inputs.index_select(0, batch)), labels.index_select(0, batch));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    return std::vector<double>{loss.item<double>()};
  };
  *outcome = run_stage(stage, ctx);
  return head;
}

torch::Tensor predict_head(Head& head, const torch::Tensor& features) {
  torch::NoGradGuard no_grad;
  head->eval();
  return head->forward(features).argmax(/*dim=*/1);
}

void save_head(Head& head, const std::string& path, const Metadata& metadata) {
  const auto& o = head->options_;
  CheckpointWriter writer;
  for (const auto& [key, value] : metadata) writer.set(key, value);
  writer.set(kKindKey, kHeadKind);
  writer.set("septa.nn.head.in_features", std::to_string(o.in_features));
  writer.set("septa.nn.head.hidden", std::to_string(o.hidden));
  writer.set("septa.nn.head.classes", std::to_string(o.classes));
  writer.add_module("", *head);
  writer.write(path);
}

Head load_head(const std::string& path, const std::string& method) {
  const Checkpoint file = Checkpoint::open(path, kHeadKind);
  if (!method.empty()) file.expect_method(method);
  auto size = [&](const char* key, int64_t low) {
    long long v = 0;
    if (!util::parse_int(file.get(key), low, int64_t{1} << 32, v))
      throw ModelError(path + ": metadata " + key + " is not a size: '" + file.get(key) + "'");
    return static_cast<int64_t>(v);
  };
  Head head(HeadOptions{size("septa.nn.head.in_features", 1), size("septa.nn.head.hidden", 0),
                        size("septa.nn.head.classes", 1)});
  file.load_module("", *head);
  return head;
}

std::string cell_path(const std::string& dir, int k) {
  return part_path(dir, "cell " + std::to_string(k));
}

std::string head_path(const std::string& dir) { return part_path(dir, "head"); }

std::vector<Cell> load_cells(const std::string& dir, int count, const std::string& method,
                             const torch::Device& device) {
  std::vector<Cell> cells;
  for (int k = 0; k < count; ++k) {
    cells.push_back(load_cell(cell_path(dir, k), method));
    cells.back()->to(device);
  }
  return cells;
}

RunResult train_uff(const UffOptions& options, const Split& data, const RunContext& ctx,
                    const std::string& dir) {
  validate(options);
  if (!dir.empty()) ensure_dir(dir);
  RunResult result;
  result.method = method_of(ctx);
  std::vector<Cell> cells;
  std::vector<torch::Tensor> latents;  // [N][D_k] per cell, normalised
  torch::Tensor inputs = data.train.inputs;
  std::vector<int64_t> shape = cell_input_shape(options.kind, data.train.shape);
  for (int k = 0; k < static_cast<int>(options.widths.size()); ++k) {
    const std::string name = "cell " + std::to_string(k);
    if (ctx.resume && !dir.empty() && exists(cell_path(dir, k))) {
      cells.push_back(load_cell(cell_path(dir, k), method_of(ctx)));
      cells.back()->to(ctx.device);
      result.parts.push_back({name, {}});
    } else {
      StageOutcome outcome;
      cells.push_back(train_cell(options, k, inputs, shape, ctx, &outcome));
      result.seconds += outcome.seconds;
      result.parts.push_back(part(name, outcome));
      if (outcome.complete && !dir.empty()) save_cell(cells.back(), cell_path(dir, k), ctx.metadata);
      if (outcome.stopped) {
        result.cancelled = true;
        return result;
      }
    }
    inputs = encode_normalised(cells.back(), inputs);
    shape = example_shape(inputs);
    latents.push_back(inputs.reshape({inputs.size(0), -1}));
  }
  StageOutcome outcome;
  Head head = train_head(options, torch::cat(latents, /*dim=*/1), data.train.labels,
                         data.train.classes, ctx, &outcome);
  result.seconds += outcome.seconds;
  result.parts.push_back(part("head", outcome));
  if (!outcome.complete) {
    result.cancelled = true;
    return result;
  }
  if (!dir.empty()) save_head(head, head_path(dir), ctx.metadata);
  result.metrics["test accuracy"] = test_accuracy(cells, head, data.test);
  return result;
}

RunResult train_cell_from_dir(const UffOptions& options, int k, const std::string& dir,
                              const Split& data, const RunContext& ctx) {
  validate(options);
  cell_spec(options, k, {1});  // range check of k
  ensure_dir(dir);
  std::vector<Cell> before = load_cells(dir, k, method_of(ctx), ctx.device);
  const torch::Tensor inputs = chain_inputs(before, data.train.inputs, nullptr);
  const std::vector<int64_t> shape =
      k == 0 ? cell_input_shape(options.kind, data.train.shape) : example_shape(inputs);
  StageOutcome outcome;
  Cell cell = train_cell(options, k, inputs, shape, ctx, &outcome);
  RunResult result;
  result.method = method_of(ctx);
  result.seconds = outcome.seconds;
  result.cancelled = !outcome.complete;
  result.parts.push_back(part("cell " + std::to_string(k), outcome));
  if (outcome.complete) save_cell(cell, cell_path(dir, k), ctx.metadata);
  return result;
}

RunResult train_head_from_dir(const UffOptions& options, const std::string& dir,
                              const Split& data, const RunContext& ctx) {
  validate(options);
  std::vector<Cell> cells =
      load_cells(dir, static_cast<int>(options.widths.size()), method_of(ctx), ctx.device);
  StageOutcome outcome;
  Head head = train_head(options, head_features(cells, data.train.inputs), data.train.labels,
                         data.train.classes, ctx, &outcome);
  RunResult result;
  result.method = method_of(ctx);
  result.seconds = outcome.seconds;
  result.cancelled = !outcome.complete;
  result.parts.push_back(part("head", outcome));
  if (!outcome.complete) return result;
  save_head(head, head_path(dir), ctx.metadata);
  result.metrics["test accuracy"] = test_accuracy(cells, head, data.test);
  return result;
}

double evaluate_dir(const std::string& dir, int count, const std::string& method,
                    const Dataset& test, const torch::Device& device) {
  std::vector<Cell> cells = load_cells(dir, count, method, device);
  Head head = load_head(head_path(dir), method);
  head->to(device);
  try {
    return test_accuracy(cells, head, test);
  } catch (const ModelError& e) {
    throw ModelError(head_path(dir) + ": " + e.what());
  }
}

}  // namespace septa::nn
