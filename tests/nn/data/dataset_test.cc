// Datasets: shape and class count from the data, errors naming the file, tabular tensors.
#include "nn/data/dataset.h"

#include <gtest/gtest.h>

#include "septa/error.h"
#include "nn/test_util.h"

namespace septa::nn {
namespace {

using testing::Bytes;
using testing::idx_file;
using testing::write_gzip;
using testing::write_plain;

// n images of h x w whose pixel i is (i + 7 * k) mod 256.
Bytes image_bytes(int n, int pixels) {
  Bytes data;
  for (int k = 0; k < n; ++k)
    for (int i = 0; i < pixels; ++i) data.push_back(static_cast<unsigned char>((i + 7 * k) % 256));
  return data;
}

std::string message_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::temp_dir("dataset"); }
  std::string dir_;
};

TEST_F(DatasetTest, LoadsASplitWithShapeAndClassesFromTheData) {
  // 5x6 images, labels up to 3 in train and 4 in test: 5 classes for both.
  write_gzip(dir_ + "/train-images-idx3-ubyte.gz", idx_file({2, 5, 6}, image_bytes(2, 30)));
  write_gzip(dir_ + "/train-labels-idx1-ubyte.gz", idx_file({2}, {3, 1}));
  write_plain(dir_ + "/t10k-images-idx3-ubyte", idx_file({3, 5, 6}, image_bytes(3, 30)));
  write_plain(dir_ + "/t10k-labels-idx1-ubyte", idx_file({3}, {0, 4, 2}));
  const Split split = load_idx_split(dir_);
  EXPECT_EQ(split.train.shape, (std::vector<int64_t>{1, 5, 6}));
  EXPECT_EQ(split.train.features(), 30);
  EXPECT_EQ(split.train.classes, 5);
  EXPECT_EQ(split.test.classes, 5);
  ASSERT_EQ(split.test.inputs.sizes(), (std::vector<int64_t>{3, 30}));
  EXPECT_FLOAT_EQ(split.train.inputs[1][5].item<float>(), 12.0f / 255.0f);
  EXPECT_EQ(split.test.labels[1].item<int64_t>(), 4);
  EXPECT_EQ(take_first(split.test, 2).size(), 2);
  EXPECT_EQ(take_first(split.test, 0).size(), 3);
}

TEST_F(DatasetTest, ErrorsNameTheFile) {
  write_plain(dir_ + "/img", idx_file({2, 28, 28}, image_bytes(2, 784)));
  write_plain(dir_ + "/lab3", idx_file({3}, {1, 2, 3}));
  write_plain(dir_ + "/lab2", idx_file({2}, {1, 2}));
  write_plain(dir_ + "/empty_img", idx_file({0, 28, 28}, {}));
  write_plain(dir_ + "/empty_lab", idx_file({0}, {}));
  EXPECT_NE(message_of([&] { image_dataset(dir_ + "/img", dir_ + "/lab3"); }).find("lab3:0: 3 labels for 2"),
            std::string::npos);
  // Issue 15 finding 6: an empty set's error names the file.
  EXPECT_NE(message_of([&] { image_dataset(dir_ + "/empty_img", dir_ + "/empty_lab"); })
                .find("empty_img:0: the file holds no examples"),
            std::string::npos);
  EXPECT_NE(message_of([&] { image_dataset(dir_ + "/img", dir_ + "/lab2", /*classes=*/2); })
                .find("lab2:0: label 2 outside [0, 2)"),
            std::string::npos);
  EXPECT_THROW(load_idx_split(dir_), IoError);
}

TEST(TabularTest, ShapeAndClassesFromTheTensors) {
  const Dataset set = tabular_dataset(torch::rand({4, 3}, torch::kFloat64),
                                      torch::tensor({0, 2, 1, 2}, torch::kInt64));
  EXPECT_EQ(set.shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(set.classes, 3);
  EXPECT_EQ(set.inputs.scalar_type(), torch::kFloat32);
  EXPECT_THROW(tabular_dataset(torch::rand({4, 3}), torch::tensor({0, 1}, torch::kInt64)), FormatError);
  EXPECT_THROW(tabular_dataset(torch::rand({2, 3}), torch::tensor({0, 5}, torch::kInt64), 3),
               FormatError);
}

}  // namespace
}  // namespace septa::nn
