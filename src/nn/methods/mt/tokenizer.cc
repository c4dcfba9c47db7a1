#include "nn/methods/mt/tokenizer.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <sstream>

#include "septa/error.h"

namespace septa::nn::mt {
namespace {

// A temporary file removed when it goes out of scope.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& tag) {
    std::string templ = (std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : "/tmp") + "/septa_spm_" + tag + "_XXXXXX";
    const int fd = ::mkstemp(templ.data());
    if (fd < 0) throw IoError(templ + ": cannot create a temporary file");
    ::close(fd);
    path = templ;
  }
  ~TempFile() { std::remove(path.c_str()); }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs septa-spm with `args`; stdout into `out_path` (if given); throws with its stderr on failure.
void run_helper(const std::vector<std::string>& args, const std::string& out_path, const std::string& label) {
  const std::string helper = spm_helper();
  TempFile errors("err");
  const pid_t pid = ::fork();
  if (pid < 0) throw IoError(label + ": cannot start " + helper);
  if (pid == 0) {
    const int err = ::open(errors.path.c_str(), O_WRONLY | O_TRUNC);
    if (err >= 0) ::dup2(err, 2);
    if (!out_path.empty()) {
      const int out = ::open(out_path.c_str(), O_WRONLY | O_TRUNC | O_CREAT, 0644);
      if (out >= 0) ::dup2(out, 1);
    }
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(helper.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(helper.c_str(), argv.data());
    std::fprintf(stderr, "cannot run %s (set SEPTA_SPM to the septa-spm executable)\n", helper.c_str());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string message = slurp(errors.path);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    throw FormatError(label + ": " + (message.empty() ? helper + " failed" : message));
  }
}

}  // namespace

std::string spm_helper() {
  if (const char* env = std::getenv("SEPTA_SPM")) return env;
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "septa-spm";
  std::string dir(self, static_cast<size_t>(n));
  return dir.substr(0, dir.rfind('/')) + "/septa-spm";
}

std::string language_tag(const std::string& language) { return "<2" + language + ">"; }

void train_tokenizer(const std::vector<std::string>& lines, const std::vector<std::string>& languages,
                     int vocab_size, const std::string& prefix) {
  const std::string input = prefix + ".input.txt";
  {
    std::ofstream out(input, std::ios::binary);
    for (const auto& line : lines) out << line << '\n';
    if (!out.flush()) throw IoError(input + ": cannot write");
  }
  std::string joined;
  for (const auto& l : languages) joined += (joined.empty() ? "" : ",") + l;
  try {
    run_helper({"train", prefix, std::to_string(vocab_size), joined, input}, "", prefix + ".model");
  } catch (...) {
    std::remove(input.c_str());
    throw;
  }
  std::remove(input.c_str());
}

Tokenizer::Tokenizer(const std::string& path, const std::vector<std::string>& languages) : path_(path) {
  std::string joined;
  for (const auto& l : languages) joined += (joined.empty() ? "" : ",") + l;
  TempFile out("info");
  try {
    run_helper({"info", path, joined}, out.path, path);
  } catch (const FormatError& e) {
    throw ModelError(e.what());
  }
  std::istringstream in(slurp(out.path));
  std::string key;
  int value = 0;
  while (in >> key >> value) {
    if (key == "vocab") vocab_size_ = value;
    else tags_[key] = value;
  }
  if (vocab_size_ <= 0) throw ModelError(path + ": septa-spm reported no vocabulary");
}

std::vector<std::vector<int>> Tokenizer::encode(const std::vector<std::string>& texts) const {
  TempFile in("in"), out("out");
  {
    std::ofstream file(in.path, std::ios::binary);
    for (const auto& t : texts) {
      if (t.find('\n') != std::string::npos) throw InternalError("tokenizer: a text holds a newline");
      file << t << '\n';
    }
  }
  run_helper({"encode", path_, in.path, out.path}, "", path_);
  std::ifstream file(out.path);
  std::vector<std::vector<int>> ids;
  std::string line;
  while (std::getline(file, line)) {
    std::istringstream fields(line);
    std::vector<int> row;
    for (int id; fields >> id;) row.push_back(id);
    ids.push_back(std::move(row));
  }
  if (ids.size() != texts.size()) throw FormatError(path_ + ": septa-spm encoded " + std::to_string(ids.size()) +
                                                    " of " + std::to_string(texts.size()) + " lines");
  return ids;
}

std::vector<std::string> Tokenizer::decode(const std::vector<std::vector<int>>& ids) const {
  TempFile in("in"), out("out");
  {
    std::ofstream file(in.path, std::ios::binary);
    for (const auto& row : ids) {
      for (size_t i = 0; i < row.size(); ++i) file << (i ? " " : "") << row[i];
      file << '\n';
    }
  }
  run_helper({"decode", path_, in.path, out.path}, "", path_);
  std::ifstream file(out.path);
  std::vector<std::string> texts;
  for (std::string line; std::getline(file, line);) texts.push_back(line);
  if (texts.size() != ids.size()) throw FormatError(path_ + ": septa-spm decoded " + std::to_string(texts.size()) +
                                                    " of " + std::to_string(ids.size()) + " lines");
  return texts;
}

int Tokenizer::tag(const std::string& language) const {
  const auto it = tags_.find(language_tag(language));
  if (it == tags_.end()) throw ModelError(path_ + ": no tag " + language_tag(language));
  return it->second;
}

}  // namespace septa::nn::mt
