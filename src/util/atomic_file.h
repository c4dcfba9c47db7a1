// Crash-safe file output and bounded whole-file reads (septa_util, private: the CRF library,
// the safetensors files under septa merge and the neural checkpoints, the CLI and the tests).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace septa {

// Writes `bytes` to `path` atomically through "path.tmp.<pid>", locked while it is written;
// throws IoError naming the path on any failure. Temporary files of `path` left by killed
// writers (their process gone and their lock free) are removed first.
void write_file_atomically(const std::string& path, const std::string& bytes);

// Checks, before long work, that `path` can be written as write_file_atomically does it (creates
// and removes the temporary file beside it); throws IoError naming the path otherwise.
void check_writable(const std::string& path);

// Reads a whole file; throws IoError naming the path when it cannot be read, FormatError naming
// the path, the limit and `option` when it is larger than `max_bytes`.
std::string read_file(const std::string& path, std::size_t max_bytes = SIZE_MAX,
                      const std::string& option = "");

}  // namespace septa
