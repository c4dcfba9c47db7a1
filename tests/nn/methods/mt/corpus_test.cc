#include "nn/methods/mt/corpus.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>

#include "nn/data/mo.h"
#include "septa/error.h"

namespace septa::nn::mt {
namespace {

void mkdirs(const std::string& path) {
  for (size_t at = path.find('/', 1);; at = path.find('/', at + 1)) {
    ::mkdir(path.substr(0, at).c_str(), 0755);
    if (at == std::string::npos) break;
  }
}

void write(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

// A fake system: 40 source packages (pkg00..pkg39; binary pkgNN-bin, whose status names the
// source), each with catalogs for de and fr of 5 own messages plus one message shared by all.
struct Fixture {
  std::string root;
  Fixture() {
    char templ[] = "/tmp/septa_corpus_XXXXXX";
    root = ::mkdtemp(templ);
    std::string status;
    for (int p = 0; p < 40; ++p) {
      const std::string source = "pkg" + std::string(p < 10 ? "0" : "") + std::to_string(p);
      const std::string binary = source + "-bin";
      status += "Package: " + binary + "\nStatus: install ok installed\nSource: " + source + " (1.0-1)\n\n";
      std::string list;
      for (const std::string lang : {"de", "fr"}) {
        const std::string dir = root + "/locale/" + lang + "/LC_MESSAGES";
        mkdirs(dir);
        std::vector<MoEntry> entries;
        for (int m = 0; m < 5; ++m) {
          const std::string text = "Message " + std::to_string(m) + " of " + source;
          entries.push_back({"", "_" + text, "", {lang + " " + text}});
        }
        entries.push_back({"", "Shared message", "", {lang + (p == 3 ? " odd" : " shared")}});
        entries.push_back({"", "%s", "", {"%s"}});             // nothing left after cleaning
        entries.push_back({"", "Same", "", {"Same"}});          // identical: dropped
        entries.push_back({"", "Untranslated", "", {""}});      // no translation
        const std::string path = dir + "/" + source + ".mo";
        write(path, write_mo(entries, p % 2 == 1));
        list += path + "\n";
      }
      mkdirs(root + "/dpkg/info");
      write(root + "/dpkg/info/" + binary + ":amd64.list", list);
    }
    write(root + "/dpkg/status", status);
    write(root + "/locale/de/LC_MESSAGES/broken.mo", "not a catalog");
  }
  ~Fixture() { std::system(("rm -rf " + root).c_str()); }
  CorpusConfig config() const {
    CorpusConfig c;
    c.locale_dir = root + "/locale";
    c.dpkg_dir = root + "/dpkg";
    c.groups = {{"de", "fr"}};
    c.dev_fraction = 0.2;
    c.test_fraction = 0.3;
    c.out_dir = root + "/corpus";
    return c;
  }
};

TEST(CorpusTest, OwnersAreSourcePackages) {
  Fixture f;
  const auto owners = file_owners(f.root + "/dpkg");
  EXPECT_EQ(owners.at(f.root + "/locale/fr/LC_MESSAGES/pkg07.mo"), "pkg07");
}

TEST(CorpusTest, SplitsArePackageDisjointAndCountsAdd) {
  Fixture f;
  std::vector<std::string> log;
  const CorpusStats stats = build_corpus(f.config(), [&log](const std::string& l) { log.push_back(l); });
  ASSERT_EQ(stats.languages.size(), 2u);
  EXPECT_EQ(stats.languages[0].rejected, 1);  // broken.mo, named on the log
  EXPECT_EQ(stats.languages[0].catalogs, 40);
  bool named = false;
  for (const auto& l : log) named |= l.find("broken.mo: offset 0") != std::string::npos;
  EXPECT_TRUE(named);
  std::set<char> seen;
  for (const auto& [package, split] : stats.packages) seen.insert(split);
  ASSERT_EQ(seen.size(), 3u) << "the fixture should put packages into all three splits";
  for (const auto& ls : stats.languages) {
    EXPECT_EQ(ls.raw_pairs, 40 * 8);
    const auto train = read_pairs(f.config().out_dir, ls.language, "train");
    const auto dev = read_pairs(f.config().out_dir, ls.language, "dev");
    const auto test = read_pairs(f.config().out_dir, ls.language, "test");
    EXPECT_EQ(static_cast<int64_t>(train.size()), ls.train);
    EXPECT_EQ(ls.train + ls.dev + ls.test, 40 * 5 + 1);  // distinct messages
    std::set<std::string> train_sources;
    for (const auto& p : train) train_sources.insert(p.source);
    for (const auto* held_out : {&dev, &test})
      for (const auto& p : *held_out) {
        EXPECT_EQ(train_sources.count(p.source), 0u) << p.source;
        const char expected = held_out == &dev ? 'd' : 'e';
        EXPECT_EQ(stats.packages.at(p.package), expected) << p.package;
        EXPECT_EQ(p.source.find('_'), std::string::npos);  // cleaned
      }
    // Shared by all packages: train; majority translation.
    bool shared = false;
    for (const auto& p : train)
      if (p.source == "Shared message") {
        shared = true;
        EXPECT_EQ(p.target, ls.language + " shared");
      }
    EXPECT_TRUE(shared);
  }
  const NwayTest nway = read_nway(f.config().out_dir);
  EXPECT_EQ(static_cast<int64_t>(nway.english.size()), stats.nway);
  EXPECT_EQ(stats.nway, stats.languages[0].test);
  ASSERT_GT(stats.nway, 0);
  EXPECT_EQ(nway.by_language.at("fr")[0], "fr " + nway.english[0]);
  EXPECT_EQ(format_groups(read_groups(f.config().out_dir)), "de,fr");
}

TEST(CorpusTest, HeldOutSplitsKeepAtMostMaxPerPackageMessagesOfEachPackage) {
  Fixture f;
  const auto quiet = [](const std::string&) {};
  CorpusConfig all = f.config();
  all.max_per_package = 0;
  const CorpusStats full = build_corpus(all, quiet);
  const auto full_test = read_pairs(all.out_dir, "de", "test");
  CorpusConfig capped = f.config();
  capped.max_per_package = 2;
  const CorpusStats stats = build_corpus(capped, quiet);
  for (size_t l = 0; l < stats.languages.size(); ++l) {
    const auto& ls = stats.languages[l];
    EXPECT_EQ(ls.train, full.languages[l].train);  // dropped held-out messages never move to train
    EXPECT_LT(ls.test, full.languages[l].test);
    for (const char* split : {"dev", "test"}) {
      std::map<std::string, int> per_package;
      for (const auto& p : read_pairs(capped.out_dir, ls.language, split)) ++per_package[p.package];
      for (const auto& [package, count] : per_package) EXPECT_LE(count, 2) << split << " " << package;
    }
  }
  // The kept messages are a subset of the uncapped split.
  std::set<std::string> full_sources;
  for (const auto& p : full_test) full_sources.insert(p.source);
  for (const auto& p : read_pairs(capped.out_dir, "de", "test")) EXPECT_EQ(full_sources.count(p.source), 1u);
  EXPECT_EQ(static_cast<int64_t>(read_nway(capped.out_dir).english.size()), stats.nway);
}

TEST(CorpusTest, SplitDependsOnlyOnPackageAndSeed) {
  int test = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string name = "package" + std::to_string(i);
    const char s = package_split(name, 7, 0.1, 0.2);
    EXPECT_EQ(s, package_split(name, 7, 0.1, 0.2));
    test += s == 'e';
  }
  EXPECT_NEAR(test, 200, 50);
}

TEST(CorpusTest, Groups) {
  const Groups g = parse_groups("de,fr,es;ru;ja,zh_CN", "--groups");
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[2][1], "zh_CN");
  EXPECT_EQ(format_groups(g), "de,fr,es;ru;ja,zh_CN");
  EXPECT_THROW(parse_groups("de;de", "--groups"), OptionError);
  EXPECT_THROW(parse_groups("de,,fr", "--groups"), OptionError);
  EXPECT_THROW(parse_groups("", "--groups"), OptionError);
}

}  // namespace
}  // namespace septa::nn::mt
