// Small column-format fixtures the tests write themselves (no downloaded data needed).
#pragma once

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <unistd.h>

namespace septa::crf::testing {

// A temporary directory removed (with its files) at scope exit.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/septa_test_XXXXXX";
    path_ = ::mkdtemp(pattern);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A toy chunking corpus ("word POS chunk") with learnable regularities: determiners and
// adjectives open or continue noun phrases, verbs form VPs, prepositions PPs.
inline std::string toy_chunking_corpus(std::size_t sentences, unsigned seed) {
  std::mt19937 rng(seed);
  const char* nouns[] = {"dog", "cat", "market", "price", "bank", "share", "stock", "year"};
  const char* adjectives[] = {"big", "new", "old", "red", "high"};
  const char* verbs[] = {"rose", "fell", "saw", "bought", "sold"};
  const char* preps[] = {"in", "of", "on", "at"};
  std::ostringstream out;
  auto noun_phrase = [&](bool after_prep) {
    (void)after_prep;
    out << "the DT B-NP\n";
    if (rng() % 2) out << adjectives[rng() % 5] << " JJ I-NP\n";
    out << nouns[rng() % 8] << " NN I-NP\n";
  };
  for (std::size_t n = 0; n < sentences; ++n) {
    noun_phrase(false);
    out << verbs[rng() % 5] << " VBD B-VP\n";
    if (rng() % 2) {
      noun_phrase(false);
    } else {
      out << preps[rng() % 4] << " IN B-PP\n";
      noun_phrase(true);
    }
    out << ". . O\n\n";
  }
  return out.str();
}

// Sentences that only transitions can label: the first token ("a" or "b") names the label
// (A or B) that every token of the sentence carries, and the other 7 to 10 tokens are all "x".
// From position 3 on the template window (offsets -2..2) sees only "x" and boundary markers,
// the same for both labels, so a model without working transitions labels those positions
// at chance (about 50%); with them, the label propagates from the first token.
inline std::string transition_only_corpus(std::size_t sentences, unsigned seed) {
  std::mt19937 rng(seed);
  std::ostringstream out;
  for (std::size_t n = 0; n < sentences; ++n) {
    const bool a = rng() % 2 == 0;
    const std::size_t T = 8 + rng() % 4;
    out << (a ? "a" : "b") << " P " << (a ? "A" : "B") << "\n";
    for (std::size_t t = 1; t < T; ++t) out << "x Q " << (a ? "A" : "B") << "\n";
    out << "\n";
  }
  return out.str();
}

}  // namespace septa::crf::testing
