// The study's analysis: tables per direction, multilingual-minus-separate deltas, model counts
// and the deltas plot, from results.tsv and models.tsv. Torch-free.
#pragma once

#include <string>

namespace septa::nn::mt {

// Writes <dir>/analysis.md, <dir>/deltas.dat, <dir>/deltas.gp and (gnuplot found) deltas.png;
// returns analysis.md's text. FormatError "<file>:<line>: ..." for a malformed results.tsv.
std::string analyse_results(const std::string& dir);

}  // namespace septa::nn::mt
