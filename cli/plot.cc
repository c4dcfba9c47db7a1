#include "plot.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>

#include "arguments.h"
#include "septa/error.h"
#include "util/atomic_file.h"

namespace septa::cli {
namespace {

// "set terminal ..." for the image's extension; a UsageError for any other.
std::string terminal_for(const std::string& image) {
  const auto dot = image.rfind('.');
  const std::string ext = dot == std::string::npos ? "" : image.substr(dot + 1);
  if (ext == "png") return "set terminal pngcairo size 900,600\n";
  if (ext == "svg") return "set terminal svg size 900,600\n";
  throw UsageError("plot file '" + image + "': the name must end in .png or .svg");
}

// gnuplot strings are double-quoted; escape what would end them.
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

class TempFolder {
 public:
  TempFolder() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/septa_plot_XXXXXX";
    if (!::mkdtemp(pattern.data())) throw IoError("cannot create a temporary folder for the plot");
    path_ = pattern;
  }
  ~TempFolder() {
    for (const std::string& file : files_) ::unlink(file.c_str());
    ::rmdir(path_.c_str());
  }
  std::string file(const std::string& name) {
    files_.push_back(path_ + "/" + name);
    return files_.back();
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

// Runs gnuplot on `script`; throws IoError naming the problem.
void run_gnuplot(const std::string& script, const std::string& image) {
  const pid_t pid = ::fork();
  if (pid < 0) throw IoError("cannot start gnuplot");
  if (pid == 0) {
    char* const argv[] = {const_cast<char*>("gnuplot"), const_cast<char*>(script.c_str()), nullptr};
    ::execvp("gnuplot", argv);
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) == 127)
    throw IoError(image + ": gnuplot is not installed (apt-get install gnuplot-nox)");
  if (WEXITSTATUS(status) != 0) throw IoError(image + ": gnuplot failed");
}

}  // namespace

void check_image_name(const std::string& image) {
  terminal_for(image);
  check_writable(image);
}

void plot_learning_curve(const std::vector<crf::TrainProgress>& history, const std::string& image) {
  const std::string terminal = terminal_for(image);
  TempFolder folder;
  const std::string data = folder.file("curve.dat"), script = folder.file("curve.gp");
  bool has_f1 = false, has_accuracy = false;
  {
    std::ofstream out(data);
    out << "# step objective dev_score\n";
    for (std::size_t i = 0; i < history.size(); ++i) {
      const crf::TrainProgress& p = history[i];
      has_f1 = has_f1 || !std::isnan(p.dev_f1);
      has_accuracy = has_accuracy || !std::isnan(p.dev_accuracy);
      const double score = !std::isnan(p.dev_f1) ? p.dev_f1 : p.dev_accuracy;
      out << i + 1 << ' ' << p.objective << ' ';
      if (std::isnan(score)) out << "?"; else out << score;
      out << '\n';
    }
    if (!out) throw IoError(data + ": write failed");
  }
  const std::string metric = has_f1 ? "dev F1" : "dev accuracy";
  std::ofstream gp(script);
  gp << terminal << "set output " << quoted(image) << "\n"
     << "set datafile missing '?'\nset key right center\nset grid\n"
     << "set xlabel 'iteration (progress report)'\nset ylabel 'objective'\n";
  if (has_f1 || has_accuracy) {
    gp << "set y2label '" << metric << " (%)'\nset y2tics\nset ytics nomirror\n"
       << "plot " << quoted(data) << " using 1:2 with lines lw 2 title 'objective', "
       << quoted(data) << " using 1:3 axes x1y2 with linespoints pt 7 ps 0.5 title '" << metric
       << "'\n";
  } else {
    gp << "plot " << quoted(data) << " using 1:2 with lines lw 2 title 'objective'\n";
  }
  gp.close();
  if (!gp) throw IoError(script + ": write failed");
  run_gnuplot(script, image);
}

void plot_confusion(const crf::EvaluationResult& result, const std::string& image) {
  const std::string terminal = terminal_for(image);
  std::set<std::string> type_set;
  for (const auto& [gold, row] : result.confusion) {
    type_set.insert(gold);
    for (const auto& entry : row) type_set.insert(entry.first);
  }
  const std::vector<std::string> types(type_set.begin(), type_set.end());
  TempFolder folder;
  const std::string data = folder.file("confusion.dat"), script = folder.file("confusion.gp");
  {
    // Rows gold, columns guess: percent of the gold row's tokens.
    std::ofstream out(data);
    for (const std::string& gold : types) {
      const auto row = result.confusion.find(gold);
      double total = 0.0;
      if (row != result.confusion.end())
        for (const auto& entry : row->second) total += static_cast<double>(entry.second);
      for (const std::string& guess : types) {
        double count = 0.0;
        if (row != result.confusion.end() && row->second.count(guess))
          count = static_cast<double>(row->second.at(guess));
        out << (total > 0 ? 100.0 * count / total : 0.0) << ' ';
      }
      out << '\n';
    }
    if (!out) throw IoError(data + ": write failed");
  }
  std::ofstream gp(script);
  gp << terminal << "set output " << quoted(image) << "\n"
     << "set title 'confusion of chunk types (percent of each gold row)'\n"
     << "set xlabel 'guess'\nset ylabel 'gold'\nset cbrange [0:100]\n"
     << "set palette defined (0 'white', 100 'dark-blue')\nunset key\nset yrange [] reverse\n";
  gp << "set xtics (";
  for (std::size_t i = 0; i < types.size(); ++i) gp << (i ? ", " : "") << quoted(types[i]) << ' ' << i;
  gp << ")\nset ytics (";
  for (std::size_t i = 0; i < types.size(); ++i) gp << (i ? ", " : "") << quoted(types[i]) << ' ' << i;
  gp << ")\nplot " << quoted(data) << " matrix with image, " << quoted(data)
     << " matrix using 1:2:(sprintf('%.1f', $3)) with labels\n";
  gp.close();
  if (!gp) throw IoError(script + ": write failed");
  run_gnuplot(script, image);
}

}  // namespace septa::cli
