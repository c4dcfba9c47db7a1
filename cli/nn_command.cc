// "septa nn ...": a thin client of the neural modules' registry (septa/nn/nn.h). The options of
// each method, their help and their validation come from the registry's tables.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "interrupt.h"
#include "nn_client.h"
#include "septa/error.h"
#include "septa/nn/nn.h"

namespace septa::cli {
namespace {

namespace nn = septa::nn;

constexpr int kExitInterrupted = 130;  // as the CRF commands: 128 + SIGINT

// The options of the commands themselves (the methods' options come from the registry).
const std::vector<CommandOption>& command_options() {
  static const std::vector<CommandOption> table = {
      {"--method", "M", "the method (see below; default uff-ae)"},
      {"--data", "DIR", "IDX data directory (default /usr/share/datasets/fashion-mnist)"},
      {"--device", "D", "auto | cpu | cuda (default auto: CUDA when present)"},
      {"--threads", "T", "torch intra-op threads (default 1: faster than 2 on shared cores)"},
      {"--limit", "N", "use the first N training examples (default all)"},
      {"--test-limit", "N", "use the first N test examples (default all)"},
      {"--cells-dir", "DIR", "directory of a run's parts (cell_<k>.safetensors, head.safetensors)"},
      {"--save-dir", "DIR", "train: save parts and resumable training state here"},
      {"--cell", "K", "train-cell: index of the cell to train (0-based)"},
      {"--resume", nullptr, "continue an interrupted run from the state saved in its directory"},
      {"--width", "R", "export: the grid width ratio to export (e.g. 0.25)"},
      {"--out", "FILE", "export: the dense ViT checkpoint to write"},
      {"--off-grid", "R1,R2", "widths: also test these ratios off the grid (slimmable models)"},
      {"--no-latency", nullptr, "widths: skip the latency measurements"},
  };
  return table;
}

void print_help(std::ostream& out) {
  out << "usage: septa nn <command> [options]\n\n"
         "commands:\n"
         "  train       --method M [--save-dir DIR]   train one method in this process and test it\n"
         "  train-cell  --method M --cell K --cells-dir DIR\n"
         "                                        train cell K from the saved cells 0..K-1\n"
         "  train-head  --method M --cells-dir DIR    train the head on the saved cells, test\n"
         "  eval        --cells-dir DIR               test the saved cells and head\n"
         "  compare     DIR_A DIR_B                   exit 0 when both hold bit-identical weights\n"
         "  widths      --save-dir DIR                per-width accuracy, parameters, MACs, latency\n"
         "                                        of a scala / usnet / vit-separate run\n"
         "  export      --save-dir DIR --width R --out FILE\n"
         "                                        width R of a slimmable run as a dense ViT\n"
         "  mt          build-corpus|train|merge|eval|analyse: translation (septa nn mt --help)\n"
         "  vba         fit|query|sample|generate|bench   variational backdoor adjustment\n"
         "                                        (septa nn vba --help)\n\n"
         "options:\n";
  print_command_options(out, command_options());
  for (const auto& method : nn::methods()) {
    out << "\nmethod " << method.name << ": " << method.summary << "\n";
    print_method_options(out, method.options);
  }
  out << "\nEvery train-cell and train-head step of a pipeline must get the same --method and\n"
         "method options. Exit status: 0 ok, 1 error, 2 usage, 130 interrupted (Ctrl-C).\n";
}

struct Settings {
  nn::RunConfig config;
  int cell = -1;
  double width = -1;             // export --width
  std::string out;               // export --out
  std::vector<double> off_grid;  // widths --off-grid
  bool latency = true;           // widths: false with --no-latency
};

double parse_ratio(const std::string& name, const std::string& text) {
  try {
    size_t used = 0;
    const double value = std::stod(text, &used);
    if (used == text.size() && value > 0 && value <= 1) return value;
  } catch (const std::exception&) {
  }
  throw OptionError(name + " expects a width ratio in (0, 1], got '" + text + "'");
}

// Parses "--name value" pairs (and positional arguments) after the subcommand.
Settings parse(int argc, char** argv, int first, std::vector<std::string>* positional) {
  Settings s;
  s.config.method = "uff-ae";
  for (int i = first; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      if (!positional) throw OptionError("unexpected argument '" + arg + "'");
      positional->push_back(arg);
      continue;
    }
    if (arg == "--resume") {
      s.config.resume = true;
      continue;
    }
    if (arg == "--no-latency") {
      s.latency = false;
      continue;
    }
    // A method's switch "--no-X" alone means "--no-X 1" (--no-teacher, --no-ia, ...).
    if (arg.rfind("--no-", 0) == 0 && (i + 1 >= argc || std::string(argv[i + 1]).rfind("--", 0) == 0)) {
      s.config.options[arg.substr(2)] = "1";
      continue;
    }
    if (i + 1 >= argc) throw OptionError(arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--method") s.config.method = value;
    else if (arg == "--data") s.config.data_dir = value;
    else if (arg == "--device") s.config.device = value;
    else if (arg == "--threads") s.config.threads = static_cast<int>(parse_integer_option(arg, value));
    else if (arg == "--limit") s.config.limit = parse_integer_option(arg, value);
    else if (arg == "--test-limit") s.config.test_limit = parse_integer_option(arg, value);
    else if (arg == "--cells-dir" || arg == "--save-dir") s.config.dir = value;
    else if (arg == "--cell") s.cell = static_cast<int>(parse_integer_option(arg, value));
    else if (arg == "--width") s.width = parse_ratio(arg, value);
    else if (arg == "--out") s.out = value;
    else if (arg == "--off-grid") {
      size_t start = 0;
      while (start <= value.size()) {
        const size_t comma = std::min(value.find(',', start), value.size());
        s.off_grid.push_back(parse_ratio(arg, value.substr(start, comma - start)));
        start = comma + 1;
      }
    }
    else s.config.options[arg.substr(2)] = value;  // a method option: the registry validates it
  }
  nn::method(s.config.method);  // unknown methods are usage errors before any data is read
  return s;
}

int report(const nn::RunResult& result) {
  if (result.cancelled) {
    std::fprintf(stderr, "septa nn: interrupted; the finished epochs are saved where a directory "
                         "was given (continue with --resume)\n");
    return kExitInterrupted;
  }
  std::printf("method %s on %s", result.method.c_str(), result.device.c_str());
  for (const auto& [name, value] : result.metrics) std::printf("  %s %.4f", name.c_str(), value);
  std::printf("  train %.1fs  peak RSS %.0f MiB\n", result.seconds, nn::peak_rss_kib() / 1024.0);
  for (const auto& part : result.parts) {
    std::printf("  %s", part.name.c_str());
    for (const auto& [name, value] : part.metrics) std::printf(" final %s %.6f", name.c_str(), value);
    std::printf("\n");
  }
  return 0;
}

int dispatch(const std::string& command, int argc, char** argv) {
  std::vector<std::string> positional;
  const Settings s = parse(argc, argv, 2, command == "compare" ? &positional : nullptr);
  install_interrupt_handler();
  if (command == "train") return report(nn::train(s.config, print_epoch_progress));
  if (command == "train-cell") {
    if (s.cell < 0) throw OptionError("train-cell needs --cell K");
    return report(nn::train_part(s.config, s.cell, print_epoch_progress));
  }
  if (command == "train-head") return report(nn::train_head(s.config, print_epoch_progress));
  if (command == "eval") return report(nn::evaluate(s.config));
  if (command == "widths") {
    const std::vector<nn::WidthRow> rows = nn::width_report(s.config, s.off_grid, s.latency);
    std::printf("%-8s %6s %5s %9s %12s %12s %12s %14s %14s\n", "r", "d", "grid", "accuracy",
                "stored", "active", "MACs", "ms/img b=1", "ms/img b=256");
    for (const auto& row : rows)
      std::printf("%-8.5g %6lld %5s %8.2f%% %12lld %12lld %12lld %14.4f %14.5f\n", row.ratio,
                  static_cast<long long>(row.channels), row.on_grid ? "yes" : "NO",
                  100.0 * row.accuracy, static_cast<long long>(row.stored_parameters),
                  static_cast<long long>(row.active_parameters), static_cast<long long>(row.macs),
                  row.latency_batch1_ms, row.latency_batch256_ms);
    return 0;
  }
  if (command == "export") {
    if (s.width <= 0) throw OptionError("export needs --width R");
    if (s.out.empty()) throw OptionError("export needs --out FILE");
    nn::export_width(s.config, s.width, s.out);
    std::printf("wrote width %g as a dense ViT to %s\n", s.width, s.out.c_str());
    return 0;
  }
  if (command == "compare") {
    if (positional.size() != 2) throw OptionError("compare needs two directories");
    return nn::compare(positional[0], positional[1], std::cout) ? 0 : 1;
  }
  std::cerr << "septa nn: unknown command '" << command << "'\n";
  print_help(std::cerr);
  return 2;
}

}  // namespace

int run_nn(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "mt") return run_mt(argc, argv);
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    print_help(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? 2 : 0;
  }
  if (std::string(argv[1]) == "vba") return run_vba(argc - 1, argv + 1);
  for (int i = 2; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      print_help(std::cout);
      return 0;
    }
  // Only this function turns exceptions into exit codes; nothing escapes it.
  return run_reporting_errors("septa nn", [&] { return dispatch(argv[1], argc, argv); });
}

}  // namespace septa::cli
