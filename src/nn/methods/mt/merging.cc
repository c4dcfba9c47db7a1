// septa nn mt merge: DATM, the X->En experts of each group merged by septa merge's library.
#include <fstream>
#include <string>

#include "nn/methods/mt/study.h"
#include "septa/merge.h"

namespace septa::nn::mt {

void merge(const StudyConfig& config, const std::function<void(const std::string&)>& log) {
  Study study(config);
  const Groups& groups = study.groups();
  for (size_t g = 0; g < groups.size(); ++g)
    for (const char* method : kMergeMethods) {
      merge::MergeConfig m;
      m.method = merge::parse_method(method);
      m.base_model = study.path(model_file("pretrain"));
      const std::string m_name = method;
      if (m_name == "ties") m.density = study.options().real("density");
      if (m_name == "task_arithmetic") m.lambda = study.options().real("ta-lambda");
      m.weight = 1.0;
      m.threads = 1;
      m.sync = false;
      m.source = "septa nn mt merge";
      std::string yaml = "merge_method: " + m_name + "\nbase_model: " + m.base_model + "\nmodels:\n";
      for (const auto& d : to_english(groups, g)) {
        m.models.push_back({study.path(model_file("sep." + d.name())), std::nullopt, std::nullopt});
        yaml += "  - model: " + m.models.back().model + "\n";
      }
      yaml += "parameters: {weight: 1.0";
      if (m.density) yaml += ", density: " + std::to_string(*m.density);
      if (m_name == "task_arithmetic") yaml += ", lambda: " + std::to_string(m.lambda);
      yaml += "}\n";
      const std::string out = study.path(merged_dir(method, g));
      merge::run_merge(m, out);
      std::ofstream(out + ".yaml") << yaml;
      log("merged " + std::to_string(m.models.size()) + " X->en experts of group " + std::to_string(g) + " with " +
          m_name + " into " + out);
    }
}

}  // namespace septa::nn::mt
