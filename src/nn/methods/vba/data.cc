// .npy triples (see data.h).
#include "nn/methods/vba/data.h"

#include <sys/stat.h>

#include <cmath>

#include "nn/methods/vba/npy.h"
#include "septa/error.h"

namespace septa::nn::vba {

void make_dir(const std::string& dir) {
  struct stat info {};
  if (dir.empty() || (stat(dir.c_str(), &info) == 0 && S_ISDIR(info.st_mode))) return;
  const size_t slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0) make_dir(dir.substr(0, slash));
  if (::mkdir(dir.c_str(), 0755) != 0 && !(stat(dir.c_str(), &info) == 0 && S_ISDIR(info.st_mode)))
    throw IoError(dir + ": cannot create directory");
}

torch::Tensor read_matrix(const std::string& path) {
  const NpyArray array = read_npy(path);
  if (array.shape.empty())
    throw FormatError(path + ": a 0-d array; expected rows [N] or [N][F...]");
  const int64_t n = array.shape[0];
  if (n == 0) throw FormatError(path + ": the array has no rows");
  int64_t features = 1;
  for (size_t i = 1; i < array.shape.size(); ++i) features *= array.shape[i];
  if (features == 0) throw FormatError(path + ": the rows have no features");
  for (size_t i = 0; i < array.data.size(); ++i)
    if (!std::isfinite(array.data[i]))
      throw FormatError(path + ": row " + std::to_string(i / features) +
                        " holds a non-finite value");
  return torch::tensor(array.data, torch::kFloat64).to(torch::kFloat32).reshape({n, features});
}

Triples read_triples(const std::string& dir) {
  Triples t;
  t.x = read_matrix(dir + "/x.npy");
  t.y = read_matrix(dir + "/y.npy");
  t.z = read_matrix(dir + "/z.npy");
  const int64_t n = t.x.size(0);
  for (const auto& [name, tensor] : {std::pair<const char*, torch::Tensor>{"y", t.y}, {"z", t.z}})
    if (tensor.size(0) != n)
      throw FormatError(dir + "/" + name + ".npy: " + std::to_string(tensor.size(0)) +
                        " rows, but x.npy has " + std::to_string(n));
  return t;
}

void write_tensor(const std::string& path, const torch::Tensor& tensor, bool float64) {
  const torch::Tensor flat = tensor.detach().to(torch::kCPU).to(torch::kFloat64).contiguous();
  std::vector<double> data(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
  write_npy(path, std::vector<int64_t>(tensor.sizes().begin(), tensor.sizes().end()), data, float64);
}

void write_triples(const std::string& dir, const Triples& data) {
  make_dir(dir);
  write_tensor(dir + "/x.npy", data.x);
  write_tensor(dir + "/y.npy", data.y);
  write_tensor(dir + "/z.npy", data.z);
}

}  // namespace septa::nn::vba
