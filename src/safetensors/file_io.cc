#include "safetensors/file_io.h"

#include "util/atomic_file.h"

namespace septa::safetensors {

std::string read_text_file(const std::string& path) { return read_file(path); }

void write_text_atomically(const std::string& path, const std::string& text) {
  write_file_atomically(path, text);
}

}  // namespace septa::safetensors
