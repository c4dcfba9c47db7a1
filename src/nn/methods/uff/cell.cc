// The cell interface: factory, training step, normalisation between cells, save/load.
#include "nn/methods/uff/cell.h"

#include <cstdio>
#include <string_view>
#include <sstream>

#include "nn/methods/uff/autoencoder_cells.h"
#include "septa/error.h"
#include "util/parse_int.h"

namespace septa::nn {
namespace {

constexpr const char* kCellKind = "cell";

std::string number(double x) {
  std::ostringstream out;
  out.precision(17);
  out << x;
  return out.str();
}

std::string shape_list(const std::vector<int64_t>& shape) {
  std::string out;
  for (int64_t d : shape) out += (out.empty() ? "" : ",") + std::to_string(d);
  return out;
}

double parse_number(const Checkpoint& file, const std::string& key) {
  const std::string& text = file.get(key);
  try {
    size_t used = 0;
    const double value = std::stod(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  throw ModelError(file.path() + ": metadata " + key + " is not a number: '" + text + "'");
}

std::vector<int64_t> parse_shape(const Checkpoint& file, const std::string& key) {
  const std::string text = file.get(key);
  std::vector<int64_t> shape;
  for (size_t begin = 0;;) {  // every comma-separated item, the empty ones too ("12," is no shape)
    const size_t end = text.find(',', begin);
    long long d = 0;
    if (!util::parse_int(std::string_view(text).substr(begin, end - begin), 1, int64_t{1} << 32, d))
      throw ModelError(file.path() + ": metadata " + key + " is not a shape: '" + text + "'");
    shape.push_back(d);
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  if (shape.empty() || shape.size() > 3) throw ModelError(file.path() + ": bad " + key);
  return shape;
}

}  // namespace

std::string cell_kind_name(CellKind kind) {
  switch (kind) {
    case CellKind::kAutoencoder: return "ae";
    case CellKind::kDenoisingAutoencoder: return "dae";
    case CellKind::kConvAutoencoder: return "conv";
  }
  throw InternalError("unknown CellKind");
}

CellKind parse_cell_kind(const std::string& name) {
  if (name == "ae") return CellKind::kAutoencoder;
  if (name == "dae") return CellKind::kDenoisingAutoencoder;
  if (name == "conv") return CellKind::kConvAutoencoder;
  throw OptionError("unknown cell kind '" + name + "' (expected ae, dae or conv)");
}

torch::optim::AdamW& CellImpl::optimizer() {
  if (!optimizer_)
    optimizer_ = std::make_unique<torch::optim::AdamW>(
        parameters(), torch::optim::AdamWOptions(spec_.learning_rate)
                          .weight_decay(spec_.weight_decay));
  return *optimizer_;
}

double CellImpl::train_step(const torch::Tensor& x) {
  torch::optim::AdamW& adamw = optimizer();
  const torch::Tensor loss = local_loss(x.detach());
  adamw.zero_grad();
  loss.backward();
  adamw.step();
  return loss.item<double>();
}

Cell make_cell(const CellSpec& spec) {
  if (spec.width < 1) throw OptionError("cell width must be >= 1, got " + std::to_string(spec.width));
  if (spec.noise < 0.0 || spec.noise >= 1.0)
    throw OptionError("--noise must be in [0, 1), got " + std::to_string(spec.noise));
  switch (spec.kind) {
    case CellKind::kAutoencoder: return Cell(std::shared_ptr<CellImpl>(std::make_shared<AutoencoderCellImpl>(spec)));
    case CellKind::kDenoisingAutoencoder:
      return Cell(std::shared_ptr<CellImpl>(std::make_shared<DenoisingAutoencoderCellImpl>(spec)));
    case CellKind::kConvAutoencoder: return Cell(std::shared_ptr<CellImpl>(std::make_shared<ConvAutoencoderCellImpl>(spec)));
  }
  throw InternalError("unknown CellKind");
}

torch::Tensor normalise_latent(const torch::Tensor& x) {
  std::vector<int64_t> shape(x.sizes().begin() + 1, x.sizes().end());
  return torch::layer_norm(x, shape, /*weight=*/{}, /*bias=*/{}, /*eps=*/1e-5);
}

void save_cell(Cell& cell, const std::string& path, const Metadata& metadata) {
  const CellSpec& spec = cell->spec_;
  CheckpointWriter writer;
  for (const auto& [key, value] : metadata) writer.set(key, value);
  writer.set(kKindKey, kCellKind);
  writer.set("septa.nn.cell.kind", cell_kind_name(spec.kind));
  writer.set("septa.nn.cell.input_shape", shape_list(spec.input_shape));
  writer.set("septa.nn.cell.width", std::to_string(spec.width));
  writer.set("septa.nn.cell.noise", number(spec.noise));
  writer.set("septa.nn.cell.learning_rate", number(spec.learning_rate));
  writer.set("septa.nn.cell.weight_decay", number(spec.weight_decay));
  writer.add_module("", *cell);
  writer.write(path);
}

Cell load_cell(const std::string& path, const std::string& method) {
  const Checkpoint file = Checkpoint::open(path, kCellKind);
  if (!method.empty()) file.expect_method(method);
  CellSpec spec;
  try {
    spec.kind = parse_cell_kind(file.get("septa.nn.cell.kind"));
  } catch (const OptionError& e) {
    throw ModelError(path + ": " + e.what());
  }
  spec.input_shape = parse_shape(file, "septa.nn.cell.input_shape");
  const double width = parse_number(file, "septa.nn.cell.width");
  if (!(width >= 1 && width <= 1e6)) throw ModelError(path + ": cell width outside [1, 1e6]");
  spec.width = static_cast<int64_t>(width);
  spec.noise = parse_number(file, "septa.nn.cell.noise");
  spec.learning_rate = parse_number(file, "septa.nn.cell.learning_rate");
  spec.weight_decay = parse_number(file, "septa.nn.cell.weight_decay");
  Cell cell = nullptr;
  try {
    cell = make_cell(spec);
  } catch (const OptionError& e) {
    throw ModelError(path + ": bad stored spec: " + e.what());
  }
  file.load_module("", *cell);
  return cell;
}

}  // namespace septa::nn
