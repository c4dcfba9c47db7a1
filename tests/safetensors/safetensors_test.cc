// safetensors files: round trips (single, sharded), files written by an independent
// implementation (tests/safetensors/make_fixture.py), checksums, and malformed files.
#include "safetensors/safetensors.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <fstream>
#include <sstream>

#include "safetensors/temp_dir.h"
#include "septa/error.h"

namespace septa::safetensors {
namespace {

using septa::testing::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string raw(const Reader& r, const std::string& name) {
  const TensorInfo& info = r.tensor(name);
  return std::string(reinterpret_cast<const char*>(r.data(info)), info.nbytes());
}

// Four tensors of different dtypes, one empty; metadata with characters that need escaping.
Writer sample_writer() {
  Writer w;
  const float a[6] = {1, 2, 3, 4, 5, 6};
  w.add_f32("a.weight", {2, 3}, a);
  const float b[4] = {0.5f, -1.0f, 2.25f, 1e4f};
  w.add_f32("b.half", {4}, b, Dtype::kF16);
  w.add_f32("c.bf16", {2, 2}, b, Dtype::kBF16);
  const std::int64_t step = 12345;
  w.add("step", Dtype::kI64, {}, &step, 8);
  w.add("none", Dtype::kF32, {0}, nullptr, 0);
  w.set_metadata("format", "pt");
  w.set_metadata("note", "quote \" backslash \\ newline \n caf\xC3\xA9");
  return w;
}

TEST(Safetensors, SingleFileRoundTrip) {
  TempDir dir;
  sample_writer().write(dir / "m.safetensors");
  EXPECT_EQ(TempDir::list(dir.path()), std::vector<std::string>{"m.safetensors"});  // no temporaries
  const Reader r = Reader::open(dir / "m.safetensors");
  ASSERT_EQ(r.tensors().size(), 5u);
  EXPECT_EQ(r.read_f32("a.weight"), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(r.read_f32("b.half"), (std::vector<float>{0.5f, -1.0f, 2.25f, 1e4f}));
  EXPECT_EQ(r.read_f32("c.bf16"), (std::vector<float>{0.5f, -1.0f, 2.25f, 9984.0f}));  // bf16 rounding
  EXPECT_EQ(r.tensor("b.half").dtype, Dtype::kF16);
  EXPECT_EQ(r.tensor("a.weight").shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_TRUE(r.tensor("step").shape.empty());
  std::int64_t step;
  std::memcpy(&step, r.data(r.tensor("step")), 8);
  EXPECT_EQ(step, 12345);
  EXPECT_EQ(r.tensor("none").nbytes(), 0u);
  EXPECT_EQ(r.metadata().at("note"), "quote \" backslash \\ newline \n caf\xC3\xA9");
  EXPECT_TRUE(r.verify_checksum());
  EXPECT_EQ((r.header_bytes() - 8) % 8, 0u);
  // The same bytes again: the writer is deterministic.
  sample_writer().write(dir / "n.safetensors");
  EXPECT_EQ(slurp(dir / "m.safetensors"), slurp(dir / "n.safetensors"));
  // from_bytes sees the same file.
  const Reader m = Reader::from_bytes(slurp(dir / "m.safetensors"), "copy");
  EXPECT_EQ(raw(m, "c.bf16"), raw(r, "c.bf16"));
  EXPECT_TRUE(m.verify_checksum());
}

// Direct (O_DIRECT, staged) and page-cache writes give the same bytes: files shorter than one
// alignment block, ending exactly on a staging buffer, and spanning several buffers, with and
// without checksum, single and sharded.
TEST(Safetensors, DirectWritesMatchBufferedWrites) {
  TempDir dir;
  std::mt19937 rng(11);
  const std::size_t buffer_floats = (8u << 20) / 4;
  for (const std::vector<std::size_t>& sizes :
       {std::vector<std::size_t>{3}, std::vector<std::size_t>{buffer_floats - 40, 1},
        std::vector<std::size_t>{buffer_floats, 5, 2 * buffer_floats + 777}, std::vector<std::size_t>{}}) {
    Writer w;
    for (std::size_t t = 0; t < sizes.size(); ++t) {
      std::vector<float> values(sizes[t]);
      for (auto& v : values) v = std::uniform_real_distribution<float>(-1, 1)(rng);
      w.add_f32("t" + std::to_string(t), {static_cast<std::int64_t>(sizes[t])}, values.data());
    }
    for (const bool checksum : {true, false}) {
      WriteOptions buffered{checksum, false, false};
      WriteOptions direct{checksum, true, true, 0};
      w.write(dir / "buffered.safetensors", buffered);
      w.write(dir / "direct.safetensors", direct);
      const std::string expected = slurp(dir / "buffered.safetensors");
      EXPECT_EQ(slurp(dir / "direct.safetensors"), expected) << sizes.size() << " tensors";
      w.write_model(dir / "b", 3u << 20, buffered);
      w.write_model(dir / "d", 3u << 20, direct);
      for (const auto& name : TempDir::list(dir / "b")) {
        EXPECT_EQ(slurp(dir / ("d/" + name)), slurp(dir / ("b/" + name))) << name;
      }
      EXPECT_EQ(TempDir::list(dir / "d"), TempDir::list(dir / "b"));
      if (checksum) {
        EXPECT_TRUE(Reader::open(dir / "direct.safetensors").verify_checksum());
      }
      // tmpfs refuses O_DIRECT (or, on newer kernels, accepts it): either way the same bytes.
      struct stat st;
      if (::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && ::access("/dev/shm", W_OK) == 0) {
        const std::string shm = "/dev/shm/septa_direct_test_" + std::to_string(::getpid()) + ".safetensors";
        w.write(shm, direct);
        EXPECT_EQ(slurp(shm), expected);
        std::remove(shm.c_str());
      }
    }
  }
}

TEST(Safetensors, ShardedRoundTrip) {
  TempDir dir;
  // 24 + 8 + 8 + 8 + 0 bytes, shards of at most 16 bytes: [a.weight] [b.half c.bf16] [step none].
  sample_writer().write_model(dir / "out", 16);
  EXPECT_EQ(TempDir::list(dir / "out"),
            (std::vector<std::string>{"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                      "model-00003-of-00003.safetensors", "model.safetensors.index.json"}));
  const Model model = Model::open(dir / "out");
  ASSERT_EQ(model.files().size(), 3u);
  ASSERT_EQ(model.tensors().size(), 5u);
  EXPECT_EQ(model.total_bytes(), 48u);
  EXPECT_EQ(model.reader_of("c.bf16").path(), dir / "out/model-00002-of-00003.safetensors");
  EXPECT_EQ(model.reader_of("a.weight").read_f32("a.weight"), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  for (const auto& file : model.files()) EXPECT_TRUE(file.verify_checksum());
  const std::string index = slurp(dir / "out/model.safetensors.index.json");
  EXPECT_NE(index.find("\"total_size\": 48"), std::string::npos) << index;

  // Without a size limit: one model.safetensors and no index.
  sample_writer().write_model(dir / "single");
  EXPECT_EQ(TempDir::list(dir / "single"), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(Model::open(dir / "single").tensors().size(), 5u);
  EXPECT_EQ(Model::open(dir / "single/model.safetensors").tensors().size(), 5u);
}

// Runs the independent Python implementation; skips when no interpreter was found.
std::string run_fixture(const std::string& args) {
  const std::string python = SEPTA_PYTHON;
  if (python.empty() || python.find("NOTFOUND") != std::string::npos) return "";
  const std::string command = python + " " + SEPTA_FIXTURE_SCRIPT + " " + args;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return "";
  std::string out;
  char buffer[4096];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  EXPECT_EQ(::pclose(pipe), 0) << command;
  return out;
}

TEST(Safetensors, ReadsFilesOfAnIndependentWriter) {
  TempDir dir;
  run_fixture("write " + dir.path());
  if (TempDir::list(dir.path()).empty()) GTEST_SKIP() << "no python3 for the fixture";
  const Reader r = Reader::open(dir / "foreign.safetensors");
  EXPECT_EQ(r.tensors().size(), 5u);
  const std::vector<float> embed = r.read_f32("embed.weight");
  EXPECT_EQ(embed, (std::vector<float>{0.5f, -1.25f, 3.0f, 1e-3f, -7.5f, 100.0f}));
  EXPECT_EQ(r.read_f32("layer.0.bias"), (std::vector<float>{1.0f, -2.0f, 0.0999755859375f, 65504.0f}));
  EXPECT_EQ(r.read_f32("layer.0.w"), (std::vector<float>{1.0f, -0.5f, 3.140625f, -1024.0f}));
  EXPECT_EQ(r.tensor("empty").shape, (std::vector<std::int64_t>{0, 3}));
  std::int64_t step;
  std::memcpy(&step, r.data(r.tensor("step")), 8);
  EXPECT_EQ(step, 42);
  EXPECT_EQ(r.metadata().at("note"), "caf\xC3\xA9 \"q\"");
  EXPECT_FALSE(r.verify_checksum());  // foreign files carry none, and load all the same

  const Model sharded = Model::open(dir / "sharded");
  EXPECT_EQ(sharded.files().size(), 2u);
  EXPECT_EQ(sharded.reader_of("layer.0.w").read_f32("layer.0.w"), r.read_f32("layer.0.w"));
  EXPECT_EQ(sharded.reader_of("embed.weight").path(), dir / "sharded/model-00001-of-00002.safetensors");
}

TEST(Safetensors, IndependentReaderReadsOurFiles) {
  TempDir dir;
  sample_writer().write(dir / "m.safetensors");
  const std::string dump = run_fixture("dump " + (dir / "m.safetensors"));
  if (dump.empty()) GTEST_SKIP() << "no python3 for the fixture";
  EXPECT_NE(dump.find("\"a.weight\": [\"F32\", [2, 3], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]"), std::string::npos) << dump;
  EXPECT_NE(dump.find("\"b.half\": [\"F16\", [4], [0.5, -1.0, 2.25, 10000.0]]"), std::string::npos) << dump;
  EXPECT_NE(dump.find("\"c.bf16\": [\"BF16\", [2, 2], [0.5, -1.0, 2.25, 9984.0]]"), std::string::npos) << dump;
  EXPECT_NE(dump.find("\"step\": [\"I64\", [], [12345]]"), std::string::npos) << dump;
  EXPECT_NE(dump.find("\"septa.checksum\": \"crc32:"), std::string::npos) << dump;
}

TEST(Safetensors, ChecksumDetectsCorruption) {
  TempDir dir;
  sample_writer().write(dir / "m.safetensors");
  std::string bytes = slurp(dir / "m.safetensors");
  bytes[bytes.size() - 9] ^= 0x01;  // a bit of the data section
  const Reader r = Reader::from_bytes(bytes, "flipped.safetensors");
  try {
    r.verify_checksum();
    FAIL() << "corruption not detected";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("flipped.safetensors: checksum mismatch"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, TruncatedFileOnDisk) {
  TempDir dir;
  sample_writer().write(dir / "m.safetensors");
  const std::string bytes = slurp(dir / "m.safetensors");
  spit(dir / "cut.safetensors", bytes.substr(0, bytes.size() - 3));
  try {
    Reader::open(dir / "cut.safetensors");
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.safetensors: truncated: tensor 'step'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Reader::open(dir / "missing.safetensors"), IoError);
  EXPECT_THROW(Model::open(dir.path()), IoError);  // no model.safetensors, no index
}

TEST(Safetensors, UncommittedWriterLeavesNothing) {
  TempDir dir;
  {
    FileWriter w(dir / "x.safetensors", {{"t", Dtype::kF32, {2}}}, {});
    const float v[2] = {1, 2};
    w.write_next(v, 8);
  }
  EXPECT_TRUE(TempDir::list(dir.path()).empty());
  {
    ModelWriter m(dir / "out", {{"t", Dtype::kF32, {2}}, {"u", Dtype::kF32, {2}}}, {}, 8);
    const float v[2] = {1, 2};
    m.write_next(v, 8);
  }
  EXPECT_TRUE(TempDir::list(dir / "out").empty());
  FileWriter w(dir / "y.safetensors", {{"t", Dtype::kF32, {2}}}, {});
  EXPECT_THROW(w.write_next("abc", 3), InternalError);  // wrong size
  EXPECT_THROW(w.commit(), InternalError);              // tensor not written
}

// A header around `json` with `data` bytes after it (header length as given, or the real one).
std::string file_with(const std::string& json, const std::string& data, std::int64_t length = -1) {
  std::string text = json;
  const std::uint64_t n = length >= 0 ? static_cast<std::uint64_t>(length) : text.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + text + data;
}

void expect_rejected(const std::string& bytes, const std::string& what) {
  try {
    Reader::from_bytes(bytes, "bad.safetensors");
    FAIL() << "accepted; expected: " << what;
  } catch (const ModelError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("bad.safetensors: ", 0), 0u) << message;
    EXPECT_NE(message.find(what), std::string::npos) << message;
  }
}

TEST(Safetensors, RejectsMalformedFiles) {
  const std::string eight(8, 'x');
  const std::string t = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_NO_THROW(Reader::from_bytes(file_with(t, eight)));
  expect_rejected("abc", "shorter than the 8-byte header length");
  expect_rejected(file_with(t, eight, 1'000'000'000), "exceeds the limit");
  expect_rejected(file_with(t, eight, 500), "truncated: header length 500");
  expect_rejected(file_with("[1, 2]", ""), "not a JSON object");
  expect_rejected(file_with("{\"t\":", ""), "header byte");
  expect_rejected(file_with(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"t":{}})", eight), "duplicate key \"t\"");
  expect_rejected(file_with(R"({"t":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", eight), "tensor 't': unknown dtype 'F33'");
  expect_rejected(file_with(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight),
                  "tensor 't': F32 shape [3] needs 12 bytes, data_offsets [0, 8] hold 8");
  expect_rejected(file_with(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight), "non-negative integers, found -2");
  expect_rejected(file_with(R"({"t":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", eight), "non-negative integers");
  expect_rejected(file_with(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", eight),
                  "more than 2^64");
  expect_rejected(file_with(R"({"t":{"dtype":"F32","shape":[2]}})", eight), "tensor 't': missing data_offsets");
  expect_rejected(file_with(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", eight), "unknown field 'x'");
  expect_rejected(file_with(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", eight), "end before they begin");
  expect_rejected(file_with(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", eight), "data_offsets must be [begin, end]");
  expect_rejected(file_with(R"({"t":[1]})", eight), "tensor 't': expected an object");
  expect_rejected(file_with(R"({"__metadata__":{"k":1},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", eight),
                  "__metadata__ 'k': expected a string");
  const std::string two = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  expect_rejected(file_with(two, std::string(12, 'x')), "tensor 'b': data_offsets [4, 12] overlap the previous tensor");
  const std::string hole = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  expect_rejected(file_with(hole, std::string(12, 'x')), "tensor 'b': data_offsets begin at 8, leaving a hole after byte 4");
  expect_rejected(file_with(t, std::string(6, 'x')), "truncated: tensor 't' ends at data byte 8 but the data section holds 6");
  expect_rejected(file_with(t, std::string(10, 'x')), "2 bytes after the last tensor's data");
}

// Random byte flips and truncations of a valid file: each either loads (and then every tensor's
// bytes are readable) or throws ModelError; nothing else (no crash, no other exception).
TEST(Safetensors, MutatedFilesLoadOrThrowModelError) {
  TempDir dir;
  sample_writer().write(dir / "m.safetensors");
  const std::string good = slurp(dir / "m.safetensors");
  std::mt19937 rng(5);
  int loaded = 0, rejected = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bytes = good;
    const int kind = trial % 3;
    if (kind == 0) {
      bytes.resize(rng() % bytes.size());
    } else {
      const std::size_t region = kind == 1 ? std::min<std::size_t>(bytes.size(), 300) : bytes.size();
      for (int flips = 1 + static_cast<int>(rng() % 4); flips > 0; --flips)
        bytes[rng() % region] = static_cast<char>(rng() % 2 ? rng() : "{}[]\",:0123456789 e-."[rng() % 22]);
    }
    try {
      const Reader r = Reader::from_bytes(bytes, "mutated");
      for (const TensorInfo& info : r.tensors()) {
        volatile unsigned char sink = 0;
        for (std::uint64_t i = 0; i < info.nbytes(); ++i) sink ^= r.data(info)[i];
        if (is_float(info.dtype) && info.numel() < 1000000) r.read_f32(info.name);
      }
      ++loaded;
    } catch (const ModelError&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 1000);
  EXPECT_GT(loaded, 10);  // flips inside tensor data keep the file valid
}

TEST(Safetensors, RejectsBadIndexes) {
  TempDir dir;
  sample_writer().write_model(dir / "out", 16);
  const std::string index = dir / "out/model.safetensors.index.json";
  const std::string good = slurp(index);
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    const auto pos = text.find(from);
    EXPECT_NE(pos, std::string::npos) << from;
    spit(index, text.replace(pos, from.size(), to));
  };
  auto expect_error = [&](const std::string& what) {
    try {
      Model::open(dir / "out");
      FAIL() << what;
    } catch (const ModelError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  replace("\"step\": \"model-00003-of-00003.safetensors\"", "\"step\": \"model-00001-of-00003.safetensors\"");
  expect_error("tensor 'step' is listed in model-00001-of-00003.safetensors, but found in");
  replace("\"step\": \"model-00003-of-00003.safetensors\",", "");
  expect_error("tensor 'step' of a shard is missing from weight_map");
  replace("\"step\": \"model-00003-of-00003.safetensors\"", "\"step\": \"../evil.safetensors\"");
  expect_error("must be a plain name inside the model directory");
  replace("\"weight_map\"", "\"weights\"");
  expect_error("no \"weight_map\" object");
  spit(index, good);
  ::unlink((dir / "out/model-00002-of-00003.safetensors").c_str());
  EXPECT_THROW(Model::open(dir / "out"), IoError);
}

}  // namespace
}  // namespace septa::safetensors
