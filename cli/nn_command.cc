// "septa nn ...": the neural modules (Forward-Forward, unsupervised FF cells, backprop baseline).

#include <atomic>
#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "septa/error.h"
#include "septa/nn/fashion_mnist.h"
#include "septa/nn/methods.h"

namespace septa::cli {
namespace {

namespace nn = septa::nn;

std::atomic<bool> g_interrupted{false};  // set by SIGINT; the progress callback stops training

void on_sigint(int) { g_interrupted = true; }

// Everything the subcommands accept, declared once; the parser and the help derive from it.
struct Settings {
  std::string method = "uff-ae";
  std::string data = nn::kDefaultFashionMnistDir;
  std::string cells_dir;
  std::string other_dir;
  int cell = -1;
  int threads = 1;
  int64_t limit = 0;       // training images (0 = all)
  int64_t test_limit = 0;  // test images (0 = all)
  nn::MethodConfig config = nn::default_config("uff-ae");
};

struct OptionSpec {
  const char* name;
  const char* value;  // placeholder in the help
  const char* help;
  std::function<void(Settings&, const std::string&)> set;
};

int64_t parse_int(const std::string& name, const std::string& text) {
  try {
    size_t used = 0;
    const long long value = std::stoll(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  throw OptionError(name + " expects an integer, got '" + text + "'");
}

double parse_double(const std::string& name, const std::string& text) {
  try {
    size_t used = 0;
    const double value = std::stod(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  throw OptionError(name + " expects a number, got '" + text + "'");
}

std::vector<int64_t> parse_list(const std::string& name, const std::string& text) {
  std::vector<int64_t> values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) values.push_back(parse_int(name, item));
  if (values.empty()) throw OptionError(name + " expects a comma-separated list of sizes");
  return values;
}

const std::vector<OptionSpec>& option_table() {
  static const std::vector<OptionSpec> table = {
      {"--method", "M", "ff | uff-ae | uff-dae | uff-conv | backprop (default uff-ae)",
       [](Settings& s, const std::string& v) {
         s.method = v;
         s.config = nn::default_config(v);
       }},
      {"--data", "DIR", "Fashion-MNIST directory (default /usr/share/datasets/fashion-mnist)",
       [](Settings& s, const std::string& v) { s.data = v; }},
      {"--cells-dir", "DIR", "directory of cell_<k>.pt and head.pt files",
       [](Settings& s, const std::string& v) { s.cells_dir = v; }},
      {"--save-dir", "DIR", "train: also save the UFF cells and head here",
       [](Settings& s, const std::string& v) { s.cells_dir = v; }},
      {"--cell", "K", "train-cell: index of the cell to train (0-based)",
       [](Settings& s, const std::string& v) { s.cell = static_cast<int>(parse_int("--cell", v)); }},
      {"--epochs", "E", "epochs per cell / FF / backprop",
       [](Settings& s, const std::string& v) {
         s.config.ff.epochs = s.config.uff.cell_epochs = static_cast<int>(parse_int("--epochs", v));
       }},
      {"--head-epochs", "E", "epochs of the UFF classifier head",
       [](Settings& s, const std::string& v) {
         s.config.uff.head_epochs = static_cast<int>(parse_int("--head-epochs", v));
       }},
      {"--widths", "W1,W2,..", "UFF/backprop: latent units (dense) or channels (conv) per cell",
       [](Settings& s, const std::string& v) { s.config.uff.widths = parse_list("--widths", v); }},
      {"--hidden", "H1,H2,..", "FF: units per layer (default 500,500)",
       [](Settings& s, const std::string& v) { s.config.ff.hidden = parse_list("--hidden", v); }},
      {"--head-hidden", "H", "UFF head: hidden ReLU units (0 = linear head, the default)",
       [](Settings& s, const std::string& v) { s.config.uff.head_hidden = parse_int("--head-hidden", v); }},
      {"--lr", "X", "learning rate of the cells / FF layers / backprop",
       [](Settings& s, const std::string& v) {
         s.config.ff.learning_rate = s.config.uff.learning_rate = parse_double("--lr", v);
       }},
      {"--head-lr", "X", "learning rate of the UFF head",
       [](Settings& s, const std::string& v) {
         s.config.uff.head_learning_rate = parse_double("--head-lr", v);
       }},
      {"--theta", "X", "FF goodness threshold (default 2)",
       [](Settings& s, const std::string& v) { s.config.ff.theta = parse_double("--theta", v); }},
      {"--noise", "P", "denoising cells: masking probability (default 0.3)",
       [](Settings& s, const std::string& v) { s.config.uff.noise = parse_double("--noise", v); }},
      {"--batch", "B", "mini-batch size (default 100)",
       [](Settings& s, const std::string& v) {
         s.config.ff.batch_size = s.config.uff.batch_size = parse_int("--batch", v);
       }},
      {"--seed", "S", "random seed (default 1)",
       [](Settings& s, const std::string& v) {
         s.config.ff.seed = s.config.uff.seed = static_cast<uint64_t>(parse_int("--seed", v));
       }},
      {"--threads", "T", "torch intra-op threads (default 1: faster than 2 on shared cores)",
       [](Settings& s, const std::string& v) { s.threads = static_cast<int>(parse_int("--threads", v)); }},
      {"--limit", "N", "use the first N training images (default all)",
       [](Settings& s, const std::string& v) { s.limit = parse_int("--limit", v); }},
      {"--test-limit", "N", "use the first N test images (default all)",
       [](Settings& s, const std::string& v) { s.test_limit = parse_int("--test-limit", v); }},
  };
  return table;
}

void print_help(std::ostream& out) {
  out << "usage: septa nn <command> [options]\n\n"
         "commands:\n"
         "  train       --method M [--save-dir DIR]   train one method in this process and test it\n"
         "  train-cell  --method M --cell K --cells-dir DIR\n"
         "                                        train UFF cell K from the saved cells 0..K-1\n"
         "  train-head  --method M --cells-dir DIR    train the UFF head on the saved cells, test\n"
         "  eval        --cells-dir DIR               test the saved UFF cells and head\n"
         "  compare     DIR_A DIR_B                   exit 0 when both hold bit-identical weights\n\n"
         "options:\n";
  for (const auto& option : option_table()) {
    std::string left = std::string("  ") + option.name + " " + option.value;
    left.resize(std::max<size_t>(left.size() + 1, 26), ' ');
    out << left << option.help << "\n";
  }
  out << "\nThe same --method/--widths/--epochs/--seed must be given to every train-cell and\n"
         "train-head step of a pipeline. Exit status: 0 ok, 1 error, 2 usage.\n";
}

// Parses "--name value" pairs (and positional arguments) after the subcommand.
Settings parse(int argc, char** argv, int first, std::vector<std::string>* positional) {
  Settings settings;
  // --method first, so its defaults do not overwrite other options.
  for (int i = first; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--method") settings.config = nn::default_config(argv[i + 1]);
  for (int i = first; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      if (!positional) throw OptionError("unexpected argument '" + arg + "'");
      positional->push_back(arg);
      continue;
    }
    const OptionSpec* spec = nullptr;
    for (const auto& option : option_table())
      if (arg == option.name) spec = &option;
    if (!spec) throw OptionError("unknown option '" + arg + "' (see septa nn --help)");
    if (i + 1 >= argc) throw OptionError(arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--method") {
      settings.method = value;
      continue;
    }
    spec->set(settings, value);
  }
  settings.config.method = settings.method;
  return settings;
}

bool print_progress(const nn::TrainProgress& p) {
  std::printf("[%s] epoch %d/%d loss", p.stage.c_str(), p.epoch, p.epochs);
  for (double loss : p.losses) std::printf(" %.5f", loss);
  std::printf("  %.1fs", p.seconds);
  if (p.accuracy >= 0) std::printf("  test accuracy %.4f", p.accuracy);
  std::printf("\n");
  std::fflush(stdout);
  return !g_interrupted;
}

nn::FashionMnist load_data(const Settings& settings) {
  nn::FashionMnist data = nn::load_fashion_mnist(settings.data);
  data.train = nn::take_first(data.train, settings.limit);
  data.test = nn::take_first(data.test, settings.test_limit);
  return data;
}

void require_uff(const Settings& settings, const char* command) {
  if (!nn::is_uff(settings.method))
    throw OptionError(std::string(command) + " needs a uff-* --method, got '" + settings.method + "'");
  if (settings.cells_dir.empty()) throw OptionError(std::string(command) + " needs --cells-dir DIR");
}

int count_cells(const std::string& dir) {
  int count = 0;
  while (std::FILE* file = std::fopen(nn::cell_path(dir, count).c_str(), "rb")) {
    std::fclose(file);
    ++count;
  }
  if (count == 0) throw IoError(nn::cell_path(dir, 0) + ": no such cell file");
  return count;
}

int command_train(const Settings& settings) {
  const nn::FashionMnist data = load_data(settings);
  const nn::MethodResult result =
      nn::run_method(settings.config, data.train, data.test, print_progress,
                     nn::is_uff(settings.method) ? settings.cells_dir : std::string());
  std::printf("method %s  test accuracy %.4f  train %.1fs  peak RSS %.0f MiB\n",
              result.method.c_str(), result.test_accuracy, result.seconds,
              nn::peak_rss_kib() / 1024.0);
  for (size_t k = 0; k < result.parts.size(); ++k)
    std::printf("  %s final loss %.6f\n", result.parts[k].c_str(), result.part_losses[k]);
  return 0;
}

int command_train_cell(const Settings& settings) {
  require_uff(settings, "train-cell");
  if (settings.cell < 0) throw OptionError("train-cell needs --cell K");
  const nn::FashionMnist data = load_data(settings);
  const double loss = nn::train_cell_from_dir(settings.config.uff, settings.cell, settings.cells_dir,
                                              data.train, print_progress);
  std::printf("saved %s  final loss %.6f\n", nn::cell_path(settings.cells_dir, settings.cell).c_str(),
              loss);
  return 0;
}

int command_train_head(const Settings& settings) {
  require_uff(settings, "train-head");
  const nn::FashionMnist data = load_data(settings);
  const double acc = nn::train_head_from_dir(settings.config.uff, settings.cells_dir, data.train,
                                             data.test, print_progress);
  std::printf("saved %s  test accuracy %.4f\n", nn::head_path(settings.cells_dir).c_str(), acc);
  return 0;
}

int command_eval(const Settings& settings) {
  if (settings.cells_dir.empty()) throw OptionError("eval needs --cells-dir DIR");
  const int count = count_cells(settings.cells_dir);
  const nn::FashionMnist data = load_data(settings);
  std::printf("test accuracy %.4f (%d cells, %lld test images)\n",
              nn::evaluate_dir(settings.cells_dir, count, data.test), count,
              static_cast<long long>(data.test.size()));
  return 0;
}

int command_compare(const std::vector<std::string>& dirs) {
  if (dirs.size() != 2) throw OptionError("compare needs two directories");
  const int count = count_cells(dirs[0]);
  if (count_cells(dirs[1]) != count) {
    std::printf("different: %s and %s hold different numbers of cells\n", dirs[0].c_str(),
                dirs[1].c_str());
    return 1;
  }
  bool same = true;
  for (int k = 0; k < count; ++k) {
    nn::Cell a = nn::load_cell(nn::cell_path(dirs[0], k));
    nn::Cell b = nn::load_cell(nn::cell_path(dirs[1], k));
    const bool equal = nn::same_weights(*a, *b);
    std::printf("cell %d: %s\n", k, equal ? "bit-identical" : "DIFFERENT");
    same = same && equal;
  }
  nn::Head a = nn::load_head(nn::head_path(dirs[0]));
  nn::Head b = nn::load_head(nn::head_path(dirs[1]));
  const bool equal = nn::same_weights(*a, *b);
  std::printf("head: %s\n", equal ? "bit-identical" : "DIFFERENT");
  return same && equal ? 0 : 1;
}

}  // namespace

int run_nn(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    print_help(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  for (int i = 2; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      print_help(std::cout);
      return 0;
    }
  try {
    std::vector<std::string> positional;
    const Settings settings = parse(argc, argv, 2, command == "compare" ? &positional : nullptr);
    nn::set_threads(settings.threads);
    std::signal(SIGINT, on_sigint);
    if (command == "train") return command_train(settings);
    if (command == "train-cell") return command_train_cell(settings);
    if (command == "train-head") return command_train_head(settings);
    if (command == "eval") return command_eval(settings);
    if (command == "compare") return command_compare(positional);
    std::cerr << "septa nn: unknown command '" << command << "'\n";
    print_help(std::cerr);
    return 2;
  } catch (const OptionError& e) {
    std::cerr << "septa nn: " << e.what() << "\n";
    return 2;
  } catch (const Cancelled& e) {
    std::cerr << "septa nn: interrupted: " << e.what() << "\n";
    return 1;
  } catch (const Error& e) {
    std::cerr << "septa nn: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "septa nn: torch error: " << e.what_without_backtrace() << "\n";
    return 1;
  }
}

}  // namespace septa::cli
