// "septa nn vba fit|query|sample|generate|bench": a thin client of septa/nn/vba.h. The model
// options (--epochs, --hidden, ...) are the registry's "vba" table and are validated there.
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "commands.h"
#include "interrupt.h"
#include "nn_client.h"
#include "septa/error.h"
#include "septa/nn/nn.h"
#include "septa/nn/vba.h"

namespace septa::cli {
namespace {

namespace nn = septa::nn;
namespace vba = septa::nn::vba;

constexpr int kExitInterrupted = 130;

const std::vector<CommandOption>& command_options() {
  static const std::vector<CommandOption> table = {
      {"--data", "DIR", "fit, query: directory of x.npy, y.npy, z.npy (query reads x, y and log_p_do.npy if present)"},
      {"--dir", "DIR", "fit, query, sample: the model directory (one .safetensors per component)"},
      {"--part", "P", "fit: only prior | outcome | encoder | conditional | finetune (default: all, in order)"},
      {"--estimator", "E", "query: vba | separate | joint | naive | conditional (default vba)"},
      {"--k", "K", "query, bench: importance samples (default 100)"},
      {"--x", "FILE", "sample: .npy of treatments [R][X...]"},
      {"--n", "N", "sample: draws per treatment (default 10); generate, bench: training rows (default 50000)"},
      {"--conditional", nullptr, "sample: draw from the confounded p(y|x) instead of p(y|do(x))"},
      {"--out", "PATH", "query, sample: .npy output; generate: output directory"},
      {"--kind", "K", "generate, bench: linear-gaussian | fashion-composite (default linear-gaussian)"},
      {"--cell-n", "N", "bench fashion-composite: rows per (do(x), z) cell (default 10)"},
      {"--samples", "N", "bench fashion-composite: draws of y per class of x for the entropies (default 100)"},
      {"--dims", "D", "generate, bench: dimension of the linear-Gaussian model (default 5)"},
      {"--test-n", "N", "generate, bench: held-out rows (default 1000)"},
      {"--images", "DIR", "generate, bench: Fashion-MNIST IDX directory (default /usr/share/datasets/fashion-mnist)"},
      {"--data-seed", "S", "query, sample, generate, bench: seed of the data / sampling (default 1)"},
      {"--with-joint", nullptr, "bench: also train and measure the joint variant (failure mode)"},
      {"--limit", "N", "fit, query: first N rows"},
      {"--device", "D", "auto | cpu | cuda (default auto)"},
      {"--threads", "T", "torch intra-op threads (default 1)"},
      {"--resume", nullptr, "fit: continue an interrupted stage from its saved state"},
  };
  return table;
}

void print_help(std::ostream& out) {
  out << "usage: septa nn vba <command> [options]\n\n"
         "Variational backdoor adjustment: log p(y | do(x)) from observational (x, y, z).\n"
         "Values are stochastic lower bounds; their quality depends on the fitted p(z) and p(y|x,z).\n\n"
         "commands:\n"
         "  fit       --data DIR --dir MODEL   stage 1 (p(z), p(y|x,z), q(z|x,y), p(y|x) separately), stage 2 (q on the bound)\n"
         "  query     --dir MODEL --data DIR   log p(y|do(x)) per row, with ESS and standard error\n"
         "  sample    --dir MODEL --x FILE --out FILE   y ~ p(y|do(x)) (or p(y|x) with --conditional)\n"
         "  generate  --out DIR                synthetic data: linear-Gaussian with truth, or the Fashion-MNIST composite\n"
         "  bench     --dims D                 linear-Gaussian protocol: MAE of every estimator against the closed form\n"
         "  bench     --kind fashion-composite  image protocol: per-cell log-likelihoods, class entropies\n\n"
         "options:\n";
  print_command_options(out, command_options());
  out << "\nmodel options (fit, bench):\n";
  print_method_options(out, nn::method("vba").options);
  out << "\nExit status: 0 ok, 1 error, 2 usage, 130 interrupted (Ctrl-C).\n";
}

struct Settings {
  std::map<std::string, std::string> values;  // command options
  nn::OptionValues model;                     // the "vba" table's options
  bool conditional = false, with_joint = false, resume = false;

  std::string text(const std::string& name, const std::string& fallback = "") const {
    const auto it = values.find(name);
    return it == values.end() ? fallback : it->second;
  }
  int64_t integer(const std::string& name, int64_t fallback) const {
    const auto it = values.find(name);
    return it == values.end() ? fallback : parse_integer_option(name, it->second);
  }
};

Settings parse(int argc, char** argv) {
  Settings s;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) throw OptionError("unexpected argument '" + arg + "'");
    if (arg == "--conditional") { s.conditional = true; continue; }
    if (arg == "--with-joint") { s.with_joint = true; continue; }
    if (arg == "--resume") { s.resume = true; continue; }
    if (i + 1 >= argc) throw OptionError(arg + " needs a value");
    const std::string value = argv[++i];
    if (is_command_option(command_options(), arg)) s.values[arg] = value;
    else s.model[arg.substr(2)] = value;  // validated by the registry's table
  }
  return s;
}

int report_interrupted() {
  std::fprintf(stderr, "septa nn vba: interrupted; finished epochs are saved in the model directory "
                       "(continue with --resume)\n");
  return kExitInterrupted;
}

void no_model_options(const Settings& s, const char* command) {
  if (!s.model.empty())
    throw OptionError("--" + s.model.begin()->first + " is not an option of septa nn vba " + command);
}

int dispatch(const std::string& command, const Settings& s) {
  const std::string device = s.text("--device", "auto");
  const int threads = static_cast<int>(s.integer("--threads", 1));
  const uint64_t seed = static_cast<uint64_t>(s.integer("--data-seed", 1));
  if (command == "fit") {
    vba::FitConfig c;
    c.data = s.text("--data");
    if (c.data.empty()) throw OptionError("vba fit needs --data DIR");
    c.dir = s.text("--dir");
    c.part = s.text("--part");
    c.options = s.model;
    c.limit = s.integer("--limit", 0);
    c.device = device;
    c.threads = threads;
    c.resume = s.resume;
    const nn::RunResult r = vba::fit(c, print_epoch_progress);
    if (r.cancelled) return report_interrupted();
    std::printf("vba fit on %s: train %.1fs  peak RSS %.0f MiB\n", r.device.c_str(), r.seconds,
                nn::peak_rss_kib() / 1024.0);
    for (const auto& part : r.parts) {
      std::printf("  %s", part.name.c_str());
      for (const auto& [name, value] : part.metrics) std::printf("  final %s %.6f", name.c_str(), value);
      std::printf("\n");
    }
    return 0;
  }
  if (command == "query") {
    no_model_options(s, "query");
    vba::QueryConfig c;
    c.dir = s.text("--dir");
    c.data = s.text("--data");
    if (c.dir.empty() || c.data.empty()) throw OptionError("vba query needs --dir MODEL and --data DIR");
    c.estimator = s.text("--estimator", "vba");
    c.k = s.integer("--k", 100);
    c.seed = seed;
    c.limit = s.integer("--limit", 0);
    c.out = s.text("--out");
    c.device = device;
    c.threads = threads;
    const vba::QueryResult r = vba::query(c);
    std::printf("vba query (%s, K=%lld): %lld rows  mean log p %.4f  mean ESS %.2f  mean std error %.4f",
                c.estimator.c_str(), static_cast<long long>(c.k), static_cast<long long>(r.rows),
                r.mean_log_p, r.mean_ess, r.mean_std_error);
    if (r.has_truth) std::printf("  MAE vs log_p_do.npy %.4f", r.mean_abs_error);
    std::printf("\n");
    return 0;
  }
  if (command == "sample") {
    no_model_options(s, "sample");
    vba::SampleConfig c;
    c.dir = s.text("--dir");
    c.x = s.text("--x");
    if (c.dir.empty() || c.x.empty()) throw OptionError("vba sample needs --dir MODEL and --x FILE");
    c.n = s.integer("--n", 10);
    c.conditional = s.conditional;
    c.seed = seed;
    c.out = s.text("--out");
    c.device = device;
    c.threads = threads;
    vba::sample(c);
    std::printf("vba sample: wrote %s\n", c.out.c_str());
    return 0;
  }
  if (command == "generate") {
    no_model_options(s, "generate");
    vba::GenerateConfig c;
    c.kind = s.text("--kind", "linear-gaussian");
    c.dims = s.integer("--dims", 5);
    c.n = s.integer("--n", 50000);
    c.test_n = s.integer("--test-n", 1000);
    c.seed = seed;
    c.out = s.text("--out");
    c.images = s.text("--images", c.images);
    vba::generate(c);
    std::printf("vba generate: wrote %s\n", c.out.c_str());
    return 0;
  }
  if (command == "bench" && s.text("--kind", "linear-gaussian") == "fashion-composite") {
    vba::CompositeBenchConfig c;
    c.images = s.text("--images", c.images);
    c.n = s.integer("--n", 20000);
    c.cell_n = s.integer("--cell-n", 10);
    c.k = s.integer("--k", 20);
    c.samples = s.integer("--samples", 100);
    c.data_seed = seed;
    c.options = s.model;
    c.device = device;
    c.threads = threads;
    const vba::CompositeBenchReport r = vba::bench_fashion_composite(c, print_epoch_progress);
    if (r.cancelled) return report_interrupted();
    std::printf("Fashion-MNIST composite N=%lld, %lld rows per cell, K=%lld: train %.1fs, evaluation %.1fs\n",
                static_cast<long long>(c.n), static_cast<long long>(c.cell_n),
                static_cast<long long>(c.k), r.train_seconds, r.eval_seconds);
    std::printf("mean log p(y) per cell, rows: class of do(x), columns: class of z (VBA / conditional)\n");
    for (size_t a = 0; a < r.vba_cells.size(); ++a) {
      std::printf("  x=%zu", a);
      for (size_t b = 0; b < r.vba_cells[a].size(); ++b)
        std::printf(" %7.1f/%-7.1f", r.vba_cells[a][b], r.conditional_cells[a][b]);
      std::printf("\n");
    }
    std::printf("90 off-confounder cells: VBA mean %.2f, conditional mean %.2f, VBA higher in %d\n",
                r.vba_off, r.conditional_off, r.cells_vba_better);
    // The floor: real composites' left halves given x are all of class x - 1, so a perfect
    // p(y | x) scores the classifier's own confusion on them, not 0.
    std::printf("class entropy of the left halves of y per class of x (nats; labels of the left-half "
                "classifier, held-out accuracy %.3f; uniform over 10 classes: %.3f):\n",
                r.classifier_accuracy, std::log(10.0));
    std::printf("  drawn under do(x)          %.3f  (target >= 1.8)\n", r.entropy_do);
    std::printf("  drawn under conditioning   %.3f  (target <= 0.5)\n", r.entropy_conditional);
    std::printf("  the data's own given x     %.3f  (the floor: what a perfect p(y|x) scores with this "
                "classifier)\n", r.entropy_data);
    std::printf("  conditioning above floor   %.3f\n", r.entropy_conditional - r.entropy_data);
    return 0;
  }
  if (command == "bench") {
    if (s.text("--kind", "linear-gaussian") != "linear-gaussian")
      throw OptionError("--kind expects linear-gaussian or fashion-composite");
    vba::BenchConfig c;
    c.dims = s.integer("--dims", 5);
    c.n = s.integer("--n", 50000);
    c.test_n = s.integer("--test-n", 1000);
    c.k = s.integer("--k", 100);
    c.data_seed = seed;
    c.options = s.model;
    c.joint = s.with_joint;
    c.device = device;
    c.threads = threads;
    const vba::BenchReport r = vba::bench_linear_gaussian(c, print_epoch_progress);
    if (r.cancelled) return report_interrupted();
    std::printf("linear-Gaussian d=%lld N=%lld held-out=%lld K=%lld: train %.1fs, evaluation %.1fs\n",
                static_cast<long long>(c.dims), static_cast<long long>(c.n),
                static_cast<long long>(c.test_n), static_cast<long long>(c.k), r.train_seconds,
                r.eval_seconds);
    std::printf("  %-34s %12s %12s %10s\n", "estimator", "MAE", "MAE OOD", "mean ESS");
    for (const auto& row : r.rows)
      std::printf("  %-34s %12.4f %12.4f %10.2f\n", row.estimator.c_str(), row.mae, row.mae_ood, row.mean_ess);
    return 0;
  }
  std::cerr << "septa nn vba: unknown command '" << command << "'\n";
  print_help(std::cerr);
  return 2;
}

}  // namespace

int run_vba(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    print_help(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? 2 : 0;
  }
  for (int i = 2; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      print_help(std::cout);
      return 0;
    }
  return run_reporting_errors("septa nn vba", [&] {
    const Settings s = parse(argc, argv);
    install_interrupt_handler();
    return dispatch(argv[1], s);
  });
}

}  // namespace septa::cli
