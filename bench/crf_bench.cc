// CRF benchmark: trains, tags and evaluates real data sets for each algorithm and thread count,
// each measurement in its own process (so peak RSS is per run), and prints medians.
//
//   crf_bench [--data DIR] [--tasks chunk,pos,ner] [--algorithms lbfgs,separate,...]
//             [--threads 1,2,4,8,16 (default: those the machine has)] [--runs 3]
//             [--max-iterations N] [--c2 X]
//             [--ner-test eng.testa|eng.testb]   (pick settings on testa, report testb)
//             [--dev 1]   (development split: the last tenth of train for chunk and pos, held out
//                          from training; eng.testa for ner; for choosing settings)
//             [--set 'name=value;...']            (any training option of the table)
//
// Data: DIR (default $SEPTA_DATA, else ../shared/data) holding conll2000/ and conll2003/.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "septa/crf/corpus.h"
#include "septa/crf/evaluation.h"
#include "septa/crf/feature_template.h"
#include "septa/crf/trainer.h"

namespace {

using namespace septa::crf;
using Clock = std::chrono::steady_clock;

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, sep);)
    if (!item.empty()) out.push_back(item);
  return out;
}

// Word-derived columns for tasks that see words only: lower case, 2/3-letter suffixes, shape.
std::vector<std::string> word_features(const std::string& word) {
  std::string lower = word, shape;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (char c : word) {
    const char s = std::isupper(static_cast<unsigned char>(c))   ? 'A'
                   : std::islower(static_cast<unsigned char>(c)) ? 'a'
                   : std::isdigit(static_cast<unsigned char>(c)) ? '0'
                                                                 : c;
    if (shape.empty() || shape.back() != s) shape.push_back(s);
  }
  auto suffix = [&](std::size_t n) { return lower.size() > n ? lower.substr(lower.size() - n) : lower; };
  return {lower, suffix(2), suffix(3), shape};
}

struct Task {
  std::string name;
  std::string train_path, test_path;
  std::string template_text;  // empty: the built-in chunking template
  // Rewrites each token's columns (e.g. drop columns, add derived ones); label last.
  std::vector<std::string> (*columns)(const std::vector<std::string>&);
};

std::vector<std::string> keep_chunk(const std::vector<std::string>& c) { return c; }
std::vector<std::string> pos_from_words(const std::vector<std::string>& c) {
  std::vector<std::string> out{c[0]};
  for (const std::string& f : word_features(c[0])) out.push_back(f);
  out.push_back(c[1]);  // the POS tag is the label
  return out;
}
std::vector<std::string> ner(const std::vector<std::string>& c) {
  std::vector<std::string> out{c[0], c[1], c[2]};
  for (const std::string& f : word_features(c[0])) out.push_back(f);
  out.push_back(c[3]);
  return out;
}

const char* kPosTemplate =
    "U00:%x[-2,0]\nU01:%x[-1,0]\nU02:%x[0,0]\nU03:%x[1,0]\nU04:%x[2,0]\n"
    "U05:%x[-1,0]/%x[0,0]\nU06:%x[0,0]/%x[1,0]\n"
    "U10:%x[0,1]\nU11:%x[0,2]\nU12:%x[0,3]\nU13:%x[0,4]\nU14:%x[-1,3]\nU15:%x[1,3]\n"
    "U16:%x[-1,4]\nU17:%x[1,4]\nB\n";
const char* kNerTemplate =
    "U00:%x[-2,0]\nU01:%x[-1,0]\nU02:%x[0,0]\nU03:%x[1,0]\nU04:%x[2,0]\n"
    "U05:%x[-1,0]/%x[0,0]\nU06:%x[0,0]/%x[1,0]\n"
    "U10:%x[-1,1]\nU11:%x[0,1]\nU12:%x[1,1]\nU13:%x[-1,1]/%x[0,1]\nU14:%x[0,1]/%x[1,1]\n"
    "U20:%x[-1,2]\nU21:%x[0,2]\nU22:%x[1,2]\n"
    "U30:%x[0,3]\nU31:%x[0,4]\nU32:%x[0,5]\nU33:%x[-1,6]\nU34:%x[0,6]\nU35:%x[1,6]\n"
    "U36:%x[-1,6]/%x[0,6]\nU37:%x[0,6]/%x[1,6]\nB\n";

std::vector<ColumnSentence> load(const std::string& path, const Task& task) {
  std::vector<ColumnSentence> data = read_columns_file(path);
  for (ColumnSentence& s : data)
    for (auto& token : s.columns) token = task.columns(token);
  return data;
}

// One measured run in this process; prints "key=value" pairs on one line.
int single_run(const Task& task, const std::string& algorithm, int threads, int max_iterations,
               double c2, const std::string& settings) {
  const auto t0 = Clock::now();
  auto train_data = load(task.train_path, task);
  std::vector<ColumnSentence> test_data;
  if (task.test_path.empty()) {  // --dev: the last tenth of the training file, held out
    const std::size_t keep = train_data.size() - train_data.size() / 10;
    test_data.assign(std::make_move_iterator(train_data.begin() + static_cast<long>(keep)),
                     std::make_move_iterator(train_data.end()));
    train_data.resize(keep);
  } else {
    test_data = load(task.test_path, task);
  }
  const FeatureTemplate feature_template =
      task.template_text.empty() ? FeatureTemplate::default_chunking()
                                 : FeatureTemplate::parse(task.template_text, task.name);
  TrainOptions options;
  options.algorithm = algorithm;
  options.threads = threads;
  if (max_iterations > 0) options.max_iterations = max_iterations;
  if (c2 >= 0.0) options.c2 = c2;
  for (const std::string& setting : split(settings, ';')) {  // "name=value;name=value"
    const auto eq = setting.find('=');
    set_train_option(options, setting.substr(0, eq), eq == std::string::npos ? "" : setting.substr(eq + 1));
  }
  const auto t1 = Clock::now();
  // The sentences go once encoded (as `septa train` reads them): rss_mb is training's.
  const TrainResult result =
      train(std::move(train_data), task.train_path, feature_template, options);
  const auto t2 = Clock::now();
  ChunkEvaluator evaluator;
  std::size_t tokens = 0;
  std::vector<std::vector<std::string>> guesses;
  guesses.reserve(test_data.size());
  for (const ColumnSentence& s : test_data) guesses.push_back(result.model.tag(s).labels);
  const auto t3 = Clock::now();
  for (std::size_t n = 0; n < test_data.size(); ++n) {
    std::vector<std::string> gold;
    for (const auto& c : test_data[n].columns) gold.push_back(c.back());
    tokens += gold.size();
    evaluator.add_sentence(gold, guesses[n]);
  }
  const EvaluationResult scores = evaluator.result();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double train_s = std::chrono::duration<double>(t2 - t1).count();
  const double tag_s = std::chrono::duration<double>(t3 - t2).count();
  std::printf(
      "read_s=%.3f train_s=%.3f iterations=%d s_per_iter=%.4f features=%zu rss_mb=%.1f "
      "tag_s=%.3f tokens_per_s=%.0f accuracy=%.2f f1=%.2f\n",
      std::chrono::duration<double>(t1 - t0).count(), train_s, result.iterations,
      result.iterations > 0 ? train_s / result.iterations : 0.0, result.features,
      usage.ru_maxrss / 1024.0, tag_s, tokens / tag_s, scores.accuracy(), scores.overall.f1());
  return 0;
}

std::map<std::string, double> run_child(const std::vector<std::string>& args) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buffer[4096];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) out.append(buffer, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("a benchmark run failed: " + out);
  std::map<std::string, double> values;
  for (const std::string& pair : split(out, ' ')) {
    const auto eq = pair.find('=');
    if (eq != std::string::npos) values[pair.substr(0, eq)] = std::atof(pair.substr(eq + 1).c_str());
  }
  return values;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace

const char* kUsage =
    "usage: crf_bench [--data DIR] [--tasks chunk,pos,ner] [--algorithms lbfgs,separate,...]\n"
    "                 [--threads LIST] [--runs N] [--max-iterations N] [--c2 X]\n"
    "                 [--ner-test eng.testa|eng.testb] [--dev 1] [--set 'name=value;...']\n"
    "Trains, tags and evaluates each task with each algorithm and thread count, every run in its\n"
    "own process, and prints medians, then a scaling table (separate/lbfgs time per thread\n"
    "count) when both lbfgs and separate ran.\n"
    "  --data DIR         holds conll2000/ and conll2003/ (default $SEPTA_DATA, else ../shared/data)\n"
    "  --tasks            chunk (CoNLL-2000), pos (CoNLL-2000 POS from words), ner (CoNLL-2003)\n"
    "  --algorithms       any of lbfgs, ap, separate, separate-counts, piecewise, memm\n"
    "  --threads LIST     thread counts (default 1,2,4,8,16 up to the machine's cores)\n"
    "  --runs N           runs per cell, medians reported (default 3)\n"
    "  --max-iterations N, --c2 X   training options (default: the library's)\n"
    "  --ner-test FILE    eng.testa to pick settings, eng.testb to report (default)\n"
    "  --dev 1            development split for choosing settings: chunk and pos train on the\n"
    "                     first nine tenths of train.txt and test on the last tenth; ner tests\n"
    "                     on eng.testa\n"
    "  --set 'a=b;c=d'    any other training option of the table\n";

std::string default_thread_list() {
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  std::string list;
  for (long t : {1, 2, 4, 8, 16})
    if (t <= std::max(1L, cores)) list += (list.empty() ? "" : ",") + std::to_string(t);
  return list;
}

int main(int argc, char** argv) {
  std::map<std::string, std::string> opt = {
      {"data", std::getenv("SEPTA_DATA") ? std::getenv("SEPTA_DATA") : "../shared/data"},
      {"tasks", "chunk"}, {"algorithms", "lbfgs"}, {"threads", default_thread_list()},
      {"runs", "3"}, {"max-iterations", "0"}, {"single", ""}, {"c2", "-1"},
      {"ner-test", "eng.testb"}, {"set", ""}, {"dev", "0"}};
  for (int i = 1; i < argc; i += 2) {
    std::string name = argv[i];
    if (name == "--help" || name == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (name.rfind("--", 0) != 0 || !opt.count(name.substr(2)) || i + 1 >= argc) {
      std::cerr << "crf_bench: bad argument '" << name << "'\n" << kUsage;
      return 2;
    }
    opt[name.substr(2)] = argv[i + 1];
  }
  const std::string data = opt["data"];
  const bool dev = opt["dev"] == "1";
  if (dev) opt["ner-test"] = "eng.testa";
  const std::string conll2000_test = dev ? "" : data + "/conll2000/test.txt";
  const std::map<std::string, Task> tasks = {
      {"chunk", {"chunk", data + "/conll2000/train.txt", conll2000_test, "", keep_chunk}},
      {"pos", {"pos", data + "/conll2000/train.txt", conll2000_test, kPosTemplate,
               pos_from_words}},
      {"ner", {"ner", data + "/conll2003/eng.train", data + "/conll2003/" + opt["ner-test"],
               kNerTemplate, ner}},
  };
  try {
    if (!opt["single"].empty()) {  // child: task,algorithm,threads
      const auto parts = split(opt["single"], ',');
      return single_run(tasks.at(parts[0]), parts[1], std::atoi(parts[2].c_str()),
                        std::atoi(opt["max-iterations"].c_str()), std::atof(opt["c2"].c_str()), opt["set"]);
    }
    const int runs = std::max(1, std::atoi(opt["runs"].c_str()));
    char host[256] = "?";
    gethostname(host, sizeof host);
    std::printf("septa crf_bench: %d runs each, medians; %ld cores; data %s%s\n", runs,
                sysconf(_SC_NPROCESSORS_ONLN), data.c_str(),
                dev ? " (development split: last tenth of train; ner eng.testa)" : "");
    std::printf("%-6s %-16s %3s %9s %6s %9s %8s %8s %8s %10s %7s %7s %8s\n", "task", "algorithm",
                "thr", "features", "iters", "train_s", "s/iter", "rss_MB", "tag_s", "tokens/s",
                "acc", "F1", "vs_lbfgs");
    // [task][algorithm][threads] -> median training seconds, for the scaling table
    std::map<std::string, std::map<std::string, std::map<int, double>>> times;
    for (const std::string& task : split(opt["tasks"], ',')) {
      std::map<int, double> lbfgs_time;  // threads -> median training time of lbfgs
      for (const std::string& algorithm : split(opt["algorithms"], ',')) {
        for (const std::string& threads : split(opt["threads"], ',')) {
          std::map<std::string, std::vector<double>> samples;
          for (int r = 0; r < runs; ++r)
            for (const auto& [k, v] :
                 run_child({argv[0], "--single", task + "," + algorithm + "," + threads,
                            "--max-iterations", opt["max-iterations"], "--c2", opt["c2"],
                            "--ner-test", opt["ner-test"], "--dev", opt["dev"], "--data", data,
                            "--set", opt["set"]}))
              samples[k].push_back(v);
          std::map<std::string, double> m;
          for (auto& [k, v] : samples) m[k] = median(v);
          const int thr = std::atoi(threads.c_str());
          times[task][algorithm][thr] = m["train_s"];
          if (algorithm == "lbfgs") lbfgs_time[thr] = m["train_s"];
          char ratio[32] = "-";
          if (lbfgs_time.count(thr) && algorithm != "lbfgs")
            std::snprintf(ratio, sizeof ratio, "1/%.1f", lbfgs_time[thr] / m["train_s"]);
          std::printf("%-6s %-16s %3d %9.0f %6.0f %9.2f %8.4f %8.1f %8.3f %10.0f %7.2f %7.2f %8s\n",
                      task.c_str(), algorithm.c_str(), thr, m["features"], m["iterations"],
                      m["train_s"], m["s_per_iter"], m["rss_mb"], m["tag_s"], m["tokens_per_s"],
                      m["accuracy"], m["f1"], ratio);
          std::fflush(stdout);
        }
      }
    }
 
    // Scaling: per task and thread count, each algorithm's time, its speed-up over its own
    // one-thread time, and its ratio to lbfgs at the same thread count.
    for (const auto& [task, by_algorithm] : times) {
      if (!by_algorithm.count("lbfgs") || by_algorithm.size() < 2) continue;
      std::printf("\nscaling, %s: train_s (speed-up vs 1 thread) and time/lbfgs\n%4s %16s", task.c_str(),
                  "thr", "lbfgs");
      for (const auto& [algorithm, unused] : by_algorithm)
        if (algorithm != "lbfgs") std::printf(" %24s", algorithm.c_str());
      std::printf("\n");
      const auto& lbfgs = by_algorithm.at("lbfgs");
      for (const auto& [thr, lbfgs_s] : lbfgs) {
        auto speedup = [&](const std::map<int, double>& t) {  // "-" without a 1-thread run
          char text[16] = "  -  ";
          if (t.count(1)) std::snprintf(text, sizeof text, "%4.1fx", t.at(1) / t.at(thr));
          return std::string(text);
        };
        std::printf("%4d %8.2f (%s)", thr, lbfgs_s, speedup(lbfgs).c_str());
        for (const auto& [algorithm, t] : by_algorithm) {
          if (algorithm == "lbfgs") continue;
          if (!t.count(thr)) {
            std::printf(" %24s", "-");
            continue;
          }
          std::printf(" %8.2f (%s) 1/%-5.1f", t.at(thr), speedup(t).c_str(), lbfgs_s / t.at(thr));
        }
        std::printf("\n");
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "crf_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
