// Constrained decoding: transitions that may never occur, and labels kept from the input
// (Wapiti's --force). Applied to the lattice potentials, so every scorer supports them.
#pragma once

#include <string>
#include <vector>

namespace septa::crf {

struct DecodeConstraints {
  std::vector<char> allowed_transitions;  // [L][L] by the model's label order, [prev][cur];
                                          // 0 forbids the pair; empty: every pair allowed
  std::vector<char> allowed_first;        // [L] labels allowed at position 0; empty: all
  std::vector<std::string> forced;        // [T] label kept at t, "" to predict; empty: none
};

// The [L][L] and [L] masks for `labels` (the model's, in order):
//   iob: forbid what IOB2 cannot encode: x -> I-T unless x is B-T or I-T, and I-T first;
//   rules: lines "forbid PREV CUR" or "allow PREV CUR" applied in order after `iob`, "*"
//   matching every label, "#" comments; `name` prefixes errors (name:line: ...).
// Labels that the model does not know are an error naming the line.
DecodeConstraints transition_constraints(const std::vector<std::string>& labels, bool iob,
                                         const std::string& rules, const std::string& name);

}  // namespace septa::crf
