// Helpers shared by the nn tests.
#pragma once

#include <torch/torch.h>

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "septa/nn/training.h"

namespace septa::nn::testing {

// A fresh empty directory under $TMPDIR (or /tmp), unique per process and name.
inline std::string temp_dir(const std::string& name) {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base ? base : "/tmp") + "/septa_nn_" + name + "_XXXXXX";
  char* made = ::mkdtemp(pattern.data());
  if (!made) throw std::runtime_error("mkdtemp failed");
  return made;
}

// Single-threaded, seeded torch: tests run side by side under ctest -j.
inline void setup_torch(uint64_t seed = 7) {
  set_threads(1);
  seed_everything(seed);
}

}  // namespace septa::nn::testing
