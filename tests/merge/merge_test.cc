// septa merge end to end: files in, files out, through the library and the CLI.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "merge/methods.h"
#include "safetensors/safetensors.h"
#include "safetensors/temp_dir.h"
#include "septa/error.h"
#include "septa/merge.h"

namespace septa::merge {
namespace {

using safetensors::Dtype;
using safetensors::Model;
using safetensors::Reader;
using septa::testing::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// A small "model": tensors of random values around `center`, shapes fixed, one I64 buffer.
struct Layout {
  std::string name;
  std::vector<std::int64_t> shape;
};
const std::vector<Layout> kLayout = {{"embed.weight", {16, 8}}, {"layers.0.attn.weight", {8, 8}},
                                     {"layers.0.bias", {8}},     {"layers.1.mlp.weight", {32, 8}},
                                     {"norm.weight", {8}}};

std::map<std::string, std::vector<float>> random_tensors(unsigned seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::map<std::string, std::vector<float>> out;
  for (const auto& l : kLayout) {
    std::int64_t n = 1;
    for (auto d : l.shape) n *= d;
    auto& v = out[l.name];
    for (std::int64_t i = 0; i < n; ++i) v.push_back(normal(rng));
  }
  return out;
}

std::map<std::string, std::vector<float>> add(const std::map<std::string, std::vector<float>>& a,
                                              const std::map<std::string, std::vector<float>>& b) {
  auto out = a;
  for (auto& [name, v] : out)
    for (std::size_t i = 0; i < v.size(); ++i) v[i] += b.at(name)[i];
  return out;
}

void write_model(const std::string& path, const std::map<std::string, std::vector<float>>& tensors,
                 Dtype dtype = Dtype::kF32, std::uint64_t shard = 0, bool directory = false) {
  safetensors::Writer w;
  for (const auto& l : kLayout) w.add_f32(l.name, l.shape, tensors.at(l.name).data(), dtype);
  const std::int64_t ids[4] = {0, 1, 2, 3};
  w.add("position_ids", Dtype::kI64, {4}, ids, sizeof ids);
  if (directory) w.write_model(path, shard);
  else w.write(path);
}

std::vector<float> tensor_of(const std::string& model, const std::string& name) {
  const Model m = Model::open(model);
  return m.reader_of(name).read_f32(name);
}

std::string raw_of(const std::string& model, const std::string& name) {
  const Model m = Model::open(model);
  const Reader& r = m.reader_of(name);
  return std::string(reinterpret_cast<const char*>(r.data(r.tensor(name))), r.tensor(name).nbytes());
}

class MergeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = random_tensors(1, 1.0f);
    a_ = add(base_, random_tensors(2, 0.1f));
    b_ = add(base_, random_tensors(3, 0.1f));
    write_model(dir_ / "base.safetensors", base_);
    write_model(dir_ / "a.safetensors", a_);
    write_model(dir_ / "b", b_, Dtype::kF32, 600, /*directory=*/true);  // sharded input
  }
  MergeConfig config(Method method) const {
    MergeConfig c;
    c.method = method;
    c.base_model = dir_ / "base.safetensors";
    c.models = {{dir_ / "a.safetensors", 1.0, 0.5}, {dir_ / "b", 0.5, 0.3}};
    return c;
  }
  TempDir dir_;
  std::map<std::string, std::vector<float>> base_, a_, b_;
};

TEST_F(MergeTest, TiesMatchesTheDefinitionPerTensor) {
  MergeConfig c = config(Method::kTies);
  c.lambda = 0.8;
  const MergeResult result = run_merge(c, dir_ / "out");
  EXPECT_EQ(result.files, std::vector<std::string>{"model.safetensors"});
  for (const auto& l : kLayout) {
    std::vector<float> da = a_[l.name], db = b_[l.name];
    const std::vector<float>& base = base_[l.name];
    const std::size_t n = base.size();
    for (std::size_t i = 0; i < n; ++i) da[i] -= base[i], db[i] -= base[i];
    trim_to_top_k(da.data(), n, static_cast<std::size_t>(0.5 * n));
    trim_to_top_k(db.data(), n, static_cast<std::size_t>(0.3 * n));
    const std::vector<float> got = tensor_of(dir_ / "out", l.name);
    for (std::size_t i = 0; i < n; ++i) {
      // By hand: weights 1 and 0.5, elected sign, agreeing entries, divided by their weights.
      const double wa = 1.0 * da[i], wb = 0.5 * db[i];
      const int sign = wa + wb >= 0 ? 1 : -1;
      double mixed = 0, divisor = 0;
      if ((wa > 0 && sign > 0) || (wa < 0 && sign < 0)) mixed += wa, divisor += 1.0;
      if ((wb > 0 && sign > 0) || (wb < 0 && sign < 0)) mixed += wb, divisor += 0.5;
      if (divisor == 0) divisor = 1;
      ASSERT_NEAR(got[i], base[i] + 0.8 * mixed / divisor, 1e-5) << l.name << "[" << i << "]";
    }
  }
  EXPECT_EQ(raw_of(dir_ / "out", "position_ids"), raw_of(dir_ / "base.safetensors", "position_ids"));
  EXPECT_TRUE(Reader::open(dir_ / "out/model.safetensors").verify_checksum());
}

TEST_F(MergeTest, MergingAModelWithItselfReturnsIt) {
  // The base listed among the models contributes no task vector (as in mergekit): use a copy.
  write_model(dir_ / "a_copy.safetensors", a_);
  for (const Method m : {Method::kLinear, Method::kTies, Method::kTaskArithmetic, Method::kDareTies, Method::kSlerp}) {
    MergeConfig c;
    c.method = m;
    c.base_model = dir_ / "a.safetensors";
    c.models = {{dir_ / "a.safetensors", 1.0, 0.5}, {dir_ / "a_copy.safetensors", 1.0, 0.5}};
    if (m == Method::kSlerp) c.t = 0.3;
    const std::string out = dir_ / (std::string("self_") + method_name(m));
    run_merge(c, out);
    for (const auto& l : kLayout) EXPECT_EQ(tensor_of(out, l.name), a_[l.name]) << method_name(m) << " " << l.name;
  }
}

TEST_F(MergeTest, LambdaZeroReturnsTheBase) {
  for (const Method m : {Method::kTaskArithmetic, Method::kTies, Method::kDareLinear, Method::kDareTies}) {
    MergeConfig c = config(m);
    c.lambda = 0.0;
    const std::string out = dir_ / (std::string("zero_") + method_name(m));
    run_merge(c, out);
    for (const auto& l : kLayout) EXPECT_EQ(raw_of(out, l.name), raw_of(dir_ / "base.safetensors", l.name)) << method_name(m);
  }
}

TEST_F(MergeTest, OutputIsByteIdenticalForAnyThreadCountAndSharded) {
  MergeConfig c = config(Method::kDareTies);
  c.seed = 1234;
  c.dtype = "bfloat16";
  std::string first;
  for (const int threads : {1, 2, 3, 5}) {
    c.threads = threads;
    const std::string out = dir_ / ("t" + std::to_string(threads));
    run_merge(c, out);
    const std::string bytes = slurp(out + "/model.safetensors");
    if (first.empty()) first = bytes;
    EXPECT_EQ(bytes, first) << threads << " threads";
  }
  c.seed = 1235;
  run_merge(c, dir_ / "other_seed");
  EXPECT_NE(slurp(dir_ / "other_seed/model.safetensors"), first);
  // Sharded output holds the same tensors, the index last.
  c.seed = 1234;
  c.out_shard_size = 300;
  c.threads = 2;
  const MergeResult result = run_merge(c, dir_ / "sharded");
  ASSERT_GT(result.files.size(), 2u);
  EXPECT_EQ(result.files.back(), "model.safetensors.index.json");
  EXPECT_EQ(TempDir::list(dir_ / "sharded"), [&] { auto f = result.files; std::sort(f.begin(), f.end()); return f; }());
  for (const auto& l : kLayout) EXPECT_EQ(raw_of(dir_ / "sharded", l.name), raw_of(dir_ / "t1", l.name));
  EXPECT_EQ(Model::open(dir_ / "sharded").tensor(kLayout[0].name).dtype, Dtype::kBF16);
  // Merging again into the same directory as one file removes the old shards and index.
  c.out_shard_size = 0;
  run_merge(c, dir_ / "sharded");
  EXPECT_EQ(TempDir::list(dir_ / "sharded"), std::vector<std::string>{"model.safetensors"});
}

TEST_F(MergeTest, DryRunPrintsThePlanAndWritesNothing) {
  const MergeResult result = run_merge(config(Method::kTies), dir_ / "dry", /*dry_run=*/true);
  EXPECT_FALSE(exists(dir_ / "dry"));
  EXPECT_NE(result.plan.find("merge_method: ties"), std::string::npos) << result.plan;
  EXPECT_NE(result.plan.find("weight 0.5  density 0.3"), std::string::npos) << result.plan;
  EXPECT_NE(result.plan.find("layers.1.mlp.weight [32, 8] F32->F32 ties keep 128 76 of 256  weights 1 0.5  densities 0.5 0.3"),
            std::string::npos)
      << result.plan;
  EXPECT_NE(result.plan.find("position_ids [4] I64->I64 copy"), std::string::npos) << result.plan;
}

TEST_F(MergeTest, CancelledMidStreamLeavesNothing) {
  MergeConfig c = config(Method::kTies);
  c.out_shard_size = 300;  // several shards, some complete when the merge stops
  c.threads = 2;
  std::size_t calls = 0;
  EXPECT_THROW(run_merge(c, dir_ / "stopped", false, [&](const MergeProgress& p) {
                 EXPECT_EQ(p.tensors_total, kLayout.size() + 1);
                 return ++calls < 3;
               }),
               Cancelled);
  EXPECT_FALSE(exists(dir_ / "stopped"));
  // Into an existing directory: its other files stay, no merge output appears.
  ::mkdir((dir_ / "existing").c_str(), 0755);
  spit(dir_ / "existing/notes.txt", "keep me");
  calls = 0;
  EXPECT_THROW(run_merge(c, dir_ / "existing", false, [&](const MergeProgress&) { return ++calls < 3; }), Cancelled);
  EXPECT_EQ(TempDir::list(dir_ / "existing"), std::vector<std::string>{"notes.txt"});
}

// LoRA: a PEFT adapter directory with A [r][in], B [out][r], alpha.
void write_adapter(const std::string& dir, const std::string& target, const std::vector<float>& a,
                   const std::vector<float>& b, std::int64_t r, std::int64_t in, std::int64_t out, double alpha) {
  ::mkdir(dir.c_str(), 0755);
  safetensors::Writer w;
  const std::string module = "base_model.model." + target.substr(0, target.size() - 7);  // drop ".weight"
  w.add_f32(module + ".lora_A.weight", {r, in}, a.data());
  w.add_f32(module + ".lora_B.weight", {out, r}, b.data());
  w.write(dir + "/adapter_model.safetensors");
  std::ofstream(dir + "/adapter_config.json") << "{\"peft_type\": \"LORA\", \"r\": " << r
                                             << ", \"lora_alpha\": " << alpha << ", \"target_modules\": [\"attn\"]}";
}

TEST_F(MergeTest, LoraMergeEqualsBasePlusAdapterForward) {
  const std::string target = "layers.0.attn.weight";  // [8][8]
  const std::int64_t r = 2, in = 8, out = 8;
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<float> a(r * in), b(out * r), x(in);
  for (auto& v : a) v = normal(rng);
  for (auto& v : b) v = normal(rng);
  for (auto& v : x) v = normal(rng);
  write_adapter(dir_ / "lora", target, a, b, r, in, out, /*alpha=*/16.0);
  // task_arithmetic with one model BASE+ADAPTER, weight 1: the base with the adapter merged in.
  MergeConfig c;
  c.method = Method::kTaskArithmetic;
  c.base_model = dir_ / "base.safetensors";
  c.models = {{dir_ / "base.safetensors+" + dir_ / "lora", 1.0, {}}};
  run_merge(c, dir_ / "merged");
  const std::vector<float> merged = tensor_of(dir_ / "merged", target);
  const std::vector<float>& w = base_[target];
  const double scale = 16.0 / r;
  for (std::int64_t o = 0; o < out; ++o) {
    // The adapter's forward pass: y = W x + scale * B (A x).
    double y = 0, ax[2] = {0, 0}, merged_y = 0;
    for (std::int64_t i = 0; i < in; ++i) y += w[o * in + i] * x[i], merged_y += merged[o * in + i] * x[i];
    for (std::int64_t k = 0; k < r; ++k)
      for (std::int64_t i = 0; i < in; ++i) ax[k] += a[k * in + i] * x[i];
    for (std::int64_t k = 0; k < r; ++k) y += scale * b[o * r + k] * ax[k];
    EXPECT_NEAR(merged_y, y, 1e-4 * (1 + std::fabs(y))) << "row " << o;
  }
  EXPECT_EQ(tensor_of(dir_ / "merged", "norm.weight"), base_["norm.weight"]);  // not adapted

  // Two adapters trained separately against one base, merged with TIES (density 1, equal
  // weights): entries where the two deltas agree in sign get their average, others the
  // elected one's.
  std::vector<float> a2(r * in), b2(out * r);
  for (auto& v : a2) v = normal(rng);
  for (auto& v : b2) v = normal(rng);
  write_adapter(dir_ / "lora2", target, a2, b2, r, in, out, 16.0);
  c.method = Method::kTies;
  c.models = {{dir_ / "base.safetensors+" + dir_ / "lora", 1.0, 1.0}, {dir_ / "base.safetensors+" + dir_ / "lora2", 1.0, 1.0}};
  run_merge(c, dir_ / "two");
  const std::vector<float> two = tensor_of(dir_ / "two", target);
  for (std::int64_t o = 0; o < out; ++o)
    for (std::int64_t i = 0; i < in; ++i) {
      double d1 = 0, d2 = 0;
      for (std::int64_t k = 0; k < r; ++k) d1 += scale * b[o * r + k] * a[k * in + i], d2 += scale * b2[o * r + k] * a2[k * in + i];
      const int sign = d1 + d2 >= 0 ? 1 : -1;
      double mixed = 0, divisor = 0;
      for (const double d : {d1, d2})
        if (d * sign > 0) mixed += d, divisor += 1;
      EXPECT_NEAR(two[o * in + i], w[o * in + i] + mixed / std::max(divisor, 1.0), 1e-4);
    }
}

// --- errors: through the CLI, exit 1, the message names file, tensor, expected and found ---

struct CliResult {
  int status;
  std::string output;
};

CliResult run_cli(const std::string& args) {
  const std::string command = std::string(SEPTA_CLI_PATH) + " merge " + args + " --quiet 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string out;
  char buffer[4096];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class MergeErrors : public MergeTest {
 protected:
  void expect_error(const std::string& args, int status, const std::vector<std::string>& parts) {
    const CliResult r = run_cli(args + " " + (dir_ / "out"));
    EXPECT_EQ(r.status, status) << r.output;
    for (const auto& part : parts) EXPECT_NE(r.output.find(part), std::string::npos) << "missing '" << part << "' in: " << r.output;
    EXPECT_FALSE(exists(dir_ / "out")) << "output written despite: " << r.output;
  }
  std::string ties(const std::string& other) const {
    return "--method ties --base-model " + (dir_ / "base.safetensors") + " --model " + (dir_ / "a.safetensors") +
           " --weight 1 --density 0.5 --model " + other + " --weight 1 --density 0.5";
  }
};

TEST_F(MergeErrors, MissingTensor) {
  safetensors::Writer w;
  for (const auto& l : kLayout)
    if (l.name != "norm.weight") w.add_f32(l.name, l.shape, a_[l.name].data());
  const std::int64_t ids[4] = {0, 1, 2, 3};
  w.add("position_ids", Dtype::kI64, {4}, ids, sizeof ids);
  w.write(dir_ / "missing.safetensors");
  expect_error(ties(dir_ / "missing.safetensors"), 1,
               {"missing.safetensors: tensor 'norm.weight' is missing (present in ", "base.safetensors)"});
}

TEST_F(MergeErrors, ShapeMismatch) {
  auto t = a_;
  safetensors::Writer w;
  for (const auto& l : kLayout) {
    auto shape = l.shape;
    if (l.name == "layers.0.bias") shape = {2, 4};
    w.add_f32(l.name, shape, t[l.name].data());
  }
  const std::int64_t ids[4] = {0, 1, 2, 3};
  w.add("position_ids", Dtype::kI64, {4}, ids, sizeof ids);
  w.write(dir_ / "shape.safetensors");
  expect_error(ties(dir_ / "shape.safetensors"), 1,
               {"shape.safetensors: tensor 'layers.0.bias': shape [2, 4], expected [8] as in ", "base.safetensors"});
}

TEST_F(MergeErrors, DtypeMismatch) {
  write_model(dir_ / "half.safetensors", a_, Dtype::kF16);
  expect_error(ties(dir_ / "half.safetensors"), 1,
               {"half.safetensors: tensor 'embed.weight': dtype F16, expected F32 as in ", "base.safetensors"});
}

TEST_F(MergeErrors, CorruptHeader) {
  std::string bytes = slurp(dir_ / "a.safetensors");
  bytes[bytes.find("\"dtype\"") + 7] = ';';  // the ':' after a key
  spit(dir_ / "corrupt.safetensors", bytes);
  expect_error(ties(dir_ / "corrupt.safetensors"), 1, {"corrupt.safetensors: header byte"});
}

TEST_F(MergeErrors, TruncatedFile) {
  const std::string bytes = slurp(dir_ / "a.safetensors");
  spit(dir_ / "cut.safetensors", bytes.substr(0, bytes.size() - 100));
  expect_error(ties(dir_ / "cut.safetensors"), 1, {"cut.safetensors: truncated: tensor '"});
}

TEST_F(MergeErrors, ExtraTensorInAModel) {
  safetensors::Writer w;
  for (const auto& l : kLayout) w.add_f32(l.name, l.shape, a_[l.name].data());
  const std::int64_t ids[4] = {0, 1, 2, 3};
  w.add("position_ids", Dtype::kI64, {4}, ids, sizeof ids);
  w.add_f32("extra.weight", {2}, a_["norm.weight"].data());
  w.write(dir_ / "extra.safetensors");
  expect_error(ties(dir_ / "extra.safetensors"), 1, {"extra.safetensors: tensor 'extra.weight' is not in the base model"});
}

TEST_F(MergeErrors, BadConfigsAndOptions) {
  std::ofstream(dir_ / "bad.yml") << "merge_method: ties\nbase_model: x\nmodels:\n  - model: y\n    parameters: {wieght: 1}\n";
  expect_error(dir_ / "bad.yml", 1, {"bad.yml:5: unknown key 'wieght' in models[].parameters"});
  std::ofstream(dir_ / "syntax.yml") << "merge_method: ties\nmodels: [\n";
  expect_error(dir_ / "syntax.yml", 1, {"syntax.yml:", "invalid YAML"});
  std::ofstream(dir_ / "slices.yml") << "merge_method: ties\nslices: []\nmodels: []\n";
  expect_error(dir_ / "slices.yml", 1, {"slices.yml:2: 'slices' is not supported"});
  expect_error("--method tie --model " + (dir_ / "a.safetensors"), 2, {"merge_method 'tie' is not one of"});
  expect_error(ties(dir_ / "b") + " --threads -1", 2, {"option --threads"});
  expect_error("--method ties --model " + (dir_ / "a.safetensors") + " --weight 1", 2, {"ties needs base_model"});
  expect_error("--method ties --base-model " + (dir_ / "base.safetensors") + " --model " + (dir_ / "a.safetensors"), 2,
               {"models[0] (", "parameter 'weight' is required by ties"});
  expect_error(ties(dir_ / "b") + " --out-shard-size 5XB", 2, {"--out-shard-size '5XB' is not a size"});
  expect_error(ties(dir_ / "nonexistent.safetensors"), 1, {"nonexistent.safetensors: cannot open"});
  expect_error("--method ties --base-model " + (dir_ / "base.safetensors") + " --model " + (dir_ / "a.safetensors") +
                   " --weight 1 --density 0.1", 2, {"keeps int(density * 8) = 0 entries of tensor 'layers.0.bias'"});
  // mergekit's slerp requires t.
  expect_error("--method slerp --base-model " + (dir_ / "base.safetensors") + " --model " + (dir_ / "a.safetensors"), 2,
               {"slerp needs parameter 't'"});
}

TEST_F(MergeErrors, ConfigFileRunsLikeFlags) {
  std::ofstream(dir_ / "ok.yml") << "merge_method: ties\nbase_model: " << (dir_ / "base.safetensors")
                                 << "\nmodels:\n  - model: " << (dir_ / "a.safetensors")
                                 << "\n    parameters:\n      weight: 1.0\n      density: 0.5\n  - model: " << (dir_ / "b")
                                 << "\n    parameters: {weight: 1, density: 0.5}\nparameters:\n  lambda: 0.9\ndtype: float16\n";
  const CliResult a = run_cli((dir_ / "ok.yml") + " " + (dir_ / "from_yaml"));
  ASSERT_EQ(a.status, 0) << a.output;
  const CliResult b = run_cli(ties(dir_ / "b") + " --lambda 0.9 --dtype float16 " + (dir_ / "from_flags"));
  ASSERT_EQ(b.status, 0) << b.output;
  EXPECT_EQ(slurp(dir_ / "from_yaml/model.safetensors"), slurp(dir_ / "from_flags/model.safetensors"));
  const CliResult dry = run_cli((dir_ / "ok.yml") + " " + (dir_ / "dry") + " --dry-run");
  EXPECT_EQ(dry.status, 0);
  EXPECT_NE(dry.output.find("lambda: 0.9"), std::string::npos) << dry.output;
  EXPECT_FALSE(exists(dir_ / "dry"));
}

}  // namespace
}  // namespace septa::merge
