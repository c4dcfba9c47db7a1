// Whole-file reads and atomic writes for the small text files beside tensors (the shard index):
// septa_util's, under the names the safetensors code uses.
#pragma once

#include <string>

namespace septa::safetensors {

// Throws IoError naming `path` when it cannot be read.
std::string read_text_file(const std::string& path);
// Writes "<path>.tmp.<pid>", fsyncs it and renames it onto `path`; IoError on failure.
void write_text_atomically(const std::string& path, const std::string& text);

}  // namespace septa::safetensors
