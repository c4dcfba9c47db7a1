// Checkpoints: bit-identical round trips of tensors, modules, optimiser state and metadata;
// truncated, corrupted, foreign and other-method files rejected with ModelError.
#include "nn/checkpoint.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "nn/loop.h"
#include "nn/methods/uff/cell.h"
#include "nn/methods/uff/uff.h"
#include "safetensors/safetensors.h"
#include "septa/error.h"
#include "nn/test_util.h"

namespace septa::nn {
namespace {

Metadata metadata_of(const std::string& method) {
  return {{kMethodKey, method}, {kOptionsKey, "seed=1"}, {kSeedKey, "1"}};
}

CellSpec dense_spec(int64_t width) {
  CellSpec spec;
  spec.input_shape = {12};
  spec.width = width;
  return spec;
}

std::string load_error(const std::string& path, const std::string& method = "") {
  try {
    load_cell(path, method);
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::setup_torch();
    dir_ = testing::temp_dir("checkpoint");
  }
  std::string dir_;
};

TEST_F(CheckpointTest, TensorsAndMetadataRoundTripBitForBit) {
  const torch::Tensor f32 = torch::randn({3, 4});
  const torch::Tensor f64 = torch::randn({5}, torch::kFloat64);
  const torch::Tensor i64 = torch::tensor({int64_t{-3}, int64_t{1} << 40}, torch::kInt64);
  const torch::Tensor u8 = torch::randint(0, 256, {7}, torch::kUInt8);
  CheckpointWriter writer;
  writer.add("a", f32);
  writer.add("b", f64);
  writer.add("c", i64);
  writer.add("d", u8);
  writer.set(kKindKey, "test");
  writer.set("note", "x=1;y=\"2\"\n");
  writer.write(dir_ + "/t.safetensors");
  const Checkpoint file = Checkpoint::open(dir_ + "/t.safetensors", "test");
  EXPECT_TRUE(torch::equal(file.tensor("a", torch::kFloat32, {3, 4}), f32));
  EXPECT_TRUE(torch::equal(file.tensor("b", torch::kFloat64, {5}), f64));
  EXPECT_TRUE(torch::equal(file.tensor("c", torch::kInt64, {2}), i64));
  EXPECT_TRUE(torch::equal(file.tensor("d", torch::kUInt8, {7}), u8));
  EXPECT_EQ(file.get("note"), "x=1;y=\"2\"\n");
  EXPECT_EQ(file.get(kFormatKey), "1");
  EXPECT_THROW(file.tensor("a", torch::kFloat32, {4, 3}), ModelError);
  EXPECT_THROW(file.tensor("a", torch::kFloat64, {3, 4}), ModelError);
  EXPECT_THROW(file.tensor("z", torch::kFloat32, {1}), ModelError);
  EXPECT_THROW(Checkpoint::open(dir_ + "/t.safetensors", "cell"), ModelError);
}

TEST_F(CheckpointTest, CellsRoundTripWithSpecAndMethod) {
  Cell cell = make_cell(dense_spec(5));
  cell->train_step(torch::rand({4, 12}));
  save_cell(cell, dir_ + "/c.safetensors", metadata_of("uff-ae"));
  Cell loaded = load_cell(dir_ + "/c.safetensors", "uff-ae");
  EXPECT_TRUE(same_weights(*loaded, *cell));
  EXPECT_EQ(loaded->spec_.width, 5);
  EXPECT_EQ(loaded->spec_.input_shape, (std::vector<int64_t>{12}));
  EXPECT_EQ(loaded->spec_.learning_rate, cell->spec_.learning_rate);
  // Issue 15 finding 2: a cell of another method is rejected.
  EXPECT_NE(load_error(dir_ + "/c.safetensors", "uff-dae").find("written by method uff-ae, not uff-dae"),
            std::string::npos);
}

// Issue 15 finding 2: every single-bit flip in the data and every truncation is rejected.
TEST_F(CheckpointTest, EveryBitFlipOfTheDataAndEveryTruncationIsRejected) {
  Cell cell = make_cell(dense_spec(2));
  const std::string path = dir_ + "/c.safetensors";
  save_cell(cell, path, metadata_of("uff-ae"));
  const std::string bytes = testing::read_file(path);
  const safetensors::Reader reader = safetensors::Reader::open(path);
  const size_t data_start = reader.header_bytes();
  ASSERT_LT(data_start, bytes.size());
  int rejected = 0, trials = 0;
  for (size_t i = data_start; i < bytes.size(); i += 3) {
    std::string flipped = bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ (1 << (i % 8)));
    testing::write_file(dir_ + "/f.safetensors", flipped);
    ++trials;
    if (!load_error(dir_ + "/f.safetensors").empty()) ++rejected;
  }
  EXPECT_EQ(rejected, trials);
  for (size_t size : {size_t{0}, size_t{7}, data_start - 1, data_start, bytes.size() - 1}) {
    testing::write_file(dir_ + "/t.safetensors", bytes.substr(0, size));
    EXPECT_FALSE(load_error(dir_ + "/t.safetensors").empty()) << size;
  }
  testing::write_file(dir_ + "/junk.safetensors", "not a checkpoint at all");
  EXPECT_FALSE(load_error(dir_ + "/junk.safetensors").empty());
  EXPECT_THROW(load_cell(dir_ + "/absent.safetensors"), IoError);
}

TEST_F(CheckpointTest, AHeadIsNotACellAndACellIsNotAHead) {
  Head head(HeadOptions{4, 0, 10});
  save_head(head, dir_ + "/head.safetensors", metadata_of("uff-ae"));
  EXPECT_NE(load_error(dir_ + "/head.safetensors").find("a head file where a cell file was expected"),
            std::string::npos);
  Cell cell = make_cell(dense_spec(3));
  save_cell(cell, dir_ + "/c.safetensors", metadata_of("uff-ae"));
  EXPECT_THROW(load_head(dir_ + "/c.safetensors"), ModelError);
  Head again = load_head(dir_ + "/head.safetensors", "uff-ae");
  EXPECT_TRUE(same_weights(*again, *head));
  EXPECT_THROW(save_cell(cell, dir_ + "/no/such/dir/c.safetensors", metadata_of("uff-ae")), IoError);
}

// A well-formed file (checksums intact) whose metadata holds a corrupt value is rejected with
// ModelError naming the file and the key, never std::invalid_argument or a silently cut number.
TEST_F(CheckpointTest, CorruptMetadataValuesAreModelErrorsNamingFileAndKey) {
  const std::string head_path = dir_ + "/head.safetensors";
  Head head(HeadOptions{4, 0, 10});
  for (const std::string hidden : {"8x", "", "abc", "99999999999999999999", "-1", " 8"}) {
    CheckpointWriter writer;
    for (const auto& [key, value] : metadata_of("uff-ae")) writer.set(key, value);
    writer.set(kKindKey, "head");
    writer.set("septa.nn.head.in_features", "4");
    writer.set("septa.nn.head.hidden", hidden);
    writer.set("septa.nn.head.classes", "10");
    writer.add_module("", *head);
    writer.write(head_path);
    try {
      load_head(head_path, "uff-ae");
      ADD_FAILURE() << "accepted hidden '" << hidden << "'";
    } catch (const ModelError& e) {
      EXPECT_NE(std::string(e.what()).find(head_path + ": metadata septa.nn.head.hidden"),
                std::string::npos) << e.what();
    }
  }

  // A cell whose stored input shape is not a comma-separated list of positive integers.
  const std::string cell_path = dir_ + "/cell.safetensors";
  Cell good = make_cell(dense_spec(3));
  save_cell(good, cell_path, metadata_of("uff-ae"));
  for (const std::string shape : {"12x", "12,", "", "0", "x", "1,2,3,4", "12, 3", "+"}) {
    const safetensors::Reader reader = safetensors::Reader::open(cell_path);
    CheckpointWriter writer;
    for (const auto& [key, value] : reader.metadata())
      if (key.find("checksum") == std::string::npos) writer.set(key, value);  // the writer's own
    writer.set("septa.nn.cell.input_shape", shape);
    writer.add_module("", *good);
    writer.write(dir_ + "/bad_cell.safetensors");
    try {
      load_cell(dir_ + "/bad_cell.safetensors", "uff-ae");
      ADD_FAILURE() << "accepted input shape '" << shape << "'";
    } catch (const ModelError& e) {
      EXPECT_NE(std::string(e.what()).find("septa.nn.cell.input_shape"), std::string::npos) << e.what();
    }
  }

  // A saved training state (what `--resume` reads) with a corrupt epoch or metrics value.
  Stage stage;
  stage.name = "s";
  stage.epochs = 3;
  stage.examples = 4;
  stage.generator = seeded_build(1, [] {});
  stage.step = [](const torch::Tensor&) { return std::vector<double>{0.0}; };
  RunContext ctx;
  ctx.state_dir = dir_;
  ctx.resume = true;
  ctx.metadata = metadata_of("ff");
  const std::string state = state_path(dir_, "s");
  auto write_state = [&](const std::string& epoch, const std::string& metrics) {
    CheckpointWriter writer;
    for (const auto& [key, value] : ctx.metadata) writer.set(key, value);
    writer.set(kKindKey, "state");
    writer.set("septa.nn.stage", "s");
    writer.set("septa.nn.epoch", epoch);
    writer.set("septa.nn.metrics", metrics);
    writer.add("generator", stage.generator.get_state());
    writer.write(state);
  };
  auto resume_error = [&](const std::string& epoch, const std::string& metrics) {
    write_state(epoch, metrics);
    try {
      run_stage(stage, ctx);
    } catch (const ModelError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  for (const std::string epoch : {"2x", "x", "", "99999999999", "0", "4"})
    EXPECT_NE(resume_error(epoch, "loss=0.5;").find(state + ": metadata septa.nn.epoch '" + epoch + "'"),
              std::string::npos) << epoch;
  for (const std::string metrics : {"loss=abc;", "loss=0.5x;", "loss=;", "loss;"})
    EXPECT_NE(resume_error("2", metrics).find(state + ": metadata septa.nn.metrics"), std::string::npos)
        << metrics;
  EXPECT_EQ(resume_error("2", "loss=0.5;"), "");  // the same file, well formed, resumes
  // A completed state restores its metrics; a name may hold '=' (scala's "test accuracy r=0.25").
  write_state("3", "loss=0.5;test accuracy r=0.25=0.75;");
  const StageOutcome outcome = run_stage(stage, ctx);
  EXPECT_EQ(outcome.metrics, (Metrics{{"loss", 0.5}, {"test accuracy r=0.25", 0.75}}));
}

// Readable by other safetensors readers: an independent Python implementation (struct + json,
// tests/safetensors/make_fixture.py) lists the cell's tensors with their dtypes and shapes.
TEST_F(CheckpointTest, AnIndependentPythonReaderReadsACell) {
  const char* source = SEPTA_SOURCE_DIR;
  Cell cell = make_cell(dense_spec(5));
  save_cell(cell, dir_ + "/c.safetensors", metadata_of("uff-ae"));
  const std::string command = std::string("python3 ") + source +
                              "/tests/safetensors/make_fixture.py dump " + dir_ +
                              "/c.safetensors > " + dir_ + "/dump.json";
  ASSERT_EQ(std::system(command.c_str()), 0);
  const std::string dump = testing::read_file(dir_ + "/dump.json");
  EXPECT_NE(dump.find("\"encoder.weight\": [\"F32\", [5, 12]"), std::string::npos) << dump;
  EXPECT_NE(dump.find("\"decoder.bias\": [\"F32\", [12]"), std::string::npos) << dump;
}

TEST_F(CheckpointTest, AdamStateRoundTrips) {
  Cell cell = make_cell(dense_spec(3));
  cell->train_step(torch::rand({4, 12}));
  cell->train_step(torch::rand({4, 12}));
  CheckpointWriter writer;
  writer.set(kKindKey, "state");
  writer.add_module("m.", *cell);
  writer.add_optimizer("o.", cell->optimizer(), *cell);
  writer.write(dir_ + "/s.safetensors");
  Cell other = make_cell(dense_spec(3));
  const Checkpoint file = Checkpoint::open(dir_ + "/s.safetensors", "state");
  file.load_module("m.", *other);
  file.load_optimizer("o.", other->optimizer(), *other);
  EXPECT_TRUE(same_weights(*other, *cell));
  // The same next step from the same state gives the same weights.
  const torch::Tensor x = torch::rand({4, 12});
  cell->train_step(x);
  other->train_step(x);
  EXPECT_TRUE(same_weights(*other, *cell));
}

}  // namespace
}  // namespace septa::nn
