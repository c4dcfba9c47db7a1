// septa nn mt eval | analyse: every setting's models decoded on the n-way test set and scored.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>

#include "nn/methods/mt/analysis.h"
#include "nn/methods/mt/metrics.h"
#include "nn/methods/mt/study.h"
#include "septa/error.h"

namespace septa::nn::mt {

std::string evaluate(const StudyConfig& config, const std::function<void(const std::string&)>& log) {
  Study study(config);
  const NwayTest test = read_nway(config.corpus_dir);
  const int64_t limit = study.options().integer("test-limit");
  const size_t S = limit > 0 ? std::min<size_t>(limit, test.english.size()) : test.english.size();
  if (S == 0) throw FormatError(config.corpus_dir + "/test.nway.tsv: no test messages");
  // The evaluated messages: the S with the smallest seeded hash of their English text (the file
  // is sorted, so its first S would be mostly messages that start with punctuation or digits).
  std::vector<std::pair<uint64_t, size_t>> order;
  for (size_t i = 0; i < test.english.size(); ++i) {
    uint64_t h = 1469598103934665603ull ^ study.options().seed();
    for (unsigned char c : test.english[i]) h = (h ^ c) * 1099511628211ull;
    order.emplace_back(h, i);
  }
  std::sort(order.begin(), order.end());
  order.resize(S);
  auto text_of = [&](const std::string& language) {
    const auto& column = language == "en" ? test.english : test.by_language.at(language);
    std::vector<std::string> out;
    for (const auto& entry : order) out.push_back(column[entry.second]);
    return out;
  };
  // --eval-dev N: each direction's N dev messages (the seeded sample of --dev-sample) instead,
  // scored into dev_results.tsv, no hypotheses written: for choosing decoding options on dev.
  const int64_t dev = study.options().integer("eval-dev");
  auto sources_of = [&](const Direction& d) { return dev > 0 ? study.dev_set(d, dev).source_text : text_of(d.source); };
  auto references_of = [&](const Direction& d) {
    return dev > 0 ? study.dev_set(d, dev).references : text_of(d.target);
  };
  if (dev == 0) {  // the evaluated messages of each language, line by line as in hypotheses/*.txt (for other scorers)
    auto all = languages(study.groups());
    all.insert(all.begin(), "en");
    for (const auto& language : all) {
      std::string text;
      for (const auto& line : text_of(language)) text += line + "\n";
      std::ofstream(study.path("hypotheses/ref." + language + ".txt")) << text;
    }
  }
  const int beam = static_cast<int>(study.options().integer("beam"));
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> hypotheses;  // (model, dir)
  const auto settings = setting_models(study.groups());
  std::map<std::string, std::vector<Direction>> needed;  // model -> its directions to decode
  for (const auto& [setting, models] : settings)
    for (const auto& d : all_directions(study.groups())) {
      const std::string& model = models.at(d.name());
      auto& list = needed[model];
      if (std::none_of(list.begin(), list.end(), [&](const Direction& x) { return x.name() == d.name(); }))
        list.push_back(d);
    }
  int64_t parameters = 0;
  for (const auto& [model_name, directions] : needed) {
    if (model_name.empty()) {
      for (const auto& d : directions) hypotheses[{model_name, d.name()}] = sources_of(d);
      continue;
    }
    Translator model = study.load(model_name);
    parameters = 0;
    for (const auto& p : model->parameters()) parameters += p.numel();
    for (const auto& d : directions) {
      const auto sources = study.encode(sources_of(d));
      const auto ids = translate(model, sources, study.tokenizer().tag(d.target), beam,
                                 study.options().integer("decode-batch"), study.device(),
                                 study.options().real("eos-penalty"), study.options().real("copy-bonus"));
      auto& out = hypotheses[{model_name, d.name()}];
      out = study.tokenizer().decode(ids);
      if (dev > 0) continue;
      std::string file_name = model_name.substr(0, model_name.rfind('.'));
      for (char& c : file_name)
        if (c == '/') c = '_';
      std::string text;
      for (const auto& line : out) text += line + "\n";
      std::ofstream(study.path("hypotheses/" + file_name + "." + d.name() + ".txt")) << text;
    }
    log("decoded " + std::to_string(directions.size()) + " directions with " + model_name);
  }
  std::string table = "setting\tdirection\tmodel\tchrF\tBLEU\n";
  std::string sizes = "setting\tmodels\tparameters\n";
  char line[256];
  for (const auto& [setting, models] : settings) {
    std::set<std::string> distinct;
    for (const auto& d : all_directions(study.groups())) {
      const std::string& model = models.at(d.name());
      if (!model.empty()) distinct.insert(model);
      const auto& hyp = hypotheses.at({model, d.name()});
      const auto ref = references_of(d);
      std::snprintf(line, sizeof line, "%s\t%s\t%s\t%.2f\t%.2f\n", setting.c_str(), d.name().c_str(),
                    model.empty() ? "-" : model.c_str(), chrf(hyp, ref), bleu(hyp, ref));
      table += line;
    }
    sizes += setting + "\t" + std::to_string(distinct.size()) + "\t" +
             std::to_string(static_cast<int64_t>(distinct.size()) * parameters) + "\n";
  }
  char what[160];
  std::snprintf(what, sizeof what, " (beam %d, eos penalty %g, copy bonus %g)", beam,
                study.options().real("eos-penalty"), study.options().real("copy-bonus"));
  if (dev > 0) {
    std::ofstream(study.path("dev_results.tsv")) << table;
    log("evaluated at most " + std::to_string(dev) + " dev messages per direction" + what);
    return table;
  }
  std::ofstream(study.path("results.tsv")) << table;
  std::ofstream(study.path("models.tsv")) << sizes;
  log("evaluated " + std::to_string(S) + " n-way test messages per direction" + what);
  return table;
}

std::string analyse(const std::string& dir) { return analyse_results(dir); }

}  // namespace septa::nn::mt
