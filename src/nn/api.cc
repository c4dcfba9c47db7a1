// The public entry points (septa/nn/nn.h): load the data, resolve the device, look the method
// up in the registry and call it.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>

#include <ostream>

#include "nn/checkpoint.h"
#include "nn/guarded.h"
#include "nn/registry.h"
#include "septa/nn/nn.h"

namespace septa::nn {
namespace {

struct Prepared {
  const MethodEntry& entry;
  Options options;
  Split data;
  RunContext ctx;
};

Prepared prepare(const RunConfig& config, const ProgressCallback& progress) {
  const MethodEntry& entry = find_method(config.method);
  Options options(entry.info, config.options);
  const std::string device = resolve_device(config.device);
  set_threads(config.threads);
  Split data = load_idx_split(config.data_dir);
  data.train = take_first(data.train, config.limit);
  data.test = take_first(data.test, config.test_limit);
  RunContext ctx;
  ctx.device = torch_device(device);
  data.train = to_device(data.train, ctx.device);
  data.test = to_device(data.test, ctx.device);
  ctx.progress = progress;
  ctx.state_dir = config.dir;
  ctx.resume = config.resume;
  ctx.metadata = run_metadata(options);
  return Prepared{entry, std::move(options), std::move(data), std::move(ctx)};
}

const MethodEntry& with_parts(const RunConfig& config, const char* command) {
  const MethodEntry& entry = find_method(config.method);
  if (!entry.info.has_parts)
    throw OptionError(std::string(command) + ": method " + config.method +
                      " is not trained part by part (use a uff-* method)");
  if (config.dir.empty()) throw OptionError(std::string(command) + " needs --cells-dir DIR");
  return entry;
}

void ensure_dir(const std::string& dir) {
  struct stat info {};
  if (dir.empty() || (stat(dir.c_str(), &info) == 0 && S_ISDIR(info.st_mode))) return;
  if (::mkdir(dir.c_str(), 0755) != 0) throw IoError(dir + ": cannot create directory");
}

RunResult finish(RunResult result, const RunContext& ctx) {
  result.device = ctx.device.is_cuda() ? "cuda" : "cpu";
  return result;
}

// The file of a run directory that names its method and options: DIR/model.safetensors (a
// slimmable ViT), else the first DIR/vit_*.safetensors (separately trained ViTs).
std::string run_file(const std::string& dir) {
  if (dir.empty()) throw OptionError("needs --save-dir DIR (the directory of a training run)");
  const std::string model = part_path(dir, "model");
  if (std::ifstream(model).good()) return model;
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* entry = ::readdir(d)) {
      const std::string name = entry->d_name;
      if (name.rfind("vit_", 0) == 0 && name.size() > 16 &&
          name.compare(name.size() - 12, 12, ".safetensors") == 0)
        names.push_back(name);
    }
    ::closedir(d);
  }
  if (names.empty()) throw IoError(model + ": no such file (and no vit_*.safetensors in " + dir + ")");
  std::sort(names.begin(), names.end());
  return dir + "/" + names.front();
}

// The method entry and prepared run of the model saved in config.dir.
Prepared prepare_saved(const RunConfig& config) {
  const Checkpoint file = Checkpoint::open(run_file(config.dir), "vit");
  RunConfig saved = config;
  saved.method = file.get(kMethodKey);
  try {
    saved.options = Options::parse_canonical(file.get(kOptionsKey));
    Options check(find_method(saved.method).info, saved.options);
  } catch (const OptionError& e) {
    throw ModelError(file.path() + ": bad stored method or options: " + e.what());
  }
  Prepared p = prepare(saved, nullptr);
  if (!p.entry.widths.report)
    throw OptionError("method " + saved.method + " has no per-width models");
  return p;
}

}  // namespace

std::vector<WidthRow> width_report(const RunConfig& config, const std::vector<double>& off_grid,
                                   bool latency) {
  return guarded([&] {
    Prepared p = prepare_saved(config);
    return p.entry.widths.report(RunInputs{p.options, p.data, p.ctx, config.dir}, off_grid, latency);
  });
}

void export_width(const RunConfig& config, double r, const std::string& path) {
  guarded([&] {
    Prepared p = prepare_saved(config);
    if (!p.entry.widths.export_width)
      throw OptionError("method " + p.options.method() + " stores one ViT per width: copy its file");
    p.entry.widths.export_width(RunInputs{p.options, p.data, p.ctx, config.dir}, r, path);
    return 0;
  });
}

RunResult train(const RunConfig& config, const ProgressCallback& progress) {
  return guarded([&] {
  Prepared p = prepare(config, progress);
  ensure_dir(config.dir);
  return finish(p.entry.train(RunInputs{p.options, p.data, p.ctx, config.dir}), p.ctx);
  });
}

RunResult train_part(const RunConfig& config, int k, const ProgressCallback& progress) {
  return guarded([&] {
  with_parts(config, "train-cell");
  Prepared p = prepare(config, progress);
  const int count = p.entry.parts.count(p.options);
  if (k < 0 || k >= count)
    throw OptionError("--cell " + std::to_string(k) + " outside [0, " + std::to_string(count - 1) +
                      "] (--widths gives " + std::to_string(count) + " cells)");
  return finish(p.entry.parts.train_part(RunInputs{p.options, p.data, p.ctx, config.dir}, k), p.ctx);
  });
}

RunResult train_head(const RunConfig& config, const ProgressCallback& progress) {
  return guarded([&] {
    with_parts(config, "train-head");
    Prepared p = prepare(config, progress);
    return finish(p.entry.parts.train_head(RunInputs{p.options, p.data, p.ctx, config.dir}), p.ctx);
  });
}

RunResult evaluate(const RunConfig& config) {
  return guarded([&] {
  if (config.dir.empty()) throw OptionError("eval needs --cells-dir DIR");
  // The method and its options are those the saved head was trained with.
  const Checkpoint head = Checkpoint::open(part_path(config.dir, "head"), "head");
  RunConfig saved = config;
  saved.method = head.get(kMethodKey);
  try {
    saved.options = Options::parse_canonical(head.get(kOptionsKey));
    with_parts(saved, "eval");
    Options check(find_method(saved.method).info, saved.options);
  } catch (const OptionError& e) {
    throw ModelError(head.path() + ": bad stored method or options: " + e.what());
  }
  Prepared p = prepare(saved, nullptr);
  return finish(p.entry.parts.evaluate(RunInputs{p.options, p.data, p.ctx, config.dir}), p.ctx);
  });
}

bool compare(const std::string& dir_a, const std::string& dir_b, std::ostream& report) {
  return guarded([&] {
  const Checkpoint head = Checkpoint::open(part_path(dir_a, "head"), "head");
  const MethodEntry& entry = find_method(head.get(kMethodKey));
  if (!entry.info.has_parts) throw ModelError(head.path() + ": not a part-by-part method");
  return entry.parts.compare(dir_a, dir_b, report);
  });
}

}  // namespace septa::nn
