// nn_bench: FF, each UFF variant and the backprop baseline on Fashion-MNIST, each method in its
// own child process (so its peak RSS is its own), with a progress line per epoch and a summary:
// test accuracy, per-part local loss, training wall time, peak RSS.
//
//   nn_bench [--methods ff,uff-ae,uff-dae,uff-conv,backprop] [--data DIR] [--limit N]
//            [--test-limit N] [--threads T] [--seed S] [--epochs E] [--device D]
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "septa/error.h"
#include "septa/nn/nn.h"
#include "util/progress_line.h"

namespace nn = septa::nn;

namespace {

std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted = true; }

std::vector<std::string> all_methods() {
  std::vector<std::string> names;
  for (const auto& info : nn::methods())
    if (info.name != "vba") names.push_back(info.name);  // (x, y, z) arrays: bench/nn/vba_bench.sh
  return names;
}

struct BenchOptions {
  std::vector<std::string> methods = all_methods();
  std::string data = nn::RunConfig().data_dir;
  int64_t limit = 0;
  int64_t test_limit = 0;
  int threads = 2;
  int64_t seed = 1;
  int epochs = 0;  // 0: each method's default
  std::string device = "auto";
  std::string child;  // internal: run this one method and print a RESULT line
};

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) items.push_back(item);
  return items;
}

BenchOptions parse(int argc, char** argv) {
  BenchOptions o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << "usage: nn_bench [--methods M1,M2,..] [--data DIR] [--limit N] [--test-limit N]"
                   " [--threads T] [--seed S] [--epochs E] [--device auto|cpu|cuda]\n";
      std::exit(0);
    }
    if (i + 1 >= argc) throw septa::OptionError(arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--methods") o.methods = split(value);
    else if (arg == "--data") o.data = value;
    else if (arg == "--limit") o.limit = std::stoll(value);
    else if (arg == "--test-limit") o.test_limit = std::stoll(value);
    else if (arg == "--threads") o.threads = std::stoi(value);
    else if (arg == "--seed") o.seed = std::stoll(value);
    else if (arg == "--epochs") o.epochs = std::stoi(value);
    else if (arg == "--child") o.child = value;
    else if (arg == "--device") o.device = value;
    else throw septa::OptionError("unknown option " + arg);
  }
  for (const auto& m : o.methods) nn::method(m);  // validates the names
  return o;
}

bool print_progress(const nn::Progress& p) {
  const std::string line = septa::util::format_epoch(p.stage, p.epoch, p.epochs, p.metrics, p.seconds);
  std::printf("  %s  rss %.0f MiB\n", line.c_str(), nn::peak_rss_kib() / 1024.0);
  std::fflush(stdout);
  return !g_interrupted;
}

// Child: one method, then "RESULT method accuracy seconds rss_kib epochs part=loss ...".
int run_child(const BenchOptions& o) {
  nn::RunConfig config;
  config.method = o.child;
  config.data_dir = o.data;
  config.limit = o.limit;
  config.test_limit = o.test_limit;
  config.threads = o.threads;
  config.device = o.device;
  config.options["seed"] = std::to_string(o.seed);
  if (o.epochs > 0) config.options["epochs"] = std::to_string(o.epochs);
  const nn::RunResult r = nn::train(config, print_progress);
  if (r.cancelled) return 130;
  int epochs = 0;
  for (const auto& option : nn::method(o.child).options)
    if (option.name == "epochs") epochs = o.epochs > 0 ? o.epochs : std::stoi(option.default_value);
  std::printf("RESULT %s %.4f %.1f %lld %d", r.method.c_str(), r.metrics.at("test accuracy"),
              r.seconds, static_cast<long long>(nn::peak_rss_kib()), epochs);
  for (const auto& p : r.parts) {
    std::string part = p.name;
    for (char& c : part)
      if (c == ' ') c = '_';
    std::printf(" %s=%.5f", part.c_str(), p.metrics.count("loss") ? p.metrics.at("loss") : 0.0);
  }
  std::printf("\n");
  return 0;
}

std::string self_path() {
  char buffer[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  if (n <= 0) throw septa::IoError("/proc/self/exe: cannot resolve the bench binary");
  return std::string(buffer, static_cast<size_t>(n));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const BenchOptions o = parse(argc, argv);
    std::signal(SIGINT, on_sigint);
    if (!o.child.empty()) return run_child(o);
    std::vector<std::string> results;
    for (const auto& method : o.methods) {
      // Passive OpenMP waiting: with busy-waiting, 2 threads on 2 shared cores crawl.
      std::ostringstream command;
      command << "OMP_WAIT_POLICY=passive '" << self_path() << "' --child " << method
              << " --data '" << o.data << "' --limit " << o.limit << " --test-limit "
              << o.test_limit << " --threads " << o.threads << " --seed " << o.seed
              << " --epochs " << o.epochs << " --device " << o.device;
      std::printf("== %s\n", method.c_str());
      std::fflush(stdout);
      FILE* pipe = ::popen(command.str().c_str(), "r");
      if (!pipe) throw septa::IoError("cannot start " + command.str());
      char line[4096];
      while (std::fgets(line, sizeof line, pipe)) {
        const std::string text = line;
        if (text.rfind("RESULT ", 0) == 0) results.push_back(text.substr(7));
        else std::fputs(line, stdout);
        std::fflush(stdout);
      }
      const int status = ::pclose(pipe);
      if (status != 0) std::fprintf(stderr, "nn_bench: %s failed (status %d)\n", method.c_str(), status);
      if (g_interrupted) break;
    }
    std::printf("\n%-10s %9s %9s %9s %7s  %s\n", "method", "accuracy", "train_s", "rss_MiB",
                "epochs", "final local loss per part");
    for (const auto& r : results) {
      std::istringstream fields(r);
      std::string method, parts, part;
      double acc = 0, seconds = 0;
      long long rss = 0;
      int epochs = 0;
      fields >> method >> acc >> seconds >> rss >> epochs;
      while (fields >> part) parts += part + " ";
      std::printf("%-10s %9.4f %9.1f %9.0f %7d  %s\n", method.c_str(), acc, seconds, rss / 1024.0,
                  epochs, parts.c_str());
    }
    return 0;
  } catch (const septa::OptionError& e) {
    std::cerr << "nn_bench: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "nn_bench: " << e.what() << "\n";
    return 1;
  }
}
