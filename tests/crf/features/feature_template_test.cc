#include "septa/crf/feature_template.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "crf/test_data.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

using Strings = std::vector<std::string>;

ColumnSentence sentence(const std::vector<Strings>& tokens, std::size_t first_line = 1) {
  ColumnSentence s;
  s.columns = tokens;
  s.first_line = first_line;
  return s;
}

Strings expand(const FeatureTemplate& tmpl, const ColumnSentence& s, std::size_t t) {
  Strings out;
  tmpl.expand(s, t, out);
  return out;
}

std::string error_of(const std::string& text) {
  try {
    FeatureTemplate::parse(text, "t.tmpl");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "no error";
}

TEST(FeatureTemplate, ParsesUnigramsBigramCommentsAndBlankLines) {
  const auto tmpl =
      FeatureTemplate::parse("# words\r\n\r\nU00:%x[0,0]\r\n  \nU01:%x[-1,2]/%x[1,0]\nB\n", "t");
  EXPECT_EQ(tmpl.unigram_count(), 2u);
  EXPECT_TRUE(tmpl.has_bigram());
  EXPECT_EQ(tmpl.max_column(), 2);
  EXPECT_EQ(tmpl.unigram_text(1), "U01:%x[-1,2]/%x[1,0]");
  EXPECT_EQ(tmpl.text(), "# words\r\n\r\nU00:%x[0,0]\r\n  \nU01:%x[-1,2]/%x[1,0]\nB\n");
}

TEST(FeatureTemplate, NoBigramNoUnigram) {
  const auto only_u = FeatureTemplate::parse("U:%x[0,0]\n", "t");
  EXPECT_FALSE(only_u.has_bigram());
  const auto only_b = FeatureTemplate::parse("B\n", "t");
  EXPECT_TRUE(only_b.has_bigram());
  EXPECT_EQ(only_b.unigram_count(), 0u);
  EXPECT_EQ(only_b.max_column(), -1);
}

TEST(FeatureTemplate, ErrorsNameTheLine) {
  EXPECT_EQ(error_of("U00:%x[0,0]\n\nB01:%x[0,0\n"),
            "t.tmpl:3: malformed macro '%x[0,0' (expected %x[row,col])");
  EXPECT_EQ(error_of("# c\nX01:%x[0,0]\n"),
            "t.tmpl:2: unknown template line 'X01:%x[0,0]' (expected U..., B or # comment)");
  EXPECT_EQ(error_of("U00:%x[0\n"), "t.tmpl:1: malformed macro '%x[0' (expected %x[row,col])");
  EXPECT_EQ(error_of("\nU00:%x[a,1]\n"),
            "t.tmpl:2: malformed macro '%x[a,1]' (expected %x[row,col])");
  EXPECT_EQ(error_of("U00:%x[0,-1]\n"), "t.tmpl:1: negative column in macro '%x[0,-1]'");
  EXPECT_EQ(error_of("U00:%y[0,1]\n"), "t.tmpl:1: malformed macro '%y[0,1]' (expected %x[row,col])");
  EXPECT_EQ(error_of("U00:%x[0]\n"), "t.tmpl:1: malformed macro '%x[0]' (expected %x[row,col])");
  EXPECT_EQ(error_of("U00:%x[,1]\n"), "t.tmpl:1: malformed macro '%x[,1]' (expected %x[row,col])");
}

// CRF++ expands bigram templates at the current token t for the edge (t-1, t); none at t = 0.
TEST(FeatureTemplate, ConditionedBigramsExpandPerEdgeAtTheCurrentToken) {
  const auto tmpl = FeatureTemplate::parse(
      "U00:%x[0,0]\nB01:%x[0,0]\nB02:%x[-1,1]/%x[0,1]\nB03:%x[1,0]\n", "t");
  EXPECT_FALSE(tmpl.has_bigram());  // no plain B: no label-bigram weights
  EXPECT_EQ(tmpl.conditioned_bigram_count(), 3u);
  EXPECT_EQ(tmpl.conditioned_bigram_text(1), "B02:%x[-1,1]/%x[0,1]");
  EXPECT_EQ(tmpl.max_column(), 1);
  const auto s = sentence({{"a", "A"}, {"b", "B"}, {"c", "C"}});
  auto edge = [&](std::size_t t) {
    Strings out;
    tmpl.expand_edge(s, t, out);
    return out;
  };
  EXPECT_EQ(edge(0), Strings{});
  EXPECT_EQ(edge(1), (Strings{"B01:b", "B02:A/B", "B03:c"}));
  EXPECT_EQ(edge(2), (Strings{"B01:c", "B02:B/C", "B03:_B+1"}));
  EXPECT_EQ(expand(tmpl, s, 1), Strings{"U00:b"});  // unigrams unchanged
  // With a plain B line as well, both kinds; macro-free B lines are the one label bigram.
  const auto both = FeatureTemplate::parse("U00:%x[0,0]\nB\nB00\nB01:%x[0,0]\n", "t");
  EXPECT_TRUE(both.has_bigram());
  EXPECT_EQ(both.conditioned_bigram_count(), 1u);
  // A template of only a conditioned B line is a template.
  EXPECT_EQ(FeatureTemplate::parse("B01:%x[0,0]\n", "t").conditioned_bigram_count(), 1u);
  // A conditioned bigram reading a missing column names the token's line.
  const auto wide = FeatureTemplate::parse("U00:%x[0,0]\nB01:%x[0,3]\n", "t");
  Strings out;
  EXPECT_THROW(wide.expand_edge(sentence({{"a", "A"}, {"b", "B"}}, 7), 1, out), FormatError);
  EXPECT_EQ(wide.max_column(), 3);
}

TEST(FeatureTemplate, MissingFileIsAnIoError) {
  EXPECT_THROW(FeatureTemplate::parse_file("/nonexistent/septa/template"), IoError);
}

TEST(FeatureTemplate, PaddingAtBothEnds) {
  const auto tmpl = FeatureTemplate::parse("U00:%x[-2,0]/%x[2,0]\nU01:%x[-1,1]|%x[1,1]!\n", "t");
  const auto s = sentence({{"a", "A"}, {"b", "B"}, {"c", "C"}});
  EXPECT_EQ(expand(tmpl, s, 0), (Strings{"U00:_B-2/c", "U01:_B-1|B!"}));
  EXPECT_EQ(expand(tmpl, s, 1), (Strings{"U00:_B-1/_B+1", "U01:A|C!"}));
  EXPECT_EQ(expand(tmpl, s, 2), (Strings{"U00:a/_B+2", "U01:B|_B+1!"}));
  const auto one = sentence({{"x", "X"}});
  EXPECT_EQ(expand(tmpl, one, 0), (Strings{"U00:_B-2/_B+2", "U01:_B-1|_B+1!"}));
  const auto far = FeatureTemplate::parse("U:%x[-12,0]%x[+10,0]\n", "t");
  EXPECT_EQ(expand(far, s, 1), (Strings{"U:_B-11_B+9"}));
}

TEST(FeatureTemplate, ExpandAppendsAndKeepsLiteralOnlyTemplates) {
  const auto tmpl = FeatureTemplate::parse("U99:bias\nU00:%x[0,0]\n", "t");
  Strings out = {"existing"};
  tmpl.expand(sentence({{"w", "O"}}), 0, out);
  EXPECT_EQ(out, (Strings{"existing", "U99:bias", "U00:w"}));
}

TEST(FeatureTemplate, ColumnBeyondTheSentenceNamesItsLine) {
  const auto tmpl = FeatureTemplate::parse("U00:%x[0,0]\nU01:%x[-1,3]\n", "t");
  const auto s = sentence({{"a", "A", "O"}, {"b", "B", "O"}}, 40);
  try {
    Strings out;
    tmpl.expand(s, 1, out);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_EQ(std::string(e.what()),
              "line 41: template 'U01:%x[-1,3]' reads column 3 but the token has 3 columns");
  }
  Strings out;
  EXPECT_THROW(tmpl.expand(s, 0, out), FormatError);  // also when the macro falls in padding
}

TEST(FeatureTemplate, DefaultChunkingTemplate) {
  const auto tmpl = FeatureTemplate::default_chunking();
  EXPECT_EQ(tmpl.unigram_count(), 19u);
  EXPECT_TRUE(tmpl.has_bigram());
  EXPECT_EQ(tmpl.max_column(), 1);
  const auto s = sentence({{"He", "PRP", "B-NP"},
                           {"reckons", "VBZ", "B-VP"},
                           {"the", "DT", "B-NP"},
                           {"current", "JJ", "I-NP"}});
  EXPECT_EQ(expand(tmpl, s, 0),
            (Strings{"U00:_B-2", "U01:_B-1", "U02:He", "U03:reckons", "U04:the",
                     "U05:_B-1/He", "U06:He/reckons", "U10:_B-2", "U11:_B-1", "U12:PRP",
                     "U13:VBZ", "U14:DT", "U15:_B-2/_B-1", "U16:_B-1/PRP", "U17:PRP/VBZ",
                     "U18:VBZ/DT", "U20:_B-2/_B-1/PRP", "U21:_B-1/PRP/VBZ",
                     "U22:PRP/VBZ/DT"}));
  EXPECT_EQ(expand(tmpl, s, 3),
            (Strings{"U00:reckons", "U01:the", "U02:current", "U03:_B+1", "U04:_B+2",
                     "U05:the/current", "U06:current/_B+1", "U10:VBZ", "U11:DT", "U12:JJ",
                     "U13:_B+1", "U14:_B+2", "U15:VBZ/DT", "U16:DT/JJ", "U17:JJ/_B+1",
                     "U18:_B+1/_B+2", "U20:VBZ/DT/JJ", "U21:DT/JJ/_B+1",
                     "U22:JJ/_B+1/_B+2"}));
}

TEST(FeatureTemplate, ExampleFileMatchesTheDefault) {
  const std::string path = test::source_file("examples/chunking.template");
  if (path.empty()) GTEST_SKIP() << "examples/chunking.template not found from the working dir";
  const auto from_file = FeatureTemplate::parse_file(path);
  EXPECT_EQ(from_file.text(), FeatureTemplate::default_chunking().text());
  EXPECT_EQ(from_file.unigram_count(), 19u);
}

TEST(FeatureTemplate, ExpandsConll2000Train) {
  const std::string path = test::data_file("conll2000/train.txt");
  if (path.empty()) GTEST_SKIP() << "CoNLL-2000 data not found (set SEPTA_DATA)";
  const auto sentences = read_columns_file(path, 3);
  const auto tmpl = FeatureTemplate::default_chunking();
  const auto start = std::chrono::steady_clock::now();
  std::size_t strings = 0;
  std::size_t bytes = 0;
  Strings out;
  for (const auto& s : sentences) {
    for (std::size_t t = 0; t < s.columns.size(); ++t) {
      out.clear();
      tmpl.expand(s, t, out);
      strings += out.size();
      for (const auto& a : out) bytes += a.size();
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(strings, 211727u * 19u);
  std::printf("expanded %zu strings (%zu bytes) in %.3f s\n", strings, bytes, seconds);
}

// The allocation-free expansion (one buffer, end offsets) gives the same strings as the
// vector form, appended after what the buffer already holds.
TEST(FeatureTemplate, FlatExpansionMatchesTheStringVector) {
  const auto tmpl = FeatureTemplate::parse(
      "U00:%x[-2,0]\nU01:%x[0,0]/%x[1,1]\nU02:literal only\nU03:%x[2,1]\nB01:%x[-1,1]/%x[0,0]\nB\n",
      "t");
  const auto s = sentence({{"a", "A"}, {"bb", "B"}, {"a-much-longer-token-than-sso", "C"}});
  for (std::size_t t = 0; t < 3; ++t) {
    for (const bool edge : {false, true}) {
      Strings expected;
      if (edge) tmpl.expand_edge(s, t, expected); else tmpl.expand(s, t, expected);
      std::string text = "prefix";
      std::vector<std::size_t> ends;
      if (edge) tmpl.expand_edge(s, t, text, ends); else tmpl.expand(s, t, text, ends);
      Strings got;
      for (std::size_t i = 0, begin = 6; i < ends.size(); begin = ends[i++])
        got.push_back(text.substr(begin, ends[i] - begin));
      EXPECT_EQ(got, expected) << t << edge;
      EXPECT_EQ(text.size(), ends.empty() ? 6 : ends.back());
    }
  }
}

}  // namespace
}  // namespace septa::crf
