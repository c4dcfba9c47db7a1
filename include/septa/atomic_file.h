// Crash-safe file output: write to a temporary file beside the target, then rename over it.
#pragma once

#include <string>

namespace septa {

// Writes `bytes` to `path` atomically; throws IoError naming the path on any failure.
void write_file_atomically(const std::string& path, const std::string& bytes);

// Checks, before long work, that `path` can be written as write_file_atomically does it (creates
// and removes the temporary file beside it); throws IoError naming the path otherwise.
void check_writable(const std::string& path);

// Reads a whole file; throws IoError naming the path when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace septa
