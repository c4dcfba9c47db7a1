#include "nn/methods/mt/corpus.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "nn/data/mo.h"
#include "nn/methods/mt/clean.h"
#include "septa/error.h"
#include "util/atomic_file.h"

namespace septa::nn::mt {
namespace {

std::vector<std::string> list_dir(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return names;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator)) parts.push_back(part);
  if (!text.empty() && text.back() == separator) parts.emplace_back();
  return parts;
}

struct Occurrence {
  std::map<std::string, int> translations;  // translation -> count
  std::set<std::string> packages;
};

}  // namespace

Groups parse_groups(const std::string& text, const std::string& option) {
  Groups groups;
  std::set<std::string> seen;
  for (const auto& group_text : split(text, ';')) {
    std::vector<std::string> group;
    for (const auto& language : split(group_text, ',')) {
      if (language.empty()) throw OptionError(option + ": empty language in '" + text + "'");
      if (!seen.insert(language).second)
        throw OptionError(option + ": language '" + language + "' named twice in '" + text + "'");
      group.push_back(language);
    }
    if (group.empty()) throw OptionError(option + ": empty group in '" + text + "'");
    groups.push_back(group);
  }
  if (groups.empty()) throw OptionError(option + ": no language groups given");
  return groups;
}

std::string format_groups(const Groups& groups) {
  std::string out;
  for (size_t g = 0; g < groups.size(); ++g) {
    if (g) out += ';';
    for (size_t l = 0; l < groups[g].size(); ++l) out += (l ? "," : "") + groups[g][l];
  }
  return out;
}

std::vector<std::string> languages(const Groups& groups) {
  std::vector<std::string> out;
  for (const auto& g : groups) out.insert(out.end(), g.begin(), g.end());
  return out;
}

std::map<std::string, std::string> file_owners(const std::string& dpkg_dir) {
  // binary package -> source package, from the status file's stanzas
  std::map<std::string, std::string> source_of;
  std::ifstream status(dpkg_dir + "/status");
  std::string line, package;
  while (std::getline(status, line)) {
    if (line.rfind("Package: ", 0) == 0) {
      package = line.substr(9);
      source_of[package] = package;
    } else if (line.rfind("Source: ", 0) == 0 && !package.empty()) {
      std::string source = line.substr(8);
      source = source.substr(0, source.find(' '));  // "Source: foo (1.2)"
      source_of[package] = source;
    }
  }
  std::map<std::string, std::string> owners;
  const std::string info = dpkg_dir + "/info";
  for (const auto& name : list_dir(info, ".list")) {
    std::string binary = name.substr(0, name.size() - 5);
    binary = binary.substr(0, binary.find(':'));  // "libc6:amd64"
    const auto it = source_of.find(binary);
    const std::string& source = it == source_of.end() ? binary : it->second;
    std::ifstream list(info + "/" + name);
    while (std::getline(list, line))
      if (line.size() > 3 && line.compare(line.size() - 3, 3, ".mo") == 0) owners[line] = source;
  }
  return owners;
}

char package_split(const std::string& package, uint64_t seed, double dev_fraction, double test_fraction) {
  // FNV-1a over the seed's 8 bytes and the name, then a final avalanche (splitmix64's mixer).
  uint64_t h = 14695981039346656037ull;
  const auto mix = [&h](unsigned char byte) { h = (h ^ byte) * 1099511628211ull; };
  for (int i = 0; i < 8; ++i) mix(static_cast<unsigned char>(seed >> (8 * i)));
  for (unsigned char c : package) mix(c);
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  const double u = static_cast<double>(h >> 11) / static_cast<double>(1ull << 53);
  if (u < test_fraction) return 'e';
  if (u < test_fraction + dev_fraction) return 'd';
  return 't';
}

CorpusStats build_corpus(const CorpusConfig& config, const std::function<void(const std::string&)>& log) {
  if (config.out_dir.empty()) throw OptionError("build-corpus needs an output directory");
  if (config.dev_fraction < 0 || config.test_fraction <= 0 || config.dev_fraction + config.test_fraction >= 1)
    throw OptionError("--dev-fraction and --test-fraction: need test > 0, dev >= 0, dev + test < 1");
  ::mkdir(config.out_dir.c_str(), 0755);
  const auto owners = file_owners(config.dpkg_dir);
  const std::vector<std::string> langs = languages(config.groups);
  CorpusStats stats;
  // language -> English message -> its translations and packages
  std::map<std::string, std::map<std::string, Occurrence>> by_language;
  std::map<std::string, std::set<std::string>> packages_of;  // English message -> packages, all languages
  for (size_t g = 0; g < config.groups.size(); ++g)
    for (const auto& language : config.groups[g]) {
      LanguageStats ls;
      ls.language = language;
      ls.group = static_cast<int>(g);
      const std::string dir = config.locale_dir + "/" + language + "/LC_MESSAGES";
      auto& messages = by_language[language];
      for (const auto& file : list_dir(dir, ".mo")) {
        const std::string path = dir + "/" + file;
        MoCatalog catalog;
        try {
          catalog = read_mo(path);
        } catch (const FormatError& e) {
          ++ls.rejected;
          log(std::string("skipped ") + e.what());
          continue;
        }
        ++ls.catalogs;
        const auto owner = owners.find(path);
        const std::string package =
            owner != owners.end() ? owner->second : "domain:" + file.substr(0, file.size() - 3);
        for (const auto& entry : catalog.entries) {
          if (entry.msgstr.empty() || entry.msgstr.front().empty()) continue;
          ++ls.raw_pairs;
          // plural entries: the singular pair only
          const std::string source = clean_message(entry.msgid, config.max_bytes);
          const std::string target = clean_message(entry.msgstr.front(), config.max_bytes);
          if (source.empty() || target.empty() || source == target) continue;
          auto& occurrence = messages[source];
          ++occurrence.translations[target];
          occurrence.packages.insert(package);
          packages_of[source].insert(package);
        }
      }
      if (ls.catalogs == 0) log("warning: no catalogs under " + dir);
      stats.languages.push_back(ls);
    }
  // The split of each message from the splits of all its packages, in every language.
  std::map<std::string, char> message_split;
  for (const auto& [message, packages] : packages_of) {
    char verdict = 0;
    for (const auto& package : packages) {
      const char s = package_split(package, config.seed, config.dev_fraction, config.test_fraction);
      stats.packages[package] = s;
      verdict = verdict == 0 || verdict == s ? s : 't';
    }
    message_split[message] = verdict;
  }
  // The per-package cap of dev and test: 'x' marks a dropped message.
  if (config.max_per_package > 0) {
    std::map<std::pair<char, std::string>, std::vector<std::pair<uint64_t, std::string>>> held;
    for (const auto& [message, split] : message_split)
      if (split != 't') {
        uint64_t h = 1469598103934665603ull ^ config.seed;
        for (unsigned char c : message) h = (h ^ c) * 1099511628211ull;
        held[{split, *packages_of.at(message).begin()}].emplace_back(h, message);
      }
    for (auto& [key, messages] : held) {
      std::sort(messages.begin(), messages.end());
      for (size_t i = static_cast<size_t>(config.max_per_package); i < messages.size(); ++i)
        message_split[messages[i].second] = 'x';
    }
  }
  const char* const kSplits[] = {"train", "dev", "test"};
  std::map<std::string, std::map<std::string, std::string>> test_translation;  // lang -> en -> tr
  for (auto& ls : stats.languages) {
    std::string out[3];
    for (const auto& [source, occurrence] : by_language[ls.language]) {
      std::string best;
      int best_count = 0;
      for (const auto& [target, count] : occurrence.translations)  // map order: ties -> smallest
        if (count > best_count) best = target, best_count = count;
      const char s = message_split.at(source);
      if (s == 'x') continue;
      const int index = s == 't' ? 0 : s == 'd' ? 1 : 2;
      (index == 0 ? ls.train : index == 1 ? ls.dev : ls.test) += 1;
      out[index] += *occurrence.packages.begin() + '\t' + source + '\t' + best + '\n';
      if (index == 2) test_translation[ls.language][source] = best;
    }
    for (int i = 0; i < 3; ++i)
      write_file_atomically(config.out_dir + "/" + ls.language + "." + kSplits[i] + ".tsv", out[i]);
    log(ls.language + ": " + std::to_string(ls.catalogs) + " catalogs, " + std::to_string(ls.raw_pairs) +
        " raw pairs -> train " + std::to_string(ls.train) + ", dev " + std::to_string(ls.dev) +
        ", test " + std::to_string(ls.test));
  }
  std::string nway = "en";
  for (const auto& l : langs) nway += '\t' + l;
  nway += '\n';
  for (const auto& [source, target] : test_translation[langs.front()]) {
    std::string row = source;
    bool everywhere = true;
    for (const auto& l : langs) {
      const auto it = test_translation[l].find(source);
      if (it == test_translation[l].end()) {
        everywhere = false;
        break;
      }
      row += '\t' + it->second;
    }
    if (!everywhere) continue;
    nway += row + '\n';
    ++stats.nway;
  }
  write_file_atomically(config.out_dir + "/test.nway.tsv", nway);
  write_file_atomically(config.out_dir + "/groups.txt", format_groups(config.groups) + "\n");
  std::string table = "language\tgroup\tcatalogs\trejected\traw_pairs\ttrain\tdev\ttest\tnway\n";
  for (const auto& ls : stats.languages)
    table += ls.language + '\t' + std::to_string(ls.group) + '\t' + std::to_string(ls.catalogs) + '\t' +
             std::to_string(ls.rejected) + '\t' + std::to_string(ls.raw_pairs) + '\t' +
             std::to_string(ls.train) + '\t' + std::to_string(ls.dev) + '\t' + std::to_string(ls.test) +
             '\t' + std::to_string(stats.nway) + '\n';
  write_file_atomically(config.out_dir + "/stats.tsv", table);
  log("n-way test set: " + std::to_string(stats.nway) + " messages in all " + std::to_string(langs.size()) +
      " languages");
  return stats;
}

std::vector<Pair> read_pairs(const std::string& dir, const std::string& language, const std::string& split_name) {
  const std::string path = dir + "/" + language + "." + split_name + ".tsv";
  std::ifstream in(path);
  if (!in) throw IoError(path + ": cannot open (run septa nn mt build-corpus first)");
  std::vector<Pair> pairs;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const auto fields = split(line, '\t');
    if (fields.size() != 3 || fields[1].empty() || fields[2].empty())
      throw FormatError(path + ":" + std::to_string(number) + ": expected package<TAB>english<TAB>translation");
    pairs.push_back({fields[0], fields[1], fields[2]});
  }
  return pairs;
}

NwayTest read_nway(const std::string& dir) {
  const std::string path = dir + "/test.nway.tsv";
  std::ifstream in(path);
  if (!in) throw IoError(path + ": cannot open (run septa nn mt build-corpus first)");
  NwayTest test;
  std::string line;
  if (!std::getline(in, line)) throw FormatError(path + ":1: missing the header line");
  const auto header = split(line, '\t');
  if (header.size() < 2 || header[0] != "en") throw FormatError(path + ":1: header must be en<TAB>languages");
  test.languages.assign(header.begin() + 1, header.end());
  for (int number = 2; std::getline(in, line); ++number) {
    const auto fields = split(line, '\t');
    if (fields.size() != header.size())
      throw FormatError(path + ":" + std::to_string(number) + ": expected " + std::to_string(header.size()) +
                        " fields, found " + std::to_string(fields.size()));
    test.english.push_back(fields[0]);
    for (size_t l = 0; l < test.languages.size(); ++l) test.by_language[test.languages[l]].push_back(fields[l + 1]);
  }
  return test;
}

Groups read_groups(const std::string& dir) {
  std::ifstream in(dir + "/groups.txt");
  std::string line;
  if (!in || !std::getline(in, line)) throw IoError(dir + "/groups.txt: cannot read");
  return parse_groups(line, dir + "/groups.txt");
}

}  // namespace septa::nn::mt
