#include "nn/methods/mt/metrics.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>
#include <sstream>

#include "septa/error.h"

namespace septa::nn::mt {
namespace {

// UTF-8 code points of `text` without whitespace (as sacreBLEU's ''.join(text.split())); an
// invalid byte counts as one character of its own.
std::vector<std::string> characters(const std::string& text) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = text[i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (i + n > text.size()) n = 1;
    if (!(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'))
      out.push_back(text.substr(i, n));
    i += n;
  }
  return out;
}

template <typename Unit>
std::map<std::vector<Unit>, int> ngrams(const std::vector<Unit>& units, size_t n) {
  std::map<std::vector<Unit>, int> counts;
  for (size_t i = 0; i + n <= units.size(); ++i)
    ++counts[std::vector<Unit>(units.begin() + i, units.begin() + i + n)];
  return counts;
}

// Adds the hypothesis count, reference count and clipped matches of order n.
template <typename Unit>
void add_stats(const std::vector<Unit>& hyp, const std::vector<Unit>& ref, size_t n, double* stats) {
  const auto h = ngrams(hyp, n), r = ngrams(ref, n);
  for (const auto& [gram, count] : h) {
    stats[0] += count;
    const auto it = r.find(gram);
    if (it != r.end()) stats[2] += std::min(count, it->second);
  }
  for (const auto& entry : r) stats[1] += entry.second;
}

void check_sizes(const std::vector<std::string>& h, const std::vector<std::string>& r) {
  if (h.size() != r.size())
    throw OptionError("metrics: " + std::to_string(h.size()) + " hypotheses but " +
                      std::to_string(r.size()) + " references");
}

std::vector<std::string> split_words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

}  // namespace

double chrf(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references) {
  check_sizes(hypotheses, references);
  constexpr int kOrder = 6;
  constexpr double kBeta = 2.0, kEps = 1e-16;
  double stats[kOrder][3] = {};  // [n][hyp, ref, match]
  for (size_t s = 0; s < hypotheses.size(); ++s) {
    const auto hyp = characters(hypotheses[s]), ref = characters(references[s]);
    for (int n = 1; n <= kOrder; ++n) add_stats(hyp, ref, n, stats[n - 1]);
  }
  const double factor = kBeta * kBeta;
  double precision = 0, recall = 0;
  int effective = 0;
  for (const auto& st : stats) {
    precision += st[0] > 0 ? st[2] / st[0] : kEps;
    recall += st[1] > 0 ? st[2] / st[1] : kEps;
    if (st[0] > 0 && st[1] > 0) ++effective;
  }
  if (effective == 0) return 0.0;
  precision /= effective;
  recall /= effective;
  if (precision + recall == 0) return 0.0;
  return 100.0 * (1 + factor) * precision * recall / (factor * precision + recall);
}

std::string tokenize_13a(const std::string& input) {
  std::string line = input;
  const auto replace_all = [&line](const std::string& from, const std::string& to) {
    for (size_t at = line.find(from); at != std::string::npos; at = line.find(from, at + to.size()))
      line.replace(at, from.size(), to);
  };
  replace_all("<skipped>", "");
  replace_all("-\n", "");
  replace_all("\n", " ");
  if (line.find('&') != std::string::npos) {
    replace_all("&quot;", "\"");
    replace_all("&amp;", "&");
    replace_all("&lt;", "<");
    replace_all("&gt;", ">");
  }
  // The four substitutions of sacrebleu.tokenizers.tokenizer_13a, in order.
  static const std::regex kSymbols(R"(([\{-\~\[-\` -\&\(-\+\:-\@\/]))");
  static const std::regex kPeriodCommaAfter(R"(([^0-9])([\.,]))");
  static const std::regex kPeriodCommaBefore(R"(([\.,])([^0-9]))");
  static const std::regex kDash(R"(([0-9])(-))");
  line = " " + line + " ";
  line = std::regex_replace(line, kSymbols, " $1 ");
  line = std::regex_replace(line, kPeriodCommaAfter, "$1 $2 ");
  line = std::regex_replace(line, kPeriodCommaBefore, " $1 $2");
  line = std::regex_replace(line, kDash, "$1 $2 ");
  std::string out;
  for (const auto& word : split_words(line)) out += (out.empty() ? "" : " ") + word;
  return out;
}

double bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references) {
  check_sizes(hypotheses, references);
  constexpr int kOrder = 4;
  double stats[kOrder][3] = {};  // [n][hyp total, ref total, matches]
  double hyp_length = 0, ref_length = 0;
  for (size_t s = 0; s < hypotheses.size(); ++s) {
    const auto hyp = split_words(tokenize_13a(hypotheses[s]));
    const auto ref = split_words(tokenize_13a(references[s]));
    hyp_length += hyp.size();
    ref_length += ref.size();
    for (int n = 1; n <= kOrder; ++n) add_stats(hyp, ref, n, stats[n - 1]);
  }
  if (hyp_length == 0) return 0.0;
  const double bp = hyp_length < ref_length ? std::exp(1 - ref_length / hyp_length) : 1.0;
  double log_sum = 0, smooth = 1;
  for (const auto& st : stats) {
    if (st[0] == 0) return 0.0;
    double p;
    if (st[2] == 0) {
      smooth *= 2;
      p = 100.0 / (smooth * st[0]);
    } else {
      p = 100.0 * st[2] / st[0];
    }
    log_sum += std::log(p);
  }
  return bp * std::exp(log_sum / kOrder);
}

}  // namespace septa::nn::mt
