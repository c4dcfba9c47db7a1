// VBA's data: observational triples (x, y, z) as .npy arrays, so that Python users hand theirs
// over with np.save. A directory holds x.npy, y.npy, z.npy with the same first dimension N; every
// other dimension is flattened into features ([N] -> [N][1], [N][28][28] -> [N][784]).
#pragma once

#include <string>

#include "nn/methods/vba/linear_gaussian.h"

namespace septa::nn::vba {

// Reads DIR/{x,y,z}.npy as float32. IoError for a missing file; FormatError naming the file for a
// malformed array, a dtype that is not numeric, a 0-d array, no rows, non-finite values
// ("DIR/y.npy: row 17 holds a non-finite value") or a row count that differs from x.npy's.
Triples read_triples(const std::string& dir);

// Reads one array as float32 [N][F] with the same checks (no row-count comparison).
torch::Tensor read_matrix(const std::string& path);

// Writes a [N][F] or [N] tensor as '<f4' (float64: '<f8').
void write_tensor(const std::string& path, const torch::Tensor& tensor, bool float64 = false);

// Writes DIR/{x,y,z}.npy (float32), creating DIR.
void write_triples(const std::string& dir, const Triples& data);

// Creates `dir` (and its parent) when missing; IoError when it cannot.
void make_dir(const std::string& dir);

}  // namespace septa::nn::vba
