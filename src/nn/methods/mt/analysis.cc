#include "nn/methods/mt/analysis.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "septa/error.h"
#include "util/atomic_file.h"

namespace septa::nn::mt {
namespace {

struct Score {
  double chrf = 0, bleu = 0;
};

std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string> out;
  std::string f;
  std::istringstream in(line);
  while (std::getline(in, f, '\t')) out.push_back(f);
  return out;
}

std::string fixed(double v, int digits = 2) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%+.*f", digits, v);
  std::string s = buffer;
  return s[0] == '+' ? s.substr(1) : s;
}
std::string signed_fixed(double v) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%+.2f", v);
  return buffer;
}

}  // namespace

std::string analyse_results(const std::string& dir) {
  const std::string results = dir + "/results.tsv";
  std::ifstream in(results);
  if (!in) throw IoError(results + ": cannot open (run septa nn mt eval first)");
  std::vector<std::string> settings, directions;
  std::map<std::string, std::map<std::string, Score>> score;  // setting -> direction -> score
  std::string line;
  std::getline(in, line);
  for (int number = 2; std::getline(in, line); ++number) {
    const auto f = fields_of(line);
    if (f.size() != 5)
      throw FormatError(results + ":" + std::to_string(number) + ": expected 5 tab-separated fields");
    if (!score.count(f[0])) settings.push_back(f[0]);
    if (settings.size() == 1) directions.push_back(f[1]);
    try {
      score[f[0]][f[1]] = {std::stod(f[3]), std::stod(f[4])};
    } catch (const std::exception&) {
      throw FormatError(results + ":" + std::to_string(number) + ": chrF and BLEU must be numbers");
    }
  }
  const auto has = [&](const std::string& s) { return score.count(s) > 0; };
  if (!has("multilingual") || !has("separate"))
    throw FormatError(results + ": needs the multilingual and separate settings");
  const auto into_english = [](const std::string& d) { return d.size() > 3 && d.compare(d.size() - 3, 3, "-en") == 0; };

  std::ostringstream md;
  md << "# Study results: " << dir << "\n\n";
  for (int metric = 0; metric < 2; ++metric) {
    md << "## " << (metric == 0 ? "chrF" : "BLEU (13a)") << " per direction\n\n| direction |";
    for (const auto& s : settings) md << ' ' << s << " |";
    md << " multi - sep |\n|---|";
    for (size_t i = 0; i <= settings.size(); ++i) md << "---|";
    md << '\n';
    std::map<std::string, double> sum_in, sum_out;
    int n_in = 0, n_out = 0;
    for (const auto& d : directions) {
      md << "| " << d << " |";
      const bool in_en = into_english(d);
      (in_en ? n_in : n_out) += 1;
      for (const auto& s : settings) {
        const double v = metric == 0 ? score[s][d].chrf : score[s][d].bleu;
        md << ' ' << fixed(v) << " |";
        (in_en ? sum_in : sum_out)[s] += v;
      }
      const double delta = metric == 0 ? score["multilingual"][d].chrf - score["separate"][d].chrf
                                       : score["multilingual"][d].bleu - score["separate"][d].bleu;
      md << ' ' << signed_fixed(delta) << " |\n";
    }
    for (int side = 0; side < 2; ++side) {
      const int n = side == 0 ? n_in : n_out;
      if (n == 0) continue;
      auto& sums = side == 0 ? sum_in : sum_out;
      md << "| **mean " << (side == 0 ? "X->en" : "en->X") << "** |";
      for (const auto& s : settings) md << ' ' << fixed(sums[s] / n) << " |";
      md << ' ' << signed_fixed((sums["multilingual"] - sums["separate"]) / n) << " |\n";
    }
    md << '\n';
  }
  // Model counts and parameters.
  std::ifstream sizes(dir + "/models.tsv");
  if (sizes) {
    md << "## Models and parameters per setting\n\n| setting | models | parameters |\n|---|---|---|\n";
    std::getline(sizes, line);
    while (std::getline(sizes, line)) {
      const auto f = fields_of(line);
      if (f.size() == 3) md << "| " << f[0] << " | " << f[1] << " | " << f[2] << " |\n";
    }
    md << '\n';
  }
  // Findings as numbers.
  md << "## Summary (chrF)\n\n";
  std::string dat;
  double d_in = 0, d_out = 0;
  int n_in = 0, n_out = 0;
  std::ostringstream plot;
  int index = 0;
  for (const auto& d : directions) {
    const double delta = score["multilingual"][d].chrf - score["separate"][d].chrf;
    (into_english(d) ? d_in : d_out) += delta;
    (into_english(d) ? n_in : n_out) += 1;
    plot << index++ << '\t' << d << '\t' << delta << '\t' << (into_english(d) ? 0 : 1) << '\n';
  }
  if (n_in) md << "- multilingual - separate, mean over X->en: " << signed_fixed(d_in / n_in) << " (conflict < 0 < synergy)\n";
  if (n_out) md << "- multilingual - separate, mean over en->X: " << signed_fixed(d_out / n_out) << "\n";
  for (const char* merged : {"datm-ties", "datm-linear", "datm-ta"}) {
    if (!has(merged) || !has("dat")) continue;
    double diff = 0;
    int n = 0;
    for (const auto& d : directions)
      if (into_english(d)) diff += score[merged][d].chrf - score["dat"][d].chrf, ++n;
    if (n) md << "- " << merged << " - dat on X->en, mean: " << signed_fixed(diff / n) << " (target: within 1.0)\n";
  }
  if (has("copy"))
    for (const auto& s : settings) {
      if (s == "copy") continue;
      double worst = 1e9;
      std::string where;
      for (const auto& d : directions) {
        const double margin = score[s][d].chrf - score["copy"][d].chrf;
        if (margin < worst) worst = margin, where = d;
      }
      md << "- " << s << " - copy baseline, smallest margin: " << signed_fixed(worst) << " (" << where << ")\n";
    }
  const std::string text = md.str();
  write_file_atomically(dir + "/analysis.md", text);
  write_file_atomically(dir + "/deltas.dat", plot.str());
  const std::string script =
      "set terminal png size 900,420 noenhanced\nset output '" + dir + "/deltas.png'\n"
      "set title 'chrF: multilingual - separate per direction (conflict < 0 < synergy)'\n"
      "set style fill solid 0.8\nset boxwidth 0.7\nset xtics rotate by -45\nset grid ytics\n"
      "set ylabel 'delta chrF'\nunset key\nset xzeroaxis lt -1\nset yrange [*<0:0<*]\n"
      "plot '" + dir + "/deltas.dat' using 1:3:($4 == 0 ? 0x3366cc : 0xdd7722):xtic(2) with boxes lc rgb variable\n";
  write_file_atomically(dir + "/deltas.gp", script);
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
    const int status = std::system(("gnuplot '" + dir + "/deltas.gp' 2>/dev/null").c_str());
    (void)status;  // the plot is optional: the table and deltas.dat are the results
  }
  return text;
}

}  // namespace septa::nn::mt
