// Corpus-level translation metrics as sacreBLEU 2.x defines them (Post 2018, "A Call for Clarity
// in Reporting BLEU Scores"), one reference per segment. Torch-free.
#pragma once

#include <string>
#include <vector>

namespace septa::nn::mt {

// chrF (Popovic 2015) with sacreBLEU's defaults: character n-grams n = 1..6 over Unicode code
// points with whitespace removed, no word n-grams, beta = 2, statistics summed over the corpus.
// Per order n: P_n = matches_n / hyp_n, R_n = matches_n / ref_n (matches = clipped counts);
// P and R = their means over the orders where hyp_n > 0 and ref_n > 0 (missing orders count
// 1e-16); chrF = 100 (1 + b^2) P R / (b^2 P + R). In [0, 100].
double chrf(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references);

// sacreBLEU's "13a" tokenisation (mteval-v13a.pl): unescape &quot; &amp; &lt; &gt;, split off
// punctuation and symbols, periods and commas unless between digits, dashes after digits.
std::string tokenize_13a(const std::string& line);

// Corpus BLEU (Papineni et al. 2002) on 13a tokens: clipped n-gram precisions p_n, n = 1..4, with
// sacreBLEU's default "exp" smoothing (the k-th order with no match counts 1 / (2^k total_n));
// BP = exp(1 - r/c) when c < r; BLEU = 100 BP exp(mean_n log p_n); 0 when some total_n is 0.
double bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references);

}  // namespace septa::nn::mt
