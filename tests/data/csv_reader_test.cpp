#include "data/csv_reader.h"

#include "tests/data/test_files.h"

#include <gtest/gtest.h>

namespace den::data {
namespace {

using testing::contains_all;
using testing::message_of;
using testing::TempDir;
using testing::write_text;

Dataset load_text(const TempDir& dir, const std::string& text, const CsvOptions& options = {}) {
  write_text(dir.file("data.csv"), text);
  return load_csv(dir.file("data.csv"), options);
}

std::string error_of(const TempDir& dir, const std::string& text, const CsvOptions& options = {}) {
  write_text(dir.file("data.csv"), text);
  return message_of<DataError>([&] { load_csv(dir.file("data.csv"), options); });
}

TEST(DataCsvReader, HeaderIsDetectedAndSkipped) {
  TempDir dir;
  const Dataset ds = load_text(dir, "label,x1,x2\n1,0.5,2\n0,-1,3e2\n");
  ASSERT_EQ(ds.features.sizes(), at::IntArrayRef({2, 2}));
  EXPECT_TRUE(at::equal(ds.features, at::tensor({0.5f, 2.0f, -1.0f, 300.0f}).view({2, 2})));
  EXPECT_TRUE(at::equal(ds.labels, at::tensor({1, 0}, at::kLong)));
  EXPECT_EQ(ds.num_classes, 2);
  EXPECT_EQ(ds.sample_shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(ds.features.scalar_type(), at::kFloat);
}

TEST(DataCsvReader, NumericFirstLineIsData) {
  TempDir dir;
  const Dataset ds = load_text(dir, "2,1,1\n0,4,5\n");
  EXPECT_EQ(ds.size(), 2);
  EXPECT_EQ(ds.labels[0].item<int64_t>(), 2);
  EXPECT_EQ(ds.num_classes, 3);
}

TEST(DataCsvReader, FirstLineMixingNumbersAndTextIsAnError) {
  // A data line with one typo is not silently dropped as a header.
  TempDir dir;
  EXPECT_TRUE(contains_all(error_of(dir, "1,0.5,2,O.7\n0,-1,3,4\n"),
                           {"data.csv", "line 1 column 4", "'O.7' is not a number", "3 of the line's 4"}));
  EXPECT_TRUE(contains_all(error_of(dir, "label,1,2\n0,1,2\n"), {"line 1 column 1", "'label'"}));
  // A header after blank lines is still a header.
  EXPECT_EQ(load_text(dir, "\n  \nlabel,x\n1,2\n").size(), 1);
}

TEST(DataCsvReader, LabelColumnDelimiterCrlfAndBlankLines) {
  TempDir dir;
  CsvOptions options;
  options.label_column = -1;
  options.delimiter = ';';
  const Dataset ds = load_text(dir, "a;b;y\r\n 1.5 ; +2;3\r\n\r\n4;5;0\r\n\n", options);
  ASSERT_EQ(ds.size(), 2);
  EXPECT_TRUE(at::equal(ds.features, at::tensor({1.5f, 2.0f, 4.0f, 5.0f}).view({2, 2})));
  EXPECT_TRUE(at::equal(ds.labels, at::tensor({3, 0}, at::kLong)));

  options.label_column = 1;
  const Dataset mid = load_text(dir, "1;0;2\n3;1;4\n", options);
  EXPECT_TRUE(at::equal(mid.labels, at::tensor({0, 1}, at::kLong)));
  EXPECT_TRUE(at::equal(mid.features, at::tensor({1.0f, 2.0f, 3.0f, 4.0f}).view({2, 2})));
}

TEST(DataCsvReader, NanFieldNamesLineAndColumn) {
  TempDir dir;
  EXPECT_TRUE(contains_all(error_of(dir, "label,a,b\n1,0.5,2\n0,nan,3\n"), {"data.csv", "line 3", "column 2"}));
  EXPECT_TRUE(contains_all(error_of(dir, "1,0.5,inf\n"), {"line 1", "column 3"}));
}

TEST(DataCsvReader, RaggedRowIsRejected) {
  TempDir dir;
  EXPECT_TRUE(contains_all(error_of(dir, "label,a,b\n1,0.5,2\n0,3\n"), {"data.csv", "line 3", "2 columns", "expected 3"}));
}

TEST(DataCsvReader, UnparsableFieldIsRejected) {
  TempDir dir;
  EXPECT_TRUE(contains_all(error_of(dir, "1,2,3\n0,abc,3\n"), {"line 2", "column 2", "'abc' is not a number"}));
  EXPECT_TRUE(contains_all(error_of(dir, "1,2,3\n0,4,\n"), {"line 2", "column 3"}));
}

TEST(DataCsvReader, BadLabelsAreRejected) {
  TempDir dir;
  EXPECT_TRUE(contains_all(error_of(dir, "1,2\n-1,3\n"), {"line 2", "column 1", "'-1'"}));
  EXPECT_TRUE(contains_all(error_of(dir, "1.5,2\n"), {"line 1", "'1.5'"}));
  CsvOptions options;
  options.num_classes = 3;
  EXPECT_TRUE(contains_all(error_of(dir, "0,1\n3,1\n", options), {"line 2", "label 3", "num_classes 3"}));
  EXPECT_EQ(load_text(dir, "0,1\n2,1\n", options).num_classes, 3);
}

TEST(DataCsvReader, EmptyFilesAreRejected) {
  TempDir dir;
  EXPECT_TRUE(contains_all(error_of(dir, ""), {"data.csv", "no samples"}));
  EXPECT_TRUE(contains_all(error_of(dir, "label,a,b\n\n"), {"data.csv", "no samples"}));
}

TEST(DataCsvReader, BadLayoutIsRejected) {
  TempDir dir;
  EXPECT_TRUE(contains_all(error_of(dir, "1\n2\n"), {"1 column"}));
  CsvOptions options;
  options.label_column = 5;
  EXPECT_TRUE(contains_all(error_of(dir, "1,2\n", options), {"label column 5"}));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_csv(dir.file("missing.csv")); }), {"missing.csv"}));
}

TEST(DataCsvReader, UnlabelledFilesAreAllFeatures) {
  TempDir dir;
  CsvOptions options;
  options.labelled = false;
  const Dataset ds = load_text(dir, "a,b,c\n1,2,3\n4,5,6\n", options);
  EXPECT_FALSE(ds.labels.defined());
  ASSERT_EQ(ds.features.sizes(), at::IntArrayRef({2, 3}));
  EXPECT_FLOAT_EQ(ds.features[1][0].item<float>(), 4.0f);
  // A single column is a feature there; a labelled file needs two.
  EXPECT_EQ(load_text(dir, "7\n8\n", options).features.size(1), 1);
  EXPECT_TRUE(contains_all(error_of(dir, "7\n8\n"), {"needs a label and at least one feature"}));
  EXPECT_TRUE(contains_all(error_of(dir, "1,nan\n", options), {"not finite"}));
  EXPECT_TRUE(contains_all(error_of(dir, "x,y\n", options), {"holds no samples"}));
}

}  // namespace
}  // namespace den::data
