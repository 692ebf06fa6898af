// Replays the IDX, CSV and image fuzz corpora (tests/fuzz/corpus-idx, corpus-csv, corpus-image) and
// seeded mutations of them through the readers: each input reads or raises DataError, nothing else. A short fuzz-like
// run on every ctest without clang; the libFuzzer targets do the campaigns (tests/fuzz/README.md).

#include "data/csv_reader.h"
#include "data/idx_reader.h"
#include "data/image_folder.h"

#include "tests/data/test_files.h"
#include "tests/fuzz/mutate.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace den::data {
namespace {

using testing::TempDir;

std::vector<std::string> corpus(const std::string& dir) {
  std::vector<std::string> inputs;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::vector<uint8_t> bytes = testing::read_raw(entry.path().string());
    inputs.emplace_back(bytes.begin(), bytes.end());
  }
  return inputs;
}

/// Calls `read` on a file holding each input; counts the inputs that read without an error.
int64_t replay(const std::vector<std::string>& inputs, const std::function<void(const std::string&)>& read) {
  TempDir dir;
  const std::string path = dir.file("input");
  int64_t read_ok = 0;
  for (const std::string& input : inputs) {
    testing::write_text(path, input);
    try {
      read(path);
      ++read_ok;
    } catch (const DataError&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "unexpected exception: " << e.what();
    }
  }
  return read_ok;
}

TEST(DataReaderCorpus, TheIdxReaderSurvivesItsFuzzCorpusAndMutations) {
  std::vector<std::string> inputs = corpus(DEN_IDX_CORPUS);
  ASSERT_FALSE(inputs.empty()) << "no corpus in " << DEN_IDX_CORPUS;
  inputs = den::testing::with_mutations(std::move(inputs), 1500, 11);
  EXPECT_GT(replay(inputs, [](const std::string& p) { read_idx(p, 3); }), 0);
  EXPECT_GT(replay(inputs, [](const std::string& p) { read_idx(p, 1); }), 0);
}

TEST(DataReaderCorpus, TheCsvReaderSurvivesItsFuzzCorpusAndMutations) {
  std::vector<std::string> inputs = corpus(DEN_CSV_CORPUS);
  ASSERT_FALSE(inputs.empty()) << "no corpus in " << DEN_CSV_CORPUS;
  inputs = den::testing::with_mutations(std::move(inputs), 1500, 13);
  EXPECT_GT(replay(inputs, [](const std::string& p) { load_csv(p); }), 0);
  CsvOptions other;
  other.label_column = -1;
  other.delimiter = ';';
  EXPECT_GT(replay(inputs, [&other](const std::string& p) { load_csv(p, other); }), 0);
}

TEST(DataReaderCorpus, TheImageDecoderSurvivesItsFuzzCorpusAndMutations) {
  std::vector<std::string> inputs = corpus(DEN_IMAGE_CORPUS);
  ASSERT_FALSE(inputs.empty()) << "no corpus in " << DEN_IMAGE_CORPUS;
  inputs = den::testing::with_mutations(std::move(inputs), 1500, 17);
  ImagePreprocess gray;
  gray.height = 6;
  gray.width = 5;
  ImagePreprocess rgb;
  rgb.channels = 3;
  rgb.height = rgb.width = 4;
  rgb.mean = {0.5, 0.5, 0.5};
  rgb.std = {0.25, 0.25, 0.25};
  EXPECT_GT(replay(inputs,
                   [&](const std::string& p) {
                     const at::Tensor image = decode_image(p);
                     for (const ImagePreprocess& pre : {gray, rgb}) {
                       if (!at::isfinite(preprocess_image(image, pre, p)).all().item<bool>()) {
                         ADD_FAILURE() << "non-finite preprocessing";
                       }
                     }
                   }),
            0);
}

}  // namespace
}  // namespace den::data
