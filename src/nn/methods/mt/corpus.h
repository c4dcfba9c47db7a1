// Parallel text from Debian's translation catalogs: English msgids paired with their
// translations, cleaned, deduplicated and split train/dev/test by source package. Torch-free.
//
// Files written into the corpus directory (UTF-8, one pair a line, tab-separated; cleaned text
// holds no tab or newline):
//   <lang>.<split>.tsv   package \t english \t translation      (split: train, dev, test)
//   test.nway.tsv        english \t <lang 1> \t ...   (first line: "en" and the languages)
//   groups.txt           the language groups, "de,fr,es;ru;ja,zh_CN"
//   stats.tsv            per language: group, catalogs read, raw pairs, pairs per split
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace septa::nn::mt {

using Groups = std::vector<std::vector<std::string>>;  // language groups: {{de, fr, es}, {ru}}

// "de,fr,es;ru;ja,zh_CN" -> groups; OptionError naming `option` for an empty group or language
// or a language named twice.
Groups parse_groups(const std::string& text, const std::string& option);
std::string format_groups(const Groups& groups);
std::vector<std::string> languages(const Groups& groups);  // in group order

struct CorpusConfig {
  std::string locale_dir = "/usr/share/locale";  // <lang>/LC_MESSAGES/*.mo below it
  std::string dpkg_dir = "/var/lib/dpkg";        // info/*.list and status: owning packages
  Groups groups;
  double dev_fraction = 0.05;   // of the source packages, drawn by a seeded hash of the name
  double test_fraction = 0.10;
  // Dev and test messages kept per source package (the smallest package carrying the message),
  // the ones with the smallest seeded hash; the rest are dropped, so no single package dominates
  // an evaluation split. 0 keeps all.
  int64_t max_per_package = 300;
  uint64_t seed = 1;
  std::size_t max_bytes = 200;  // longer messages are dropped
  std::string out_dir;
};

struct LanguageStats {
  std::string language;
  int group = 0;
  int catalogs = 0;         // .mo files read
  int rejected = 0;         // .mo files that failed to parse (skipped, named on the log)
  int64_t raw_pairs = 0;    // entries with a translation, before cleaning
  int64_t train = 0, dev = 0, test = 0;  // distinct English messages per split after cleaning
};

struct CorpusStats {
  std::vector<LanguageStats> languages;
  int64_t nway = 0;                       // test messages translated into every language
  std::map<std::string, char> packages;  // source package -> 't' train, 'd' dev, 'e' test
};

// Package owning each installed file, as the source package ("Source:" in dpkg's status, the
// binary package's own name when absent): reads <dpkg_dir>/info/*.list and <dpkg_dir>/status.
std::map<std::string, std::string> file_owners(const std::string& dpkg_dir);

// The split of a source package: 'e' (test), 'd' (dev) or 't' (train), from a 64-bit FNV-1a hash
// of the seed and the name mapped to [0, 1).
char package_split(const std::string& package, uint64_t seed, double dev_fraction,
                   double test_fraction);

// Reads every language's catalogs, writes the corpus files; `log` receives progress lines and
// the names of rejected catalogs. A message (its cleaned English text) is in the test split only
// when every package carrying it, in any language, is a test package; likewise dev; otherwise it
// is in train: no English test message occurs in train or dev. Dev and test keep at most
// max_per_package messages of each package. A repeated message takes its
// majority translation (ties: the smallest string).
CorpusStats build_corpus(const CorpusConfig& config, const std::function<void(const std::string&)>& log);

struct Pair {
  std::string package, source, target;  // source: English
};

// <dir>/<lang>.<split>.tsv; FormatError "<file>:<line>: ..." for a malformed line.
std::vector<Pair> read_pairs(const std::string& dir, const std::string& language, const std::string& split);

struct NwayTest {
  std::vector<std::string> languages;                  // header order, without "en"
  std::vector<std::string> english;                    // [S]
  std::map<std::string, std::vector<std::string>> by_language;  // lang -> [S]
};
NwayTest read_nway(const std::string& dir);
Groups read_groups(const std::string& dir);

}  // namespace septa::nn::mt
