// Image decoding, preprocessing and image folders (data/image_folder.h). The references come from
// tests/data/make_image_fixtures.py (PIL 9.4 and torchvision 0.14) in tests/data/images.

#include "data/image_folder.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "tests/data/test_files.h"

namespace den::data {
namespace {

namespace fs = std::filesystem;
using testing::contains_all;
using testing::message_of;
using testing::read_raw;
using testing::TempDir;
using testing::write_raw;

/// tests/data/images, found from the corpus path the build gives the data tests (tests/fuzz/corpus-image).
fs::path images_dir() { return fs::path(DEN_IMAGE_CORPUS).parent_path().parent_path() / "data" / "images"; }
std::string image(const std::string& name) { return (images_dir() / name).string(); }

/// A .ref file of make_image_fixtures.py: a comment line, "<dtype> <dims...>", then the values.
at::Tensor read_ref(const std::string& name) {
  const std::string path = (images_dir() / "expected" / name).string();
  const std::vector<uint8_t> bytes = read_raw(path);
  const std::string text(bytes.begin(), bytes.end());
  const size_t first = text.find('\n');
  const size_t second = text.find('\n', first + 1);
  if (first == std::string::npos || second == std::string::npos) throw std::runtime_error("bad reference " + path);
  std::istringstream head(text.substr(first + 1, second - first - 1));
  std::string dtype;
  head >> dtype;
  std::vector<int64_t> dims;
  for (int64_t d; head >> d;) dims.push_back(d);
  const auto type = dtype == "uint8" ? at::kByte : at::kFloat;
  at::Tensor out = at::empty(dims, type);
  const size_t payload = bytes.size() - (second + 1);
  if (payload != static_cast<size_t>(out.nbytes())) throw std::runtime_error("bad reference size " + path);
  std::memcpy(out.data_ptr(), bytes.data() + second + 1, payload);  // little-endian, as this machine
  return out;
}

/// The largest |a - b|, with both as double.
double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

ImagePreprocess make_preprocess(int64_t channels, int64_t height, int64_t width, int64_t resize = 0) {
  ImagePreprocess p;
  p.channels = channels;
  p.height = height;
  p.width = width;
  p.resize = resize;
  return p;
}

// ---------------------------------------------------------------------------------------------
// Decoding.

TEST(DataImageDecode, PngKindsEqualPilPixelsExactly) {
  for (const std::string name :
       {"gray_7x5.png", "rgb_40x30.png", "rgba_30x40.png", "gray_alpha_10x6.png", "gray1_13x5.png", "palette_28x28.png",
        "gray16_12x9.png", "rgb16_9x7.png", "interlaced_rgb_23x17.png", "interlaced_palette_11x9.png"}) {
    SCOPED_TRACE(name);
    const at::Tensor decoded = decode_image(image(name));
    const at::Tensor expected = read_ref(name + ".ref");
    ASSERT_EQ(decoded.scalar_type(), at::kByte);
    ASSERT_EQ(decoded.sizes(), expected.sizes());
    EXPECT_TRUE(at::equal(decoded, expected)) << "max difference " << max_diff(decoded, expected);
  }
}

// PIL in Debian decodes with the same libjpeg-turbo (islow IDCT, fancy upsampling), so the pixels are
// the same; one level of tolerance leaves room for another libjpeg build's rounding.
TEST(DataImageDecode, JpegKindsMatchPilWithinOneLevel) {
  for (const std::string name : {"gray_28x28.jpg", "rgb_40x30.jpg", "rgb444_17x13.jpg", "progressive_30x40.jpg"}) {
    SCOPED_TRACE(name);
    const at::Tensor decoded = decode_image(image(name));
    const at::Tensor expected = read_ref(name + ".ref");
    ASSERT_EQ(decoded.sizes(), expected.sizes());
    EXPECT_LE(max_diff(decoded, expected), 1.0);
  }
}

TEST(DataImageDecode, FormatComesFromTheBytesNotTheName) {
  TempDir dir;
  fs::copy_file(image("rgb_40x30.png"), dir.file("really_a_png.jpg"));
  fs::copy_file(image("gray_28x28.jpg"), dir.file("really_a_jpeg.PNG"));
  EXPECT_TRUE(at::equal(decode_image(dir.file("really_a_png.jpg")), decode_image(image("rgb_40x30.png"))));
  EXPECT_TRUE(at::equal(decode_image(dir.file("really_a_jpeg.PNG")), decode_image(image("gray_28x28.jpg"))));
  const std::vector<uint8_t> bytes = read_raw(image("rgb_40x30.png"));
  EXPECT_TRUE(
      at::equal(decode_image_bytes(bytes.data(), bytes.size(), "memory"), decode_image(image("rgb_40x30.png"))));
}

TEST(DataImageDecode, DefectiveFilesRaiseDataErrorNamingTheFile) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"truncated.png", {"corrupt or truncated PNG"}},        {"bad_crc.png", {"corrupt or truncated PNG", "CRC"}},
      {"random_bytes.png", {"neither a PNG nor a JPEG"}},     {"broken_header.jpg", {"corrupt or truncated JPEG"}},
      {"truncated.jpg", {"truncated JPEG", "Premature end"}}, {"cmyk_8x8.jpg", {"unsupported JPEG colour space CMYK"}},
  };
  for (const auto& [name, parts] : cases) {
    SCOPED_TRACE(name);
    std::vector<std::string> expected = parts;
    expected.push_back(image(name));
    EXPECT_TRUE(contains_all(message_of<DataError>([&] { decode_image(image(name)); }), expected));
  }
  TempDir dir;
  write_raw(dir.file("empty.png"), {});
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { decode_image(dir.file("empty.png")); }),
                           {dir.file("empty.png"), "is empty"}));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { decode_image(dir.file("missing.png")); }),
                           {dir.file("missing.png"), "does not exist"}));
}

std::vector<uint8_t> png_chunk(const char* kind, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out;
  const auto put32 = [&out](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
  };
  put32(static_cast<uint32_t>(data.size()));
  std::vector<uint8_t> body(kind, kind + 4);
  body.insert(body.end(), data.begin(), data.end());
  out.insert(out.end(), body.begin(), body.end());
  put32(static_cast<uint32_t>(crc32(0, body.data(), static_cast<uInt>(body.size()))));
  return out;
}

/// A PNG whose valid IHDR (CRC included) declares width x height RGB pixels, with a tiny IDAT.
std::vector<uint8_t> png_declaring(uint32_t width, uint32_t height) {
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> ihdr;
  for (uint32_t v : {width, height}) {
    for (int s = 24; s >= 0; s -= 8) ihdr.push_back(static_cast<uint8_t>(v >> s));
  }
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  for (const auto& c :
       {png_chunk("IHDR", ihdr), png_chunk("IDAT", {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01}),
        png_chunk("IEND", {})}) {
    png.insert(png.end(), c.begin(), c.end());
  }
  return png;
}

// The declared size is checked from the header, before a pixel buffer exists: the messages below come
// from those checks (a 2^30 x 2^30 RGB buffer could not even be allocated).
TEST(DataImageDecode, HugeDeclaredPngIsRefusedBeforeAllocating) {
  TempDir dir;
  write_raw(dir.file("huge.png"), png_declaring(1u << 30, 1u << 30));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { decode_image(dir.file("huge.png")); }),
                           {dir.file("huge.png"), "1073741824 x 1073741824", "limit of 32768 per side"}));
  write_raw(dir.file("many.png"), png_declaring(30000, 30000));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { decode_image(dir.file("many.png")); }),
                           {dir.file("many.png"), "30000 x 30000", "limit of 67108864"}));
  // Within the limits, but more pixels than deflate can pack into the file.
  write_raw(dir.file("packed.png"), png_declaring(4000, 4000));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { decode_image(dir.file("packed.png")); }),
                           {dir.file("packed.png"), "4000 x 4000", "more than a", "-byte PNG can hold"}));
}

/// rgb_40x30.jpg with its SOF0 frame declaring width x height.
std::vector<uint8_t> jpeg_declaring(uint16_t width, uint16_t height) {
  std::vector<uint8_t> jpg = read_raw(image("rgb_40x30.jpg"));
  for (size_t i = 0; i + 9 < jpg.size(); ++i) {
    if (jpg[i] == 0xff && jpg[i + 1] == 0xc0) {  // FF C0, length (2), precision (1), height (2), width (2)
      jpg[i + 5] = static_cast<uint8_t>(height >> 8);
      jpg[i + 6] = static_cast<uint8_t>(height);
      jpg[i + 7] = static_cast<uint8_t>(width >> 8);
      jpg[i + 8] = static_cast<uint8_t>(width);
      return jpg;
    }
  }
  throw std::runtime_error("no SOF0 in rgb_40x30.jpg");
}

TEST(DataImageDecode, HugeDeclaredJpegIsRefusedBeforeAllocating) {
  TempDir dir;
  write_raw(dir.file("wide.jpg"), jpeg_declaring(65000, 30));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { decode_image(dir.file("wide.jpg")); }),
                           {dir.file("wide.jpg"), "65000 x 30", "limit of 32768 per side"}));
  write_raw(dir.file("many.jpg"), jpeg_declaring(30000, 30000));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { decode_image(dir.file("many.jpg")); }),
                           {dir.file("many.jpg"), "30000 x 30000", "limit of 67108864"}));
  // Allowed sizes, but the scan data ends long before the last pixel (the file still ends with its
  // EOI marker): a truncation error, not a gray-padded image.
  write_raw(dir.file("short.jpg"), jpeg_declaring(4000, 3000));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { decode_image(dir.file("short.jpg")); }),
                           {dir.file("short.jpg"), "truncated JPEG", "premature end of data segment"}));
}

// A progressive JPEG may repeat scans without end, each a pass over the image (a known denial of
// service); PIL reads this one, den stops at 500 scans.
TEST(DataImageDecode, AJpegOfTooManyScansIsRefused) {
  const std::vector<uint8_t> jpg = read_raw(image("progressive_30x40.jpg"));
  ASSERT_GE(jpg.size(), 4u);
  ASSERT_EQ(jpg[jpg.size() - 2], 0xff);
  ASSERT_EQ(jpg[jpg.size() - 1], 0xd9);  // EOI
  // The last scan: from the last SOS marker (FF DA cannot occur in entropy-coded data) to the EOI.
  size_t sos = jpg.size() - 2;
  while (sos > 0 && !(jpg[sos - 1] == 0xff && jpg[sos] == 0xda)) --sos;
  ASSERT_GT(sos, 0u);
  const std::vector<uint8_t> scan(jpg.begin() + static_cast<std::ptrdiff_t>(sos - 1), jpg.end() - 2);
  std::vector<uint8_t> many(jpg.begin(), jpg.end() - 2);
  for (int i = 0; i < 600; ++i) many.insert(many.end(), scan.begin(), scan.end());
  many.insert(many.end(), {0xff, 0xd9});
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { decode_image_bytes(many.data(), many.size(), "scans.jpg"); }),
                           {"'scans.jpg'", "more than 500 scans"}));
  // The same file with 100 copies decodes.
  many.assign(jpg.begin(), jpg.end() - 2);
  for (int i = 0; i < 100; ++i) many.insert(many.end(), scan.begin(), scan.end());
  many.insert(many.end(), {0xff, 0xd9});
  EXPECT_EQ(decode_image_bytes(many.data(), many.size(), "scans.jpg").sizes(), at::IntArrayRef({3, 40, 30}));
}

// ---------------------------------------------------------------------------------------------
// Preprocessing.

struct Case {
  std::string image;
  ImagePreprocess preprocess;
  std::string tensor_ref, pil_ref;
};

std::vector<double> parse_list(const std::string& text) {
  std::vector<double> out;
  if (text == "-") return out;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stod(item));
  return out;
}

std::vector<Case> read_cases() {
  std::ifstream in((images_dir() / "expected" / "cases.txt").string());
  std::vector<Case> cases;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    Case c;
    std::string mean, std;
    fields >> c.image >> c.preprocess.channels >> c.preprocess.height >> c.preprocess.width >> c.preprocess.resize >>
        mean >> std >> c.tensor_ref >> c.pil_ref;
    c.preprocess.mean = parse_list(mean);
    c.preprocess.std = parse_list(std);
    cases.push_back(c);
  }
  return cases;
}

// torchvision's tensor path (resize(antialias=True) on the float image, center_crop, /255, normalize)
// computes the same sums in float32: 1e-4 covers its rounding. PIL's path rounds to uint8 after each
// resize pass: 2/255 before normalization, so 2/255/std after it.
TEST(DataImagePreprocess, MatchesTorchvisionTensorPathAndPilPath) {
  const std::vector<Case> cases = read_cases();
  ASSERT_GE(cases.size(), 8u);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.tensor_ref);
    const at::Tensor out = preprocess_image(decode_image(image(c.image)), c.preprocess, c.image);
    const at::Tensor tensor_ref = read_ref(c.tensor_ref);
    const at::Tensor pil_ref = read_ref(c.pil_ref);
    ASSERT_EQ(out.scalar_type(), at::kFloat);
    ASSERT_EQ(out.sizes(), tensor_ref.sizes());
    EXPECT_TRUE(at::allclose(out, tensor_ref, 0.0, 1e-4)) << "max difference " << max_diff(out, tensor_ref);
    at::Tensor scale = at::ones({c.preprocess.channels, 1, 1}, at::kDouble);
    for (size_t k = 0; k < c.preprocess.std.size(); ++k) scale[static_cast<int64_t>(k)] = c.preprocess.std[k];
    const double pil_gap = ((out.to(at::kDouble) - pil_ref.to(at::kDouble)).abs() * scale).max().item<double>();
    EXPECT_LE(pil_gap, 2.0 / 255 + 1e-6);
  }
}

TEST(DataImagePreprocess, RgbToGrayIsPilExactAndGrayToRgbReplicates) {
  for (const std::string name : {"rgb_40x30.png", "rgba_30x40.png", "palette_28x28.png"}) {
    SCOPED_TRACE(name);
    const at::Tensor decoded = decode_image(image(name));
    // At the image's own size there is no resampling: the output is the converted byte / 255.
    const at::Tensor gray = preprocess_image(decoded, make_preprocess(1, decoded.size(1), decoded.size(2)), name);
    const at::Tensor expected = read_ref(name + ".L.ref").to(at::kFloat) / 255;
    EXPECT_TRUE(at::equal(gray, expected)) << "max difference " << max_diff(gray, expected) * 255 << " levels";
  }
  const at::Tensor gray = decode_image(image("gray_7x5.png"));
  const at::Tensor rgb = preprocess_image(gray, make_preprocess(3, 5, 7), "gray_7x5.png");
  const at::Tensor expected = gray.to(at::kFloat) / 255;
  for (int64_t c = 0; c < 3; ++c) EXPECT_TRUE(at::equal(rgb[c], expected[0]));
}

TEST(DataImagePreprocess, AnImageAtTheModelSizeIsKeptExactlyAsDecodedOver255) {
  const at::Tensor decoded = decode_image(image("gray_28x28.jpg"));
  ImagePreprocess p = make_preprocess(1, 28, 28, 32);  // a resize other than 28 is not applied
  const at::Tensor out = preprocess_image(decoded, p, "gray_28x28.jpg");
  EXPECT_TRUE(at::equal(out, decoded.to(at::kFloat) / 255));
  p.mean = {0.5};
  p.std = {0.25};
  EXPECT_TRUE(at::allclose(preprocess_image(decoded, p, "x"), (decoded.to(at::kFloat) / 255 - 0.5) / 0.25, 0, 1e-6));
}

// torchvision: top = int(round((H - h) / 2.0)), Python's round taking halves to even.
TEST(DataImagePreprocess, CenterCropOffsetsRoundHalfToEven) {
  const std::vector<std::pair<int64_t, int64_t>> diff_to_top = {{0, 0}, {1, 0}, {2, 1}, {3, 2},
                                                                {4, 2}, {5, 2}, {6, 3}, {7, 4}};
  for (const auto& [diff, top] : diff_to_top) {
    SCOPED_TRACE(diff);
    // 5 wide, 5 + diff high, pixel = row * 5 + column: the shorter side already is `resize`, so there
    // is no resampling and the crop's first pixel tells its offset. Transposed for the left offset.
    const int64_t h = 5 + diff;
    const at::Tensor tall = at::arange(h * 5, at::kLong).to(at::kByte).view({1, h, 5});
    const at::Tensor out = preprocess_image(tall, make_preprocess(1, 5, 5, 5), "tall");
    EXPECT_EQ(std::lround(out[0][0][0].item<float>() * 255), top * 5);
    const at::Tensor wide = tall.transpose(1, 2);
    const at::Tensor out_wide = preprocess_image(wide, make_preprocess(1, 5, 5, 5), "wide");
    EXPECT_EQ(std::lround(out_wide[0][0][0].item<float>() * 255), top * 5);
  }
}

TEST(DataImagePreprocess, AResizeBelowTheCropRaisesDataErrorNamingTheSizes) {
  const at::Tensor img = at::zeros({3, 40, 30}, at::kByte);  // 30 wide, 40 high
  // Shorter side 30 -> 20, longer 40 -> int(20 * 40 / 30) = 26 < 28.
  EXPECT_TRUE(
      contains_all(message_of<DataError>([&] { preprocess_image(img, make_preprocess(3, 28, 20, 20), "a.png"); }),
                   {"'a.png'", "30 x 40", "20 x 26", "20 x 28"}));
}

// Only the crop is computed: a 1 x 32768 image with resize 224 would be 224 x 7340032 resized.
TEST(DataImagePreprocess, AThinImageIsNotResizedBeyondTheCrop) {
  const at::Tensor thin = at::full({1, 1, 32768}, 77, at::kByte);
  const at::Tensor out = preprocess_image(thin, make_preprocess(1, 224, 224), "thin");
  ASSERT_EQ(out.sizes(), at::IntArrayRef({1, 224, 224}));
  EXPECT_TRUE(at::allclose(out, at::full({1, 224, 224}, 77.0f / 255), 0, 1e-6));
}

TEST(DataImagePreprocess, CheckPreprocessNamesTheBadField) {
  const auto error_of = [](const ImagePreprocess& p) {
    return message_of<std::invalid_argument>([&] { check_preprocess(p); });
  };
  EXPECT_NO_THROW(check_preprocess(make_preprocess(3, 224, 224, 256)));
  EXPECT_TRUE(contains_all(error_of(make_preprocess(2, 8, 8)), {"channels", "2"}));
  EXPECT_TRUE(contains_all(error_of(make_preprocess(1, 0, 8)), {"height", "0"}));
  EXPECT_TRUE(contains_all(error_of(make_preprocess(1, 8, -1)), {"width", "-1"}));
  EXPECT_TRUE(contains_all(error_of(make_preprocess(1, 8, 8, -3)), {"resize", "-3"}));
  ImagePreprocess p = make_preprocess(3, 8, 8);
  p.mean = {0.5, 0.5};
  EXPECT_TRUE(contains_all(error_of(p), {"mean", "2 values"}));
  p.mean = {0.5, 0.5, std::nan("")};
  EXPECT_TRUE(contains_all(error_of(p), {"mean[2]", "not finite"}));
  p.mean = {};
  p.std = {1.0, 0.0, 1.0};
  EXPECT_TRUE(contains_all(error_of(p), {"std[1]", "> 0"}));
  p.std = {1.0, std::numeric_limits<double>::infinity(), 1.0};
  EXPECT_TRUE(contains_all(error_of(p), {"std[1]", "not finite"}));
  EXPECT_THROW(preprocess_image(at::zeros({4, 8, 8}, at::kByte), make_preprocess(3, 8, 8), "x"), std::invalid_argument);
  EXPECT_THROW(preprocess_image(at::zeros({3, 8, 8}, at::kFloat), make_preprocess(3, 8, 8), "x"),
               std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// Folders.

void put(const TempDir& dir, const std::string& relative, const std::string& fixture) {
  fs::create_directories(fs::path(dir.file(relative)).parent_path());
  fs::copy_file(image(fixture), dir.file(relative), fs::copy_options::overwrite_existing);
}

ImageFolderOptions folder_options(int64_t channels = 3, int64_t size = 16) {
  ImageFolderOptions o;
  o.preprocess = make_preprocess(channels, size, size);
  return o;
}

TEST(DataImageFolder, ClassIdsFollowIntegerNamesThenSortedNames) {
  TempDir dir;
  for (const std::string cls : {"3", "cat", "ant", "10"}) put(dir, cls + "/a.png", "gray_7x5.png");
  ImageFolderOptions o = folder_options();
  ImageFolder f = load_image_folder(dir.str(), o);
  // Integer folders are their ids; the others get ids above them, in sorted order (ant before cat).
  EXPECT_EQ(f.class_names, (std::map<int64_t, std::string>{{3, "3"}, {10, "10"}, {11, "ant"}, {12, "cat"}}));
  EXPECT_EQ(f.dataset.num_classes, 13);
  // Samples in sorted order of folder names ("10" < "3" < "ant" < "cat"), labels with them.
  EXPECT_EQ(f.files, (std::vector<std::string>{"10/a.png", "3/a.png", "ant/a.png", "cat/a.png"}));
  EXPECT_TRUE(at::equal(f.dataset.labels, at::tensor({10, 3, 11, 12}, at::kLong)));

  o.known = {{"cat", 4}, {"dog", 15}};
  f = load_image_folder(dir.str(), o);
  EXPECT_EQ(f.class_names, (std::map<int64_t, std::string>{{3, "3"}, {4, "cat"}, {10, "10"}, {16, "ant"}}));
  o.known.clear();
  o.first_free_id = 20;
  f = load_image_folder(dir.str(), o);
  EXPECT_EQ(f.class_names, (std::map<int64_t, std::string>{{3, "3"}, {10, "10"}, {20, "ant"}, {21, "cat"}}));
  EXPECT_EQ(f.dataset.num_classes, 22);
}

TEST(DataImageFolder, FilesAreReadInSortedOrderAndOtherEntriesSkipped) {
  TempDir dir;
  put(dir, "b/z.jpg", "rgb_40x30.jpg");
  put(dir, "b/a.PNG", "rgba_30x40.png");
  put(dir, "b/m.JPEG", "gray_28x28.jpg");
  put(dir, "b/.hidden.png", "truncated.png");   // hidden: skipped
  put(dir, "b/nested/x.png", "truncated.png");  // not DIR/<class>/file: skipped
  put(dir, ".cache/y.png", "truncated.png");    // hidden folder: skipped
  put(dir, "a/7.png", "gray_7x5.png");
  testing::write_text(dir.file("b/notes.txt"), "not an image");
  testing::write_text(dir.file("README"), "top-level file, skipped");
  const ImageFolder f = load_image_folder(dir.str(), folder_options());
  EXPECT_TRUE(f.labelled);
  EXPECT_EQ(f.files, (std::vector<std::string>{"a/7.png", "b/a.PNG", "b/m.JPEG", "b/z.jpg"}));
  EXPECT_TRUE(at::equal(f.dataset.labels, at::tensor({0, 1, 1, 1}, at::kLong)));
  EXPECT_EQ(f.dataset.num_classes, 2);
  EXPECT_EQ(f.dataset.sample_shape, (std::vector<int64_t>{3, 16, 16}));
  ASSERT_EQ(f.dataset.features.sizes(), at::IntArrayRef({4, 3 * 16 * 16}));
  validate(f.dataset, "image folder");
  // Images of different sizes, each preprocessed to one size: row i is the preprocessing of file i.
  for (size_t i = 0; i < f.files.size(); ++i) {
    const at::Tensor one = preprocess_image(decode_image(dir.file(f.files[i])), folder_options().preprocess, "x");
    EXPECT_TRUE(at::equal(f.dataset.features[static_cast<int64_t>(i)], one.view({-1}))) << f.files[i];
  }
}

// With a transform (a frozen trunk), images decode a chunk at a time and each chunk is replaced by
// what the transform gives: the same rows as transforming the whole folder at once.
TEST(DataImageFolder, ATransformSeesChunksInSampleOrder) {
  TempDir dir;
  for (int i = 0; i < 7; ++i) put(dir, "c" + std::to_string(i % 2) + "/" + std::to_string(i) + ".png", "gray_7x5.png");
  put(dir, "c1/z.jpg", "rgb_40x30.jpg");
  const ImageFolder whole = load_image_folder(dir.str(), folder_options());
  const auto transform = [](const at::Tensor& rows) { return at::stack({rows.sum(1), rows.amax(1)}, 1); };
  ImageFolderOptions o = folder_options();
  o.chunk = 3;
  std::vector<int64_t> chunk_rows, progress;
  o.transform = [&](const at::Tensor& rows) {
    chunk_rows.push_back(rows.size(0));
    return transform(rows);
  };
  o.progress = [&](int64_t done, int64_t total) {
    EXPECT_EQ(total, 8);
    progress.push_back(done);
  };
  const ImageFolder chunked = load_image_folder(dir.str(), o);
  EXPECT_EQ(chunk_rows, (std::vector<int64_t>{3, 3, 2}));
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), 8);
  EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
  EXPECT_EQ(chunked.files, whole.files);
  EXPECT_TRUE(at::equal(chunked.dataset.labels, whole.dataset.labels));
  EXPECT_EQ(chunked.dataset.sample_shape, (std::vector<int64_t>{2}));
  EXPECT_TRUE(at::allclose(chunked.dataset.features, transform(whole.dataset.features)));

  // A bad file in a later chunk is still named; a transform of the wrong shape is refused.
  put(dir, "c1/8.png", "truncated.png");
  o.progress = nullptr;
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_image_folder(dir.str(), o); }), {"8.png"}));
  fs::remove(dir.file("c1/8.png"));
  o.transform = [](const at::Tensor& rows) { return rows.narrow(0, 0, 1); };
  EXPECT_THROW(load_image_folder(dir.str(), o), std::invalid_argument);
}

TEST(DataImageFolder, UnlabelledImagesDirectlyInTheFolder) {
  TempDir dir;
  put(dir, "b.jpg", "rgb_40x30.jpg");
  put(dir, "a.png", "gray_7x5.png");
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_image_folder(dir.str(), folder_options()); }),
                           {dir.str(), "no class folder", "2 images directly"}));
  ImageFolderOptions o = folder_options(1, 8);
  o.allow_unlabelled = true;
  const ImageFolder f = load_image_folder(dir.str(), o);
  EXPECT_FALSE(f.labelled);
  EXPECT_FALSE(f.dataset.labels.defined());
  EXPECT_TRUE(f.class_names.empty());
  EXPECT_EQ(f.files, (std::vector<std::string>{"a.png", "b.jpg"}));
  EXPECT_EQ(f.dataset.features.sizes(), at::IntArrayRef({2, 64}));
  // Both layouts at once is ambiguous.
  put(dir, "cls/c.png", "gray_7x5.png");
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_image_folder(dir.str(), o); }),
                           {dir.str(), "both class folders and 2 images"}));
}

TEST(DataImageFolder, ProblemsRaiseDataErrorNamingTheFolderOrFile) {
  TempDir dir;
  const std::string missing = dir.file("missing");
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_image_folder(missing, folder_options()); }),
                           {missing, "does not exist"}));
  fs::create_directories(dir.file("empty"));
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_image_folder(dir.file("empty"), folder_options()); }),
                           {dir.file("empty"), "no class folder"}));
  ImageFolderOptions unlabelled = folder_options();
  unlabelled.allow_unlabelled = true;
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_image_folder(dir.file("empty"), unlabelled); }),
                           {dir.file("empty"), "holds no image"}));

  put(dir, "set/cat/1.png", "gray_7x5.png");
  fs::create_directories(dir.file("set/dog"));
  testing::write_text(dir.file("set/dog/readme.txt"), "no image here");
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_image_folder(dir.file("set"), folder_options()); }),
                           {"class folder '" + dir.file("set/dog") + "' holds no image"}));
  fs::remove_all(dir.file("set/dog"));

  for (const std::string bad : {"truncated.png", "random_bytes.png", "broken_header.jpg", "cmyk_8x8.jpg"}) {
    SCOPED_TRACE(bad);
    put(dir, "set/cat/2_" + bad, bad);
    EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_image_folder(dir.file("set"), folder_options()); }),
                             {dir.file("set/cat/2_" + bad)}));
    fs::remove(dir.file("set/cat/2_" + bad));
  }

  put(dir, "set/03/1.png", "gray_7x5.png");
  put(dir, "set/3/1.png", "gray_7x5.png");
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_image_folder(dir.file("set"), folder_options()); }),
                           {"'03' and '3' both get class id 3"}));
  fs::remove_all(dir.file("set/03"));
  ImageFolderOptions known = folder_options();
  known.known = {{"cat", 3}};
  EXPECT_TRUE(
      contains_all(message_of<DataError>([&] { load_image_folder(dir.file("set"), known); }), {"both get class id 3"}));
  EXPECT_NO_THROW(load_image_folder(dir.file("set"), folder_options()));

  ImageFolderOptions bad_options = folder_options();
  bad_options.preprocess.channels = 4;
  EXPECT_THROW(load_image_folder(dir.file("set"), bad_options), std::invalid_argument);
  bad_options = folder_options();
  bad_options.known = {{"cat", -1}};
  EXPECT_THROW(load_image_folder(dir.file("set"), bad_options), std::invalid_argument);
}

/// A folder of 3 classes and 45 images of assorted kinds and sizes.
void fill_many(const TempDir& dir) {
  const std::vector<std::string> kinds = {
      "gray_7x5.png",    "rgb_40x30.png",         "rgba_30x40.png",           "palette_28x28.png",
      "rgb_40x30.jpg",   "progressive_30x40.jpg", "interlaced_rgb_23x17.png", "gray16_12x9.png",
      "rgb444_17x13.jpg"};
  for (int i = 0; i < 45; ++i) {
    const std::string cls = i % 3 == 0 ? "0" : (i % 3 == 1 ? "birds" : "cars");
    const std::string fixture = kinds[static_cast<size_t>(i) % kinds.size()];
    put(dir, cls + "/img" + std::to_string(100 + i) + fs::path(fixture).extension().string(), fixture);
  }
}

TEST(DataImageFolder, SeveralThreadsGiveTheSameDatasetAsOne) {
  TempDir dir;
  fill_many(dir);
  ImageFolderOptions o = folder_options(3, 12);
  o.threads = 1;
  const ImageFolder one = load_image_folder(dir.str(), o);
  o.threads = 4;
  std::vector<std::pair<int64_t, int64_t>> calls;
  o.progress = [&calls](int64_t done, int64_t total) { calls.emplace_back(done, total); };
  const ImageFolder four = load_image_folder(dir.str(), o);
  EXPECT_EQ(one.dataset.size(), 45);
  EXPECT_EQ(one.files, four.files);
  EXPECT_TRUE(at::equal(one.dataset.features, four.dataset.features));
  EXPECT_TRUE(at::equal(one.dataset.labels, four.dataset.labels));
  EXPECT_EQ(one.class_names, four.class_names);
  // Progress: never backwards, always of 45, and once at the end with all done.
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back(), std::make_pair(int64_t{45}, int64_t{45}));
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].second, 45);
    if (i > 0) {
      EXPECT_LE(calls[i - 1].first, calls[i].first);
    }
  }
  o.threads = 0;  // hardware_concurrency
  EXPECT_TRUE(at::equal(load_image_folder(dir.str(), o).dataset.features, one.dataset.features));
}

// Every sample before the first failing one is claimed earlier and finished before the workers stop,
// so any thread count reports the same file: the first bad one in sample order.
TEST(DataImageFolder, TheFirstBadFileInSampleOrderIsReportedWithAnyThreadCount) {
  TempDir dir;
  fill_many(dir);
  put(dir, "birds/img120.png", "truncated.png");  // replaces a good one
  put(dir, "cars/img101.jpg", "truncated.jpg");
  for (const int threads : {1, 2, 4, 8}) {
    SCOPED_TRACE(threads);
    ImageFolderOptions o = folder_options();
    o.threads = threads;
    EXPECT_TRUE(
        contains_all(message_of<DataError>([&] { load_image_folder(dir.str(), o); }), {dir.file("birds/img120.png")}));
  }
}

TEST(DataImageFolder, IsImageFolderLooksAtNamesOnly) {
  TempDir dir;
  EXPECT_FALSE(is_image_folder(dir.file("missing")));
  EXPECT_FALSE(is_image_folder(dir.str()));
  testing::write_text(dir.file("a.png"), "not even decoded");
  EXPECT_FALSE(is_image_folder(dir.str()));
  EXPECT_TRUE(is_image_folder(dir.str(), true));
  fs::create_directories(dir.file("cls"));
  testing::write_text(dir.file("cls/readme.md"), "");
  EXPECT_FALSE(is_image_folder(dir.str()));
  testing::write_text(dir.file("cls/b.JPG"), "");
  EXPECT_TRUE(is_image_folder(dir.str()));
}

TEST(DataImageFolder, AClassIdBeyondInt32AndAFileOverOneGibibyteAreNamed) {
  TempDir dir;
  put(dir, "99999999999/a.png", "gray_7x5.png");
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { load_image_folder(dir.str(), folder_options()); }),
                           {"99999999999", "above the largest class id 2147483647"}));
  // A sparse file: its size is refused before a byte is read.
  TempDir big;
  const std::string huge = big.file("huge.png");
  std::ofstream(huge, std::ios::binary) << "\x89PNG";
  fs::resize_file(huge, (uint64_t{1} << 30) + 1);
  EXPECT_TRUE(contains_all(message_of<DataError>([&] { decode_image(huge); }),
                           {huge, "holds 1073741825 bytes, more than the limit of 1073741824"}));
}

}  // namespace
}  // namespace den::data
