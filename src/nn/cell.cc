// The cell interface: factory, training step, normalisation between cells, save/load.
#include "septa/nn/cell.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "septa/error.h"
#include "septa/nn/autoencoder_cells.h"

namespace septa::nn {
namespace {

constexpr int64_t kCellFileVersion = 1;

torch::Tensor scalar_tensor(double value) { return torch::tensor({value}, torch::kFloat64); }

double read_scalar(torch::serialize::InputArchive& archive, const std::string& key,
                   const std::string& path) {
  torch::Tensor value;
  if (!archive.try_read(key, value) || value.numel() != 1)
    throw ModelError(path + ": not a septa cell file (missing " + key + ")");
  return value.item<double>();
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

double CellImpl::train_step(const torch::Tensor& x) {
  if (!optimizer_)
    optimizer_ = std::make_unique<torch::optim::AdamW>(
        parameters(), torch::optim::AdamWOptions(spec_.learning_rate)
                          .weight_decay(spec_.weight_decay));
  const torch::Tensor loss = local_loss(x.detach());
  optimizer_->zero_grad();
  loss.backward();
  optimizer_->step();
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

void save_cell(Cell& cell, const std::string& path) {
  const CellSpec& spec = cell->spec_;
  torch::serialize::OutputArchive archive;
  archive.write("septa_cell_version", scalar_tensor(kCellFileVersion));
  archive.write("septa_cell_kind", scalar_tensor(static_cast<double>(spec.kind)));
  archive.write("septa_cell_input_shape",
                torch::tensor(spec.input_shape, torch::kInt64).to(torch::kFloat64));
  archive.write("septa_cell_width", scalar_tensor(static_cast<double>(spec.width)));
  archive.write("septa_cell_noise", scalar_tensor(spec.noise));
  archive.write("septa_cell_learning_rate", scalar_tensor(spec.learning_rate));
  archive.write("septa_cell_weight_decay", scalar_tensor(spec.weight_decay));
  cell->save(archive);
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  try {
    archive.save_to(temp);
  } catch (const c10::Error& e) {
    std::remove(temp.c_str());
    throw IoError(path + ": cannot write cell file");
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    throw IoError(path + ": cannot rename " + temp);
  }
}

Cell load_cell(const std::string& path) {
  if (!std::ifstream(path).good()) throw IoError(path + ": no such cell file");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    throw ModelError(path + ": not a readable cell file (truncated or corrupt)");
  }
  const double version = read_scalar(archive, "septa_cell_version", path);
  if (version != kCellFileVersion)
    throw ModelError(path + ": unknown cell file version " + std::to_string(version));
  CellSpec spec;
  const double kind = read_scalar(archive, "septa_cell_kind", path);
  if (kind < 0 || kind > static_cast<double>(CellKind::kConvAutoencoder))
    throw ModelError(path + ": unknown cell kind");
  spec.kind = static_cast<CellKind>(static_cast<int>(kind));
  torch::Tensor shape;
  if (!archive.try_read("septa_cell_input_shape", shape) || shape.dim() != 1)
    throw ModelError(path + ": missing input shape");
  shape = shape.to(torch::kInt64);
  spec.input_shape.assign(shape.data_ptr<int64_t>(), shape.data_ptr<int64_t>() + shape.numel());
  spec.width = static_cast<int64_t>(read_scalar(archive, "septa_cell_width", path));
  spec.noise = read_scalar(archive, "septa_cell_noise", path);
  spec.learning_rate = read_scalar(archive, "septa_cell_learning_rate", path);
  spec.weight_decay = read_scalar(archive, "septa_cell_weight_decay", path);
  Cell cell = nullptr;
  try {
    cell = make_cell(spec);
    cell->load(archive);
  } catch (const c10::Error& e) {
    throw ModelError(path + ": cell weights do not match the stored spec");
  } catch (const OptionError& e) {
    throw ModelError(path + ": bad stored spec: " + e.what());
  }
  return cell;
}

}  // namespace septa::nn
