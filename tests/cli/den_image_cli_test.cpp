// Image folders as data, end to end: den import --data with class folders, den add-task with named
// class folders (new class ids, names kept in the checkpoint), den predict --images (file and class
// name columns), and the refusals with their exit codes and nothing written. The model is the conv
// fixture of tests/serialization/make_import_fixtures.py (1x10x10 images, 3 outputs).

#include "data/image_folder.h"
#include "serialization/checkpoint.h"

#include "cli_test_util.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/import.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace io = den::io;
using den::testing::Result;
using den::testing::read_rows;
using den::testing::run_den;

std::string conv_model() { return std::string(DEN_IMPORT_FIXTURES) + "/conv_sequential_script.pt"; }

void put_u32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

void chunk(std::string& png, const char* type, const std::string& data) {
  put_u32(png, static_cast<uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  png += body;
  put_u32(png, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size())));
}

/// Writes an 8-bit gray PNG of `pixels` (rows of `width`).
void write_png(const fs::path& path, const std::vector<uint8_t>& pixels, int width) {
  const int height = static_cast<int>(pixels.size()) / width;
  std::string rows;
  for (int y = 0; y < height; ++y) {
    rows += '\0';  // filter: none
    rows.append(reinterpret_cast<const char*>(pixels.data()) + y * width, static_cast<size_t>(width));
  }
  uLongf packed_size = compressBound(rows.size());
  std::string packed(packed_size, '\0');
  compress(reinterpret_cast<Bytef*>(packed.data()), &packed_size, reinterpret_cast<const Bytef*>(rows.data()),
           rows.size());
  packed.resize(packed_size);
  std::string ihdr;
  put_u32(ihdr, static_cast<uint32_t>(width));
  put_u32(ihdr, static_cast<uint32_t>(height));
  ihdr += std::string("\x08\x00\x00\x00\x00", 5);  // 8 bits, gray, deflate, no filter method, no interlace
  std::string png = "\x89PNG\r\n\x1a\n";
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", packed);
  chunk(png, "IEND", "");
  std::ofstream(path, std::ios::binary) << png;
}

/// `per_class` images of each class in DIR/<folder>/: class k of `pattern` is a bright 3x3 square at
/// its own place of a `size`x`size` noisy image, so a network can tell the classes apart.
void write_folder(const fs::path& dir, const std::vector<std::string>& folders, const std::vector<int>& pattern,
                  int per_class, uint32_t seed, int size = 10) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> noise(0, 60);
  for (size_t k = 0; k < folders.size(); ++k) {
    fs::create_directories(dir / folders[k]);
    for (int i = 0; i < per_class; ++i) {
      std::vector<uint8_t> pixels(static_cast<size_t>(size * size));
      for (uint8_t& p : pixels) p = static_cast<uint8_t>(noise(rng));
      const int top = (pattern[k] * 3) % (size - 3), left = (pattern[k] * 5) % (size - 3);
      for (int y = top; y < top + 3; ++y) {
        for (int x = left; x < left + 3; ++x) pixels[static_cast<size_t>(y * size + x)] = 250;
      }
      char name[32];
      std::snprintf(name, sizeof name, "%03d.png", i);
      write_png(dir / folders[k] / name, pixels, size);
    }
  }
}

class DenImageCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("den_image_cli_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  /// Imports the conv fixture with 4 images of each of classes 0, 1, 2 from an image folder.
  Result import_model(const std::string& extra = "") {
    write_folder(dir_ / "old", {"0", "1", "2"}, {0, 1, 2}, 4, 1);
    return run_den("import " + conv_model() + " -o " + path("run.den") + " --data " + path("old") +
                   " --input-shape 1,10,10 --max-iter 300 --eval-every 50 " + extra);
  }

  fs::path dir_;
};

TEST_F(DenImageCli, ImportKeepsTheImageInputAndTheExemplars) {
  const Result r = import_model("--image-size 12 --mean 0.5 --std 0.25");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("accuracy on the 12 samples"), std::string::npos) << r.output;
  const io::LoadedCheckpoint c = io::load_checkpoint(path("run.den"));
  ASSERT_TRUE(c.extras.images.has_value());
  EXPECT_EQ(c.extras.images->channels, 1);
  EXPECT_EQ(c.extras.images->height, 10);
  EXPECT_EQ(c.extras.images->resize, 12);
  EXPECT_EQ(c.extras.images->mean, std::vector<double>{0.5});
  ASSERT_TRUE(c.extras.agnostic.has_value());
  EXPECT_EQ(c.extras.agnostic->memory_classes.size(), 12u);
  EXPECT_TRUE(c.extras.class_names.empty());  // folders named by class id
}

// Named folders at import are the model's outputs in sorted order (torchvision's ImageFolder).
TEST_F(DenImageCli, NamedFoldersAtImportAreTheOutputsInSortedOrder) {
  write_folder(dir_ / "named", {"cat", "ant", "bee"}, {0, 1, 2}, 2, 2);
  Result r = run_den("import " + conv_model() + " -o " + path("named.den") + " --data " + path("named") +
                     " --input-shape 1,10,10 --classes 5,6,7");
  ASSERT_EQ(r.code, 0) << r.output;
  const io::LoadedCheckpoint c = io::load_checkpoint(path("named.den"));
  const std::map<int64_t, std::string> expected = {{5, "ant"}, {6, "bee"}, {7, "cat"}};
  EXPECT_EQ(c.extras.class_names, expected);
  // Two named folders for three outputs cannot be matched: a data error, nothing written.
  fs::remove_all(dir_ / "named" / "cat");
  r = run_den("import " + conv_model() + " -o " + path("two.den") + " --data " + path("named") +
              " --input-shape 1,10,10");
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("the model has 3 outputs"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("two.den")));
}

// The request: two new classes from folders named after them, then predictions among all classes
// with file names and class names.
TEST_F(DenImageCli, AddTaskFromNamedFoldersThenPredictImages) {
  ASSERT_EQ(import_model().code, 0);
  write_folder(dir_ / "new", {"brad_pitt", "angelina jolie"}, {3, 4}, 60, 3);
  const Result added = run_den("add-task " + path("run.den") + " --data " + path("new") + " --quiet");
  ASSERT_EQ(added.code, 0) << added.output;
  const io::LoadedCheckpoint c = io::load_checkpoint(path("run.den"));
  // New names get the ids above every known class, in sorted order of names.
  const std::map<int64_t, std::string> expected = {{3, "angelina jolie"}, {4, "brad_pitt"}};
  EXPECT_EQ(c.extras.class_names, expected);
  ASSERT_TRUE(c.extras.images.has_value());
  EXPECT_EQ(c.engine.num_tasks(), 2);
  EXPECT_EQ(c.extras.agnostic->output_classes.back(), (std::vector<int64_t>{-1, 3, 4}));  // the rest: old exemplars

  write_folder(dir_ / "test", {"brad_pitt", "angelina jolie"}, {3, 4}, 10, 4);
  Result r = run_den("predict " + path("run.den") + " --images " + path("test") + " --task 2 -o " + path("p.csv"));
  ASSERT_EQ(r.code, 0) << r.output;
  const auto rows = read_rows(path("p.csv"));
  ASSERT_EQ(rows.size(), 21u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"file", "class", "score"}));
  EXPECT_EQ(rows[1][0], "angelina jolie/000.png");
  int correct = 0;
  for (size_t i = 1; i < rows.size(); ++i) correct += rows[i][0].substr(0, rows[i][0].find('/')) == rows[i][1];
  EXPECT_GE(correct, 18) << r.output;  // the new head tells the two squares apart
  EXPECT_NE(r.output.find("accuracy"), std::string::npos) << r.output;

  // Task-agnostically, among all five classes, with names in the score columns.
  r = run_den("predict " + path("run.den") + " --images " + path("test") + " --scores -o " + path("all.csv"));
  ASSERT_EQ(r.code, 0) << r.output;
  const auto all = read_rows(path("all.csv"));
  EXPECT_EQ(all[0], (std::vector<std::string>{"file", "class", "score", "score_0", "score_1", "score_2",
                                              "score_angelina jolie", "score_brad_pitt"}));

  // The exported task-agnostic module takes the raw decoded images and predicts what den predicts.
  r = run_den("export " + path("run.den") + " --task agnostic -o " + path("agnostic.pt"));
  ASSERT_EQ(r.code, 0) << r.output;
  torch::jit::Module exported = torch::jit::load(path("agnostic.pt"));
  EXPECT_EQ(exported.attr("class_names").toListRef().size(), 2u);
  std::vector<at::Tensor> raw;
  for (size_t i = 1; i < all.size(); ++i) raw.push_back(den::data::decode_image((dir_ / "test" / all[i][0]).string()));
  const at::Tensor classes = exported.run_method("predict", at::stack(raw)).toTensor();
  for (size_t i = 1; i < all.size(); ++i) {
    const int64_t id = classes[static_cast<int64_t>(i - 1)].item<int64_t>();
    const std::string name = id == 3 ? "angelina jolie" : id == 4 ? "brad_pitt" : std::to_string(id);
    EXPECT_EQ(name, all[i][1]) << all[i][0];
  }

  // Images directly in a folder: no labels, no accuracy, one row per file.
  fs::create_directories(dir_ / "flat");
  fs::copy_file(dir_ / "test" / "brad_pitt" / "000.png", dir_ / "flat" / "a,b.png");
  r = run_den("predict " + path("run.den") + " --images " + path("flat"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("\"a,b.png\","), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("accuracy"), std::string::npos) << r.output;
}

// A model with a frozen trunk imported without images: its trunk's input says how images come in.
TEST_F(DenImageCli, ImagesFeedAFrozenTrunk) {
  const std::string model = std::string(DEN_IMPORT_FIXTURES) + "/refused_dilated.pt";  // dilated Conv2d | ReLU, Flatten, Linear
  Result r = run_den("import " + model + " -o " + path("trunk.den") + " --input-shape 1,10,10 --max-iter 60");
  ASSERT_EQ(r.code, 0) << r.output;
  write_folder(dir_ / "new", {"left", "right"}, {3, 4}, 30, 5);
  r = run_den("add-task " + path("trunk.den") + " --data " + path("new") + " --quiet");
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_den("predict " + path("trunk.den") + " --images " + path("new") + " --task 2 -o " + path("p.csv"));
  ASSERT_EQ(r.code, 0) << r.output;
  const auto rows = read_rows(path("p.csv"));
  ASSERT_EQ(rows.size(), 61u);
  EXPECT_EQ(rows[1][0], "left/000.png");
  // The exported module, trunk included, takes the raw decoded images and gives den predict's scores.
  r = run_den("export " + path("trunk.den") + " --task 2 -o " + path("task2.pt"));
  ASSERT_EQ(r.code, 0) << r.output;
  torch::jit::Module exported = torch::jit::load(path("task2.pt"));
  std::vector<at::Tensor> raw;
  for (size_t i = 1; i < rows.size(); ++i) raw.push_back(den::data::decode_image((dir_ / "new" / rows[i][0]).string()));
  const at::Tensor scores = exported.run_method("scores", at::stack(raw)).toTensor();
  const io::LoadedCheckpoint c = io::load_checkpoint(path("trunk.den"));
  const std::vector<int64_t>& outputs = c.extras.agnostic->output_classes[1];  // no exemplars: no rest output
  for (size_t i = 1; i < rows.size(); ++i) {
    const int64_t best = scores[static_cast<int64_t>(i - 1)].argmax().item<int64_t>();
    EXPECT_EQ(c.extras.class_names.at(outputs[static_cast<size_t>(best)]), rows[i][1]) << rows[i][0];
    EXPECT_NEAR(scores[static_cast<int64_t>(i - 1)].max().item<double>(), std::stod(rows[i][2]), 1e-4) << rows[i][0];
  }
}

// den run from scratch on DIR/train/<class>/ and DIR/test/<class>/: the input shape from the first
// image, class ids from the sorted folder names, and a checkpoint that predicts images by name.
TEST_F(DenImageCli, RunLearnsAStreamFromTrainAndTestFolders) {
  const std::vector<std::string> names = {"coat", "bag", "dress", "boot"};
  write_folder(dir_ / "data" / "train", names, {0, 1, 2, 3}, 30, 1);
  write_folder(dir_ / "data" / "test", names, {0, 1, 2, 3}, 8, 2);
  Result r = run_den("run --data " + path("data") + " --protocol split --tasks 2 --layers conv3x3:4,maxpool2,fc:16 "
                     "--max-iter 150 --eval-every 50 --checkpoint " + path("run.den"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("images as 1 x 10 x 10 (C x H x W), as the first image 'bag/000.png'"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("split-2[2,3]"), std::string::npos) << r.output;
  const io::LoadedCheckpoint c = io::load_checkpoint(path("run.den"));
  const std::map<int64_t, std::string> expected = {{0, "bag"}, {1, "boot"}, {2, "coat"}, {3, "dress"}};
  EXPECT_EQ(c.extras.class_names, expected);
  ASSERT_TRUE(c.extras.images.has_value());
  EXPECT_EQ(c.extras.images->channels, 1);
  EXPECT_EQ(c.extras.images->height, 10);
  EXPECT_EQ(c.engine.num_tasks(), 2);

  // Task 1 (bag, boot) tells its two squares apart on the test images, named by folder.
  fs::create_directories(dir_ / "first");
  for (const char* name : {"bag", "boot"}) fs::copy(dir_ / "data" / "test" / name, dir_ / "first" / name);
  r = run_den("predict " + path("run.den") + " --images " + path("first") + " --task 1 -o " + path("p.csv"));
  ASSERT_EQ(r.code, 0) << r.output;
  const auto rows = read_rows(path("p.csv"));
  ASSERT_EQ(rows.size(), 17u);
  int correct = 0;
  for (size_t i = 1; i < rows.size(); ++i) correct += rows[i][0].substr(0, rows[i][0].find('/')) == rows[i][1];
  EXPECT_GE(correct, 14) << r.output;

  // A resumed run prepares images as its checkpoint says.
  r = run_den("run --resume " + path("run.den") + " --tasks 2 --image-size 12");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("leave --image-size out"), std::string::npos) << r.output;

  // A test class the training folder lacks: a data error naming it.
  write_folder(dir_ / "data" / "test", {"hat"}, {4}, 2, 3);
  r = run_den("run --data " + path("data") + " --protocol split --tasks 2 --layers fc:8 --max-iter 10 --checkpoint " +
              path("other.den"));
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("class folder 'hat'"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("other.den")));
}

// den compare on one folder DIR/<class>/: tested on a seeded fifth of it; images of another size
// are resized to the first image's.
TEST_F(DenImageCli, CompareTestsOnAHeldOutPartOfOneFolder) {
  write_folder(dir_ / "data", {"0", "1", "2", "3"}, {0, 1, 2, 3}, 20, 1);
  std::vector<uint8_t> big(14 * 14, 30);
  write_png(dir_ / "data" / "2" / "big.png", big, 14);
  const Result r = run_den("compare --data " + path("data") + " --methods den,finetune --protocol split --tasks 2 "
                           "--layers fc:16 --max-iter 60 --eval-every 20");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("testing on a seeded 20% of '" + path("data") + "' (16 images"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("finetune "), std::string::npos) << r.output;
}

TEST_F(DenImageCli, BadImagesAndFoldersAreDataErrorsThatWriteNothing) {
  write_folder(dir_ / "old", {"0", "1", "2"}, {0, 1, 2}, 2, 1);
  const std::string import = "import " + conv_model() + " -o " + path("out.den") + " --input-shape 1,10,10 --data ";
  // A file that does not decode: named in the message.
  std::ofstream(dir_ / "old" / "1" / "broken.png") << "not a png at all";
  Result r = run_den(import + path("old"));
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("broken.png"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("out.den")));
  fs::remove(dir_ / "old" / "1" / "broken.png");
  // A class folder with no image.
  fs::create_directories(dir_ / "old" / "3");
  r = run_den(import + path("old"));
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("old/3' holds no image"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("out.den")));
  fs::remove_all(dir_ / "old" / "3");

  // Usage errors (exit 2): an image folder without the model's input shape, a bad --mean.
  r = run_den("import " + conv_model() + " -o " + path("out.den") + " --data " + path("old"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--input-shape"), std::string::npos) << r.output;
  r = run_den(import + path("old") + " --mean 0.5,0.5 --std 1,1");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("image preprocessing: mean has 2 values"), std::string::npos) << r.output;
  for (const auto& [flags, needle] : std::vector<std::pair<std::string, std::string>>{
           {" --mean abc --std 1", "--mean 'abc': 'abc' is not a number"},
           {" --mean 0.5, --std 1", "--mean '0.5,' ends with a comma"}}) {
    r = run_den(import + path("old") + flags);
    EXPECT_EQ(r.code, 2) << flags << ": " << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
  }
  EXPECT_EQ(r.output.find("image preprocessing (--input-shape"), std::string::npos) << r.output;  // said once
  EXPECT_FALSE(fs::exists(path("out.den")));
  // The shorter side becomes --image-size, so only the crop's longer side fits every image.
  r = run_den("import " + conv_model() + " -o " + path("out.den") + " --data " + path("old") +
              " --input-shape 1,10,10 --image-size 9");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--image-size 9 is smaller than the crop 10x10"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("out.den")));

  // predict: exactly one input; images only for a network of images.
  ASSERT_EQ(run_den(import + path("old")).code, 0);
  r = run_den("predict " + path("out.den") + " --images " + path("old") + " --csv x.csv");
  EXPECT_EQ(r.code, 2) << r.output;
  const std::string mlp = std::string(DEN_IMPORT_FIXTURES) + "/sequential_script.pt";
  ASSERT_EQ(run_den("import " + mlp + " -o " + path("mlp.den")).code, 0);
  const auto before = fs::last_write_time(path("mlp.den"));
  r = run_den("add-task " + path("mlp.den") + " --data " + path("old"));
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("not images"), std::string::npos) << r.output;
  EXPECT_EQ(fs::last_write_time(path("mlp.den")), before);
}

}  // namespace
