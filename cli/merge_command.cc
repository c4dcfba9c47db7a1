// septa merge: merge checkpoints (safetensors) as mergekit-yaml does, streaming.
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <iostream>

#include "commands.h"
#include "arguments.h"
#include "interrupt.h"
#include "septa/error.h"
#include "septa/merge.h"
#include "util/parse_int.h"

namespace septa::cli {

namespace {

constexpr const char* kUsage =
    "usage: septa merge [CONFIG.yml] OUT_DIR [options]\n"
    "\n"
    "Merges checkpoints (safetensors: a file, a directory with model.safetensors, or shards\n"
    "with model.safetensors.index.json; BASE+ADAPTER adds a PEFT LoRA adapter to BASE) into\n"
    "OUT_DIR/model.safetensors, or shards plus the index. CONFIG.yml is mergekit's YAML:\n"
    "  merge_method: ties            # linear task_arithmetic ties dare_linear dare_ties slerp\n"
    "  base_model: path/base\n"
    "  models:\n"
    "    - model: path/a\n"
    "      parameters: {weight: 0.5, density: 0.5}\n"
    "  parameters: {normalize: true, lambda: 1.0}   # t: 0.5 for slerp\n"
    "  dtype: float16                # output dtype (computation is float32)\n"
    "  seed: 0                       # DARE's random drops\n"
    "Flags give the same settings and override the config's:\n"
    "  --method NAME        merge method\n"
    "  --base-model PATH    base model\n"
    "  --model SPEC         add a model (repeatable); --weight/--density after it apply to it,\n"
    "                       before any --model they set the defaults of all models\n"
    "  --weight W           model weight\n"
    "  --density D          fraction kept by TIES's trim / DARE's drop, in (0, 1]\n"
    "  --lambda X           scale of the mixed task vector (default 1)\n"
    "  --normalize BOOL     divide by the sum of weights (default: on for linear, ties)\n"
    "  --t T                slerp position (0 = base, 1 = the other model; required)\n"
    "  --dtype D            float32, float16 or bfloat16 (default: the inputs')\n"
    "  --seed N             seed of every random step (default 0)\n"
    "  --threads N          worker threads, 0 = all cores (output identical for any N)\n"
    "  --out-shard-size S   bytes per output shard (e.g. 5GB, 500MiB; default: one file)\n"
    "  --dry-run            print the resolved per-tensor plan, write nothing\n"
    "  --no-sync            do not fsync the output files before renaming them (faster on\n"
    "                       slow disks; the rename stays atomic, a crash may lose the data)\n"
    "  --quiet              no progress on stderr\n";

double number_option(const std::string& name, const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end) throw OptionError("option --" + name + ": invalid number '" + text + "'");
  return value;
}

long integer_option(const std::string& name, const std::string& text, long min) {
  long long value = 0;
  if (!util::parse_int(text, min, LONG_MAX, value))
    throw OptionError("option --" + name + ": invalid value '" + text + "' (allowed: " + std::to_string(min) +
                      " or more)");
  return static_cast<long>(value);
}

bool bool_option(const std::string& name, const std::string& text) {
  if (text == "true" || text == "1" || text == "yes") return true;
  if (text == "false" || text == "0" || text == "no") return false;
  throw OptionError("option --" + name + ": invalid value '" + text + "' (allowed: true, false)");
}

}  // namespace

int run_merge(int argc, char** argv) {
  static const std::set<std::string> kValued = {"method", "base-model", "model", "weight", "density", "lambda",
                                                "normalize", "t", "dtype", "seed", "threads", "out-shard-size"};
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> options;  // in command-line order
  bool dry_run = false, quiet = false, sync = true;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--dry-run") {
      dry_run = true;
      continue;
    }
    if (arg == "--no-sync") {
      sync = false;
      continue;
    }
    if (arg == "--quiet") {
      quiet = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    const auto eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (kValued.count(name)) {
      if (i + 1 >= argc) throw UsageError("option --" + name + " needs a value");
      value = argv[++i];
    }
    if (!kValued.count(name)) throw UsageError("unknown option " + arg);
    options.emplace_back(name, value);
  }
  if (positional.empty() || positional.size() > 2)
    throw UsageError(positional.empty() ? "OUT_DIR is required" : "too many arguments");
  if (positional.size() == 1 && !dry_run && options.empty())
    throw UsageError("give CONFIG.yml OUT_DIR, or the settings as flags");

  merge::MergeConfig config;
  if (positional.size() == 2) config = merge::load_config(positional[0]);
  const std::string out_dir = positional.back();
  config.sync = sync;
  bool models_from_flags = false;
  for (const auto& [name, value] : options) {
    if (name == "method") config.method = merge::parse_method(value);
    else if (name == "base-model") config.base_model = value;
    else if (name == "model") {
      if (!models_from_flags) config.models.clear();  // flags replace the config's list
      models_from_flags = true;
      config.models.push_back({value, std::nullopt, std::nullopt});
    } else if (name == "weight" || name == "density") {
      const double x = number_option(name, value);
      auto& slot = models_from_flags ? (name == "weight" ? config.models.back().weight : config.models.back().density)
                                     : (name == "weight" ? config.weight : config.density);
      slot = x;
    } else if (name == "lambda") config.lambda = number_option(name, value);
    else if (name == "normalize") config.normalize = bool_option(name, value);
    else if (name == "t") config.t = number_option(name, value);
    else if (name == "dtype") config.dtype = value;
    else if (name == "seed") config.seed = static_cast<std::uint64_t>(integer_option(name, value, 0));
    else if (name == "threads") config.threads = static_cast<int>(integer_option(name, value, 0));
    else if (name == "out-shard-size") config.out_shard_size = merge::parse_size(value, "option --out-shard-size");
  }

  install_interrupt_handler();
  const bool show = !quiet && !dry_run && ::isatty(STDERR_FILENO);
  double last_shown = -1;
  auto progress = [&](const merge::MergeProgress& p) {
    if (interrupted()) return false;
    if (show && (p.seconds - last_shown >= 0.5 || p.tensors_done == p.tensors_total)) {
      last_shown = p.seconds;
      std::cerr << "\rmerged " << p.tensors_done << "/" << p.tensors_total << " tensors, "
                << p.bytes_written / 1000000 << " MB, " << static_cast<int>(p.seconds * 10) / 10.0 << " s"
                << (p.tensors_done == p.tensors_total ? "\n" : "") << std::flush;
    }
    return true;
  };
  try {
    const merge::MergeResult result = merge::run_merge(config, out_dir, dry_run, progress);
    if (dry_run) {
      std::cout << result.plan;
      return 0;
    }
    if (!quiet) {
      std::cerr << "septa merge: " << result.tensors << " tensors, " << result.output_bytes << " bytes into "
                << out_dir << ":";
      for (const auto& file : result.files) std::cerr << " " << file;
      std::cerr << "\n";
    }
  } catch (const Cancelled&) {
    std::cerr << "\nsepta merge: interrupted; nothing written\n";
    return 130;
  }
  return 0;
}

}  // namespace septa::cli
