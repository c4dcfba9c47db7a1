// Locating the shared data sets and source files from a test run (no compile-time paths).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace septa::test {

// Directory of the shared data sets: $SEPTA_DATA, else the first "shared/data" found walking up
// from the working directory; empty when there is none.
inline std::string data_dir() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("SEPTA_DATA"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  for (fs::path dir = fs::current_path(ec); !dir.empty(); dir = dir.parent_path()) {
    if (fs::is_directory(dir / "shared" / "data", ec)) return (dir / "shared" / "data").string();
    if (dir == dir.root_path()) break;
  }
  return {};
}

// Path of `relative` (e.g. "conll2000/test.txt") under data_dir(), or empty when absent.
inline std::string data_file(const std::string& relative) {
  const std::string dir = data_dir();
  if (dir.empty()) return {};
  const std::string path = dir + "/" + relative;
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec) ? path : std::string();
}

// The first `relative` found walking up from the working directory (a source file), or empty.
inline std::string source_file(const std::string& relative) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (fs::path dir = fs::current_path(ec); !dir.empty(); dir = dir.parent_path()) {
    if (fs::is_regular_file(dir / relative, ec)) return (dir / relative).string();
    if (dir == dir.root_path()) break;
  }
  return {};
}

}  // namespace septa::test
