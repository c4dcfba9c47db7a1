#include "septa/crf/constraints.h"

#include <sstream>

#include "septa/error.h"

namespace septa::crf {
namespace {

// "I-PER" -> "PER" for inside tags, else "" (not an inside tag).
std::string inside_type(const std::string& label) {
  return label.size() > 2 && label[0] == 'I' && label[1] == '-' ? label.substr(2) : "";
}

// Label indices matched by `pattern` ("*" for all); throws naming the place when none.
std::vector<std::size_t> matching(const std::vector<std::string>& labels,
                                  const std::string& pattern, const std::string& place) {
  std::vector<std::size_t> out;
  for (std::size_t j = 0; j < labels.size(); ++j)
    if (pattern == "*" || labels[j] == pattern) out.push_back(j);
  if (out.empty()) throw FormatError(place + "label '" + pattern + "' is not a label of the model");
  return out;
}

}  // namespace

DecodeConstraints transition_constraints(const std::vector<std::string>& labels, bool iob,
                                         const std::string& rules, const std::string& name) {
  const std::size_t L = labels.size();
  DecodeConstraints c;
  c.allowed_transitions.assign(L * L, 1);
  c.allowed_first.assign(L, 1);
  if (iob) {
    for (std::size_t j = 0; j < L; ++j) {
      const std::string type = inside_type(labels[j]);
      if (type.empty()) continue;
      c.allowed_first[j] = 0;
      for (std::size_t i = 0; i < L; ++i)
        if (labels[i] != "B-" + type && labels[i] != "I-" + type) c.allowed_transitions[i * L + j] = 0;
    }
  }
  std::istringstream in(rules);
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    std::istringstream fields(line);
    std::string verb, previous, current, extra;
    if (!(fields >> verb) || verb[0] == '#') continue;
    const std::string place = name + ":" + std::to_string(number) + ": ";
    if ((verb != "forbid" && verb != "allow") || !(fields >> previous >> current) ||
        (fields >> extra))
      throw FormatError(place + "expected 'forbid PREV CUR' or 'allow PREV CUR' ('*' for any)");
    for (std::size_t i : matching(labels, previous, place))
      for (std::size_t j : matching(labels, current, place))
        c.allowed_transitions[i * L + j] = verb == "allow";
  }
  return c;
}

}  // namespace septa::crf
