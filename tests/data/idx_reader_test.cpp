#include "data/idx_reader.h"

#include "tests/data/test_files.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace den::data {
namespace {

using testing::contains_all;
using testing::idx_bytes;
using testing::message_of;
using testing::ramp;
using testing::TempDir;
using testing::write_gz;
using testing::write_raw;
using testing::write_text;

// 4 images of 5x3: a size other than 28x28, to show nothing assumes MNIST.
const std::vector<uint32_t> kImageDims = {4, 5, 3};

void expect_ramp_images(const at::Tensor& t) {
  ASSERT_EQ(t.scalar_type(), at::kByte);
  ASSERT_EQ(t.sizes(), at::IntArrayRef({4, 5, 3}));
  const at::Tensor expected = at::arange(60, at::kLong).to(at::kByte).view({4, 5, 3});
  EXPECT_TRUE(at::equal(t, expected));
}

TEST(DataIdxReader, RawRoundTripKeepsAnyImageSize) {
  TempDir dir;
  write_raw(dir.file("images"), idx_bytes(kImageDims, ramp(60)));
  expect_ramp_images(read_idx(dir.file("images")));
}

TEST(DataIdxReader, GzipRoundTripIsDetectedFromContent) {
  TempDir dir;
  // No .gz suffix: the reader must recognise gzip by its content.
  write_gz(dir.file("images"), idx_bytes(kImageDims, ramp(60)));
  ASSERT_NE(testing::read_raw(dir.file("images"))[0], 0x00);  // really compressed
  expect_ramp_images(read_idx(dir.file("images")));
}

TEST(DataIdxReader, ReadsLargePayloadFromGzip) {
  TempDir dir;
  const size_t n = 300 * 28 * 28;
  write_gz(dir.file("big.gz"), idx_bytes({300, 28, 28}, ramp(n)));
  const at::Tensor t = read_idx(dir.file("big.gz"));
  ASSERT_EQ(t.numel(), static_cast<int64_t>(n));
  EXPECT_EQ(t.view({-1})[n - 1].item<uint8_t>(), static_cast<uint8_t>((n - 1) % 256));
}

TEST(DataIdxReader, WrongMagicIsRejected) {
  TempDir dir;
  std::vector<uint8_t> bytes = idx_bytes(kImageDims, ramp(60));
  bytes[1] = 0x01;
  write_raw(dir.file("bad"), bytes);
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { read_idx(dir.file("bad")); }),
                           {dir.file("bad"), "magic", "0x01"}));
}

TEST(DataIdxReader, WrongTypeByteIsRejected) {
  TempDir dir;
  write_raw(dir.file("floats"), idx_bytes(kImageDims, ramp(60), 0x0d));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { read_idx(dir.file("floats")); }),
                           {dir.file("floats"), "type byte 0x0d"}));
}

TEST(DataIdxReader, TruncatedPayloadIsRejectedRawAndGzip) {
  TempDir dir;
  const auto bytes = idx_bytes(kImageDims, ramp(59));
  write_raw(dir.file("short"), bytes);
  write_gz(dir.file("short.gz"), bytes);
  for (const auto& name : {"short", "short.gz"}) {
    EXPECT_TRUE(contains_all(message_of<DataError>([&] { read_idx(dir.file(name)); }),
                             {dir.file(name), "truncated", "59", "60"}));
  }
}

TEST(DataIdxReader, TruncatedHeaderIsRejected) {
  TempDir dir;
  auto bytes = idx_bytes(kImageDims, {});
  bytes.resize(9);  // cut inside the dimension sizes
  write_raw(dir.file("cut"), bytes);
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { read_idx(dir.file("cut")); }), {"truncated", "dimension"}));
}

TEST(DataIdxReader, CutGzipStreamIsRejected) {
  TempDir dir;
  write_gz(dir.file("full.gz"), idx_bytes({200, 10, 10}, ramp(20000)));
  auto gz = testing::read_raw(dir.file("full.gz"));
  gz.resize(gz.size() / 2);
  write_raw(dir.file("cut.gz"), gz);
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { read_idx(dir.file("cut.gz")); }), {dir.file("cut.gz")}));
}

TEST(DataIdxReader, TrailingBytesAreRejectedRawAndGzip) {
  TempDir dir;
  const auto bytes = idx_bytes(kImageDims, ramp(61));
  write_raw(dir.file("long"), bytes);
  write_gz(dir.file("long.gz"), bytes);
  for (const auto& name : {"long", "long.gz"}) {
    EXPECT_TRUE(contains_all(message_of<DataError>([&] { read_idx(dir.file(name)); }),
                             {dir.file(name), "trailing", "60"}));
  }
}

TEST(DataIdxReader, EmptyAndMissingFilesAreRejected) {
  TempDir dir;
  write_raw(dir.file("empty"), {});
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { read_idx(dir.file("empty")); }), {dir.file("empty"), "empty"}));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { read_idx(dir.file("nope")); }),
                           {dir.file("nope"), "does not exist"}));
}

TEST(DataIdxReader, PairScalesToUnitRangeAndFlattens) {
  TempDir dir;
  std::vector<uint8_t> pixels = ramp(60);
  pixels[0] = 255;
  write_raw(dir.file("img"), idx_bytes(kImageDims, pixels));
  write_raw(dir.file("lab"), idx_bytes({4}, {0, 2, 1, 2}));
  const Dataset ds = load_idx_pair(dir.file("img"), dir.file("lab"));
  ASSERT_EQ(ds.features.sizes(), at::IntArrayRef({4, 15}));
  EXPECT_EQ(ds.features.scalar_type(), at::kFloat);
  EXPECT_EQ(ds.labels.scalar_type(), at::kLong);
  EXPECT_EQ(ds.sample_shape, (std::vector<int64_t>{5, 3}));
  EXPECT_EQ(ds.num_classes, 3);
  EXPECT_FLOAT_EQ(ds.features[0][0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(ds.features[1][2].item<float>(), 17.0f / 255.0f);  // row 1, column 2 = byte 17
  EXPECT_TRUE(at::equal(ds.labels, at::tensor({0, 2, 1, 2}, at::kLong)));
  EXPECT_NO_THROW(validate(ds, "pair"));
}

TEST(DataIdxReader, PairCountMismatchNamesBothCounts) {
  TempDir dir;
  write_raw(dir.file("img"), idx_bytes(kImageDims, ramp(60)));
  write_raw(dir.file("lab"), idx_bytes({3}, {0, 1, 2}));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_idx_pair(dir.file("img"), dir.file("lab")); }),
                           {"4 images", "3 labels", dir.file("img"), dir.file("lab")}));
}

TEST(DataIdxReader, PairLabelOutOfRangeNamesValueAndIndex) {
  TempDir dir;
  write_raw(dir.file("img"), idx_bytes(kImageDims, ramp(60)));
  write_raw(dir.file("lab"), idx_bytes({4}, {0, 1, 7, 1}));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_idx_pair(dir.file("img"), dir.file("lab"), 2); }),
                           {"label 7", "index 2", dir.file("lab")}));
  // With the class count given and respected, it is kept even above max label + 1.
  EXPECT_EQ(load_idx_pair(dir.file("img"), dir.file("lab"), 10).num_classes, 10);
}

TEST(DataIdxReader, PairRejectsOneDimensionalImages) {
  TempDir dir;
  write_raw(dir.file("img"), idx_bytes({4}, {1, 2, 3, 4}));
  write_raw(dir.file("lab"), idx_bytes({4}, {0, 1, 0, 1}));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_idx_pair(dir.file("img"), dir.file("lab")); }),
                           {dir.file("img"), "wrong IDX magic 0x00000801", "images file", "has 3"}));
}

TEST(DataIdxReader, DimensionCountIsCheckedAgainstTheKindOfFile) {
  TempDir dir;
  // An images file whose magic says 4 dimensions: read as 4-D, the first payload bytes would
  // become a fourth size and the error a huge allocation.
  std::vector<uint8_t> images = idx_bytes(kImageDims, ramp(60));
  images[3] = 0x04;
  write_raw(dir.file("img"), images);
  write_raw(dir.file("lab"), idx_bytes({4}, {0, 1, 0, 1}));
  const std::string message = message_of<DataError>([&] { load_idx_pair(dir.file("img"), dir.file("lab")); });
  EXPECT_TRUE(contains_all(message, {dir.file("img"), "wrong IDX magic 0x00000804", "4 dimensions", "has 3"}));
  EXPECT_EQ(message.find("allocate"), std::string::npos) << message;
  // A labels file with an images magic.
  write_raw(dir.file("img"), idx_bytes(kImageDims, ramp(60)));
  write_raw(dir.file("lab"), idx_bytes({4, 1, 1}, {0, 1, 0, 1}));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_idx_pair(dir.file("img"), dir.file("lab")); }),
                           {dir.file("lab"), "wrong IDX magic 0x00000803", "labels file", "has 1"}));
  // Without an expected count, any is read.
  EXPECT_EQ(read_idx(dir.file("lab")).dim(), 3);
}

TEST(DataIdxReader, DeclaredSizeIsComparedWithTheFileBeforeAllocating) {
  TempDir dir;
  // 60000^3 bytes (216 TB) declared, 10 present: refused from the file's size, raw and gzip.
  const auto bytes = idx_bytes({60000, 60000, 60000}, ramp(10));
  write_raw(dir.file("huge"), bytes);
  write_gz(dir.file("huge.gz"), bytes);
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { read_idx(dir.file("huge"), 3); }),
                           {dir.file("huge"), "truncated", "holds 10 bytes", "216000000000000"}));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { read_idx(dir.file("huge.gz"), 3); }),
                           {dir.file("huge.gz"), "truncated", "216000000000000", "gzip file can hold"}));
}

void write_idx_dir(const TempDir& dir, bool gz, uint8_t first_pixel, uint8_t max_test_label) {
  auto write = [&](const std::string& name, const std::vector<uint8_t>& bytes) {
    if (gz) {
      write_gz(dir.file(name + ".gz"), bytes);
    } else {
      write_raw(dir.file(name), bytes);
    }
  };
  std::vector<uint8_t> train_pixels = ramp(60);
  train_pixels[0] = first_pixel;
  write("train-images-idx3-ubyte", idx_bytes(kImageDims, train_pixels));
  write("train-labels-idx1-ubyte", idx_bytes({4}, {0, 1, 2, 1}));
  write("t10k-images-idx3-ubyte", idx_bytes({2, 5, 3}, ramp(30)));
  write("t10k-labels-idx1-ubyte", idx_bytes({2}, {max_test_label, 0}));
}

TEST(DataIdxReader, DirectoryPrefersGzipAndSharesClassCount) {
  TempDir dir;
  write_idx_dir(dir, /*gz=*/false, /*first_pixel=*/0, /*max_test_label=*/4);
  write_idx_dir(dir, /*gz=*/true, /*first_pixel=*/255, /*max_test_label=*/4);
  // Classes 3 and 4 have no training sample: refused unless allowed.
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_directory(dir.str()); }),
                           {dir.str(), "2 of 5 classes have no training sample", "labels 3..4", "--allow-label-gaps"}));
  DirectoryOptions options;
  options.allow_label_gaps = true;
  const TrainTest tt = load_directory(dir.str(), options);
  EXPECT_FLOAT_EQ(tt.train.features[0][0].item<float>(), 1.0f);  // the .gz copy was read
  EXPECT_EQ(tt.train.size(), 4);
  EXPECT_EQ(tt.test.size(), 2);
  EXPECT_EQ(tt.train.dim(), 15);
  // Train labels reach 2 and test labels 4: both halves get 5 classes.
  EXPECT_EQ(tt.train.num_classes, 5);
  EXPECT_EQ(tt.test.num_classes, 5);
}

TEST(DataIdxReader, LabelGapsAreNamedAsRanges) {
  // Labels {0..3, 250..255}: 246 empty classes, named as one range.
  Dataset train;
  std::vector<int64_t> labels = {0, 1, 2, 3, 250, 251, 252, 253, 254, 255};
  train.labels = at::tensor(labels, at::kLong);
  train.num_classes = 256;
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { check_no_label_gaps(train, "here"); }),
                           {"here: 246 of 256 classes", "labels 4..249)"}));
  labels = {0, 2, 4};
  train.labels = at::tensor(labels, at::kLong);
  train.num_classes = 6;
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { check_no_label_gaps(train, "here"); }),
                           {"3 of 6 classes", "labels 1, 3, 5)"}));
  train.num_classes = 5;
  labels = {0, 1, 2, 3, 4};
  train.labels = at::tensor(labels, at::kLong);
  EXPECT_NO_THROW(check_no_label_gaps(train, "here"));
}

TEST(DataIdxReader, DirectoryReadsRawIdx) {
  TempDir dir;
  write_idx_dir(dir, /*gz=*/false, /*first_pixel=*/51, /*max_test_label=*/1);
  const TrainTest tt = load_directory(dir.str());
  EXPECT_FLOAT_EQ(tt.train.features[0][0].item<float>(), 0.2f);
  EXPECT_EQ(tt.train.num_classes, 3);
}

TEST(DataIdxReader, DirectoryWithPartialIdxNamesMissingFile) {
  TempDir dir;
  write_idx_dir(dir, /*gz=*/true, 0, 1);
  std::filesystem::remove(dir.file("t10k-labels-idx1-ubyte.gz"));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_directory(dir.str()); }),
                           {"t10k-labels-idx1-ubyte", dir.str()}));
}

TEST(DataIdxReader, DirectoryReadsCsv) {
  TempDir dir;
  write_text(dir.file("train.csv"), "label,a,b\n0,1,2\n1,3,4\n2,5,6\n3,0,0\n");
  write_text(dir.file("test.csv"), "label,a,b\n1,7,8\n");
  const TrainTest tt = load_directory(dir.str());
  EXPECT_EQ(tt.train.size(), 4);
  EXPECT_EQ(tt.test.size(), 1);
  EXPECT_EQ(tt.train.num_classes, 4);
  EXPECT_EQ(tt.test.num_classes, 4);
  EXPECT_FLOAT_EQ(tt.test.features[0][1].item<float>(), 8.0f);
}

TEST(DataIdxReader, MissingOrEmptyDirectoryIsRejected) {
  TempDir dir;
  const std::string missing = dir.file("no_such_dir");
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_directory(missing); }), {missing, "does not exist"}));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_directory(dir.str()); }),
                           {dir.str(), "holds neither", "train-images-idx3-ubyte", "train.csv"}));
}

TEST(DataIdxReader, RealFashionMnist) {
  const std::string root = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(root + "/train-images-idx3-ubyte.gz") &&
      !std::filesystem::exists(root + "/train-images-idx3-ubyte")) {
    GTEST_SKIP() << "Fashion-MNIST is not installed at " << root;
  }
  const TrainTest tt = load_directory(root);
  EXPECT_EQ(tt.train.features.sizes(), at::IntArrayRef({60000, 784}));
  EXPECT_EQ(tt.test.features.sizes(), at::IntArrayRef({10000, 784}));
  EXPECT_EQ(tt.train.sample_shape, (std::vector<int64_t>{28, 28}));
  EXPECT_EQ(tt.train.num_classes, 10);
  EXPECT_EQ(tt.test.num_classes, 10);
  EXPECT_GE(tt.train.features.min().item<float>(), 0.0f);
  EXPECT_LE(tt.train.features.max().item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(tt.train.features.max().item<float>(), 1.0f);
  // Fashion-MNIST is balanced: 6000 training and 1000 test images per class.
  EXPECT_TRUE(at::equal(at::bincount(tt.train.labels), at::full({10}, 6000, at::kLong)));
  EXPECT_TRUE(at::equal(at::bincount(tt.test.labels), at::full({10}, 1000, at::kLong)));
  EXPECT_NO_THROW(validate(tt.train, "train"));
  EXPECT_NO_THROW(validate(tt.test, "test"));
}

TEST(DataIdxReader, OneHalfOfADirectoryLoadsWithoutTheOther) {
  TempDir dir;
  write_raw(dir.file("train-images-idx3-ubyte"), idx_bytes(kImageDims, ramp(60)));
  write_raw(dir.file("train-labels-idx1-ubyte"), idx_bytes({4}, {8, 8, 9, 8}));
  EXPECT_TRUE(has_half(dir.str(), Half::Train));
  EXPECT_FALSE(has_half(dir.str(), Half::Test));
  const Dataset train = load_half(dir.str(), Half::Train);
  EXPECT_EQ(train.size(), 4);
  EXPECT_EQ(train.labels[2].item<int64_t>(), 9);  // labels as they are: class ids
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_half(dir.str(), Half::Test); }),
                           {dir.str(), "t10k-images-idx3-ubyte", "test.csv"}));
  std::filesystem::remove(dir.file("train-labels-idx1-ubyte"));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_half(dir.str(), Half::Train); }),
                           {"no train-labels-idx1-ubyte"}));
  write_text(dir.file("test.csv"), "3,0.5,0.25\n");
  EXPECT_EQ(load_half(dir.str(), Half::Test).dim(), 2);
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_half(dir.file("missing"), Half::Train); }),
                           {"does not exist"}));
}

}  // namespace
}  // namespace den::data

namespace den::data {

TEST(DataIdxReader, EveryHeaderDefectIsNamed) {
  TempDir dir;
  write_raw(dir.file("magic"), {0x00, 0x00});  // cut inside the magic number
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { read_idx(dir.file("magic")); }),
                           {dir.file("magic"), "truncated inside its 4-byte magic"}));
  write_raw(dir.file("zero"), {0x00, 0x00, 0x08, 0x00});
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { read_idx(dir.file("zero")); }), {"declares 0 dimensions"}));
  write_raw(dir.file("overflow"), idx_bytes({0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, {}));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { read_idx(dir.file("overflow")); }),
                           {"dimensions overflow a 64-bit size"}));
  // A pair with no image, and one whose images have no pixel.
  write_raw(dir.file("none"), idx_bytes({0, 2, 2}, {}));
  write_raw(dir.file("no-labels"), idx_bytes({0}, {}));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_idx_pair(dir.file("none"), dir.file("no-labels")); }),
                           {dir.file("none"), "holds no images"}));
  write_raw(dir.file("flat"), idx_bytes({2, 0, 3}, {}));
  write_raw(dir.file("two-labels"), idx_bytes({2}, {0, 1}));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_idx_pair(dir.file("flat"), dir.file("two-labels")); }),
                           {dir.file("flat"), "images of size 0"}));
}

TEST(DataIdxReader, ADirectoryWithHalfACsvPairOrTwoWidthsIsRefused) {
  TempDir dir;
  write_text(dir.file("train.csv"), "label,a,b\n0,1,2\n1,3,4\n");
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_directory(dir.str()); }),
                           {"holds train.csv but no test.csv"}));
  write_text(dir.file("test.csv"), "label,a\n1,7\n");
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_directory(dir.str()); }),
                           {"train.csv rows have 2 features but test.csv rows have 1"}));
  TempDir idx;
  write_idx_dir(idx, /*gz=*/false, 0, 1);
  write_raw(idx.file("t10k-images-idx3-ubyte"), idx_bytes({2, 3, 3}, ramp(18)));
  write_raw(idx.file("t10k-labels-idx1-ubyte"), idx_bytes({2}, {0, 1}));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_directory(idx.str()); }),
                           {"training images have", "test images have 9"}));
}

}  // namespace den::data
