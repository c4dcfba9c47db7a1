// The study's directions, settings and the table of its options.
#include "nn/methods/mt/settings.h"

#include <functional>

#include "septa/nn/mt.h"

namespace septa::nn::mt {

std::vector<Direction> all_directions(const Groups& groups) {
  std::vector<Direction> out;
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto in = to_english(groups, g), from = from_english(groups, g);
    out.insert(out.end(), in.begin(), in.end());
    out.insert(out.end(), from.begin(), from.end());
  }
  return out;
}
std::vector<Direction> to_english(const Groups& groups, size_t g) {
  std::vector<Direction> out;
  for (const auto& l : groups[g]) out.push_back({l, "en"});
  return out;
}
std::vector<Direction> from_english(const Groups& groups, size_t g) {
  std::vector<Direction> out;
  for (const auto& l : groups[g]) out.push_back({"en", l});
  return out;
}

std::string model_file(const std::string& name) { return "models/" + name + ".safetensors"; }
std::string merged_dir(const std::string& method, size_t g) { return "merged/" + method + ".g" + std::to_string(g); }

std::vector<std::pair<std::string, std::map<std::string, std::string>>> setting_models(const Groups& groups) {
  std::vector<std::pair<std::string, std::map<std::string, std::string>>> s;
  const auto directions = all_directions(groups);
  auto each = [&](const std::string& setting, const std::function<std::string(const Direction&, size_t)>& pick) {
    std::map<std::string, std::string> m;
    for (size_t g = 0; g < groups.size(); ++g)
      for (const auto& d : all_directions({groups[g]})) m[d.name()] = pick(d, g);
    s.emplace_back(setting, m);
  };
  each("copy", [](const Direction&, size_t) { return std::string(); });
  each("pretrained", [](const Direction&, size_t) { return model_file("pretrain"); });
  each("multilingual", [](const Direction&, size_t) { return model_file("multi"); });
  each("separate", [](const Direction& d, size_t) { return model_file("sep." + d.name()); });
  each("groupwise", [](const Direction&, size_t g) { return model_file("group" + std::to_string(g)); });
  each("dat", [](const Direction& d, size_t g) {
    return d.target == "en" ? model_file("sep." + d.name()) : model_file("dat.en-g" + std::to_string(g));
  });
  for (size_t m = 0; m < 3; ++m)
    each(kMergeSettings[m], [m](const Direction& d, size_t g) {
      return d.target == "en" ? merged_dir(kMergeMethods[m], g) + "/model.safetensors"
                              : model_file("dat.en-g" + std::to_string(g));
    });
  return s;
}

namespace {

OptionSpec integer(const std::string& name, const std::string& def, double min, double max, const std::string& help) {
  OptionSpec o;
  o.name = name, o.type = OptionType::kInteger, o.default_value = def, o.min = min, o.max = max, o.help = help;
  return o;
}
OptionSpec real(const std::string& name, const std::string& def, double min, double max, const std::string& help) {
  OptionSpec o = integer(name, def, min, max, help);
  o.type = OptionType::kReal;
  o.min_open = true;
  return o;
}

OptionSpec closed(OptionSpec o) {
  o.min_open = false;
  return o;
}

}  // namespace

const MethodInfo& study_options() {
  static const MethodInfo info = [] {
    MethodInfo m;
    m.name = "mt";
    m.summary = "multilingual translation: pre-training, per-setting post-training, group-wise merging";
    m.options = {
        integer("vocab", "4000", 100, 64000, "sentencepiece pieces (shared by all languages)"),
        integer("dim", "128", 8, 4096, "transformer width E"),
        integer("heads", "4", 1, 64, "attention heads (must divide dim)"),
        integer("ff", "512", 8, 16384, "feed-forward width"),
        integer("layers", "2", 1, 24, "encoder layers = decoder layers"),
        integer("max-len", "48", 8, 512, "longest source / target in tokens (longer ones are cut)"),
        integer("pretrain-epochs", "7", 1, 1000, "epochs of pre-training on all directions"),
        integer("post-epochs", "1", 1, 1000, "epochs of each post-training (on its directions' data)"),
        integer("batch", "64", 1, 65536, "sentence pairs per step"),
        real("lr", "0.002", 0, 1, "Adam learning rate of pre-training"),
        real("post-lr", "0.001", 0, 1, "Adam learning rate of post-training (full fine-tuning)"),
        integer("warmup", "200", 0, 1000000, "steps of linear learning-rate warm-up (then linear decay to 0)"),
        closed(real("smoothing", "0.1", 0, 1, "label smoothing of the cross-entropy (0: none)")),
        integer("max-train", "5000", 0, 100000000, "training pairs per direction (0: all)"),
        integer("copy-pairs", "0", 0, 100000000,
                "English messages of pre-training added to it as en->en copies (copied-target augmentation; 0: none)"),
        integer("post-max-train", "1000", 0, 100000000,
                "training pairs per direction of each post-training, the first of pre-training's (0: all of them)"),
        integer("post-fresh", "0", 0, 1,
                "1: post-training takes its --post-max-train pairs per direction from those after pre-training's "
                "--max-train (unseen by the base); 0: the first of pre-training's"),
        integer("post-select", "0", 0, 100000,
                "dev messages per direction that choose each post-training's epoch, the base (epoch 0) included "
                "(0: the last epoch)"),
        integer("test-limit", "200", 0, 100000000, "n-way test messages evaluated (0: all)"),
        integer("beam", "1", 1, 64, "beam width of decoding (1: greedy)"),
        closed(real("eos-penalty", "0", 0, 20,
                    "decoding: subtracted from log p(eos) at every step (> 0: longer outputs; chrF favours recall)")),
        closed(real("copy-bonus", "0", 0, 20,
                    "decoding: added to log p of every piece that occurs in the source (> 0: identifiers and "
                    "options passed through)")),
        integer("eval-dev", "0", 0, 100000,
                "eval: 0 scores the n-way test set (results.tsv); N > 0 scores N dev messages per direction, the "
                "seeded sample of --dev-sample (dev_results.tsv), to choose decoding options on dev"),
        real("density", "0.5", 0, 1, "TIES: fraction of each task vector kept"),
        real("ta-lambda", "0.5", 0, 10, "task arithmetic: scale of the summed task vectors"),
        integer("decode-batch", "100", 1, 65536, "messages decoded together (dev and test)"),
        integer("tf32", "1", 0, 1, "CUDA: float32 matrix products in TF32 (float32 sums); 0: full float32"),
        integer("dev-sample", "0", 0, 100000, "dev messages per direction decoded after every epoch (chrF on the log; 0: none)"),
        integer("seed", "1", 0, 2147483647, "seed of initialisation, data order and subsets"),
    };
    return m;
  }();
  return info;
}

}  // namespace septa::nn::mt
