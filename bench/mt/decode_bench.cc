// Greedy (or beam) decoding with and without the key/value cache, alternated, on a trained
// model of a study (never part of the test suite): the dev messages of every direction the model
// serves, CPU seconds (user + system of the process) per pass, their medians and ratio, and
// whether the two paths wrote the same tokens. Usage:
//   mt_decode_bench CORPUS STUDY MODEL [REPS=5] [DEV=100] [BEAM=1] [THREADS=1]
// e.g. mt_decode_bench /tmp/mt/corpus /tmp/mt/study models/pretrain.safetensors
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "nn/methods/mt/study.h"

namespace {

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  namespace mt = septa::nn::mt;
  if (argc < 4) {
    std::fprintf(stderr, "usage: mt_decode_bench CORPUS STUDY MODEL [REPS=5] [DEV=100] [BEAM=1] [THREADS=1]\n");
    return 2;
  }
  const int reps = argc > 4 ? std::atoi(argv[4]) : 5;
  const int64_t dev = argc > 5 ? std::atoll(argv[5]) : 100;
  const int beam = argc > 6 ? std::atoi(argv[6]) : 1;
  mt::StudyConfig config;
  config.corpus_dir = argv[1];
  config.dir = argv[2];
  config.device = "cpu";
  config.threads = argc > 7 ? std::atoi(argv[7]) : 1;
  mt::Study study(config);
  mt::Translator model = study.load(argv[3]);
  const auto directions = mt::all_directions(study.groups());
  std::vector<double> seconds[2];
  std::vector<std::vector<std::vector<int>>> outputs[2];
  size_t tokens = 0, messages = 0;
  for (int r = 0; r < reps; ++r)
    for (int cached : {0, 1}) {
      outputs[cached].clear();
      const double t0 = cpu_seconds();
      for (const auto& d : directions) {
        const auto& set = study.dev_set(d, dev);
        outputs[cached].push_back(mt::translate(model, set.sources, study.tokenizer().tag(d.target), beam,
                                                study.options().integer("decode-batch"), study.device(), 0.0, 0.0,
                                                cached == 1));
      }
      seconds[cached].push_back(cpu_seconds() - t0);
      std::printf("rep %d %s: %.2f s CPU\n", r + 1, cached ? "cache   " : "no cache", seconds[cached].back());
      std::fflush(stdout);
    }
  for (const auto& direction : outputs[1])
    for (const auto& o : direction) tokens += o.size(), ++messages;
  const double a = median(seconds[0]), b = median(seconds[1]);
  std::printf("%zu directions, %zu messages, %zu output tokens, beam %d, %d thread(s): median CPU s without cache "
              "%.2f, with %.2f, ratio %.2fx; outputs %s\n",
              directions.size(), messages, tokens, beam, config.threads, a, b, a / b,
              outputs[0] == outputs[1] ? "token-identical" : "DIFFER");
  return outputs[0] == outputs[1] ? 0 : 1;
}
