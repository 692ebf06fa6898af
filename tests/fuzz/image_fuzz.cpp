// libFuzzer target for the image decoders (den::data::decode_image_bytes: libpng, libjpeg-turbo and
// den's code around them): any input must decode or raise data::DataError; another exception, a
// crash, a hang, a huge allocation or a sanitizer report is a bug. A decoded image is preprocessed
// to a small gray and a small normalized RGB input, which must be finite.
//
// Debian's libpng and libjpeg-turbo are not instrumented, so libFuzzer cannot learn PNG's chunk
// CRCs: a PNG input is also decoded with every CRC recomputed, so that mutations get past the CRC
// checks into the image data and den's transforms.
//
// Build and run: tests/fuzz/README.md.

#include <zlib.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "data/image_folder.h"

namespace {

den::data::ImagePreprocess small(int64_t channels, int64_t height, int64_t width) {
  den::data::ImagePreprocess p;
  p.channels = channels;
  p.height = height;
  p.width = width;
  if (channels == 3) {
    p.mean = {0.485, 0.456, 0.406};
    p.std = {0.229, 0.224, 0.225};
  }
  return p;
}

void decode(const uint8_t* data, size_t size) {
  static const den::data::ImagePreprocess gray = small(1, 7, 5);
  static const den::data::ImagePreprocess rgb = small(3, 8, 8);
  try {
    const at::Tensor image = den::data::decode_image_bytes(data, size, "fuzz input");
    for (const den::data::ImagePreprocess* p : {&gray, &rgb}) {
      const at::Tensor out = den::data::preprocess_image(image, *p, "fuzz input");
      if (!at::isfinite(out).all().item<bool>()) std::abort();
    }
  } catch (const den::data::DataError&) {
  }
}

/// `png` with the CRC of every whole chunk recomputed; false when there is none to fix.
bool fix_png_crcs(std::vector<uint8_t>& png) {
  static const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (png.size() < 8 || std::memcmp(png.data(), kSignature, 8) != 0) return false;
  bool changed = false;
  size_t at = 8;
  while (at + 12 <= png.size()) {
    const size_t length =
        (size_t{png[at]} << 24) | (size_t{png[at + 1]} << 16) | (size_t{png[at + 2]} << 8) | png[at + 3];
    if (length > png.size() - at - 12) break;
    const uint32_t crc = static_cast<uint32_t>(crc32(0, png.data() + at + 4, static_cast<uInt>(length + 4)));
    uint8_t* out = png.data() + at + 8 + length;
    const uint8_t bytes[4] = {static_cast<uint8_t>(crc >> 24), static_cast<uint8_t>(crc >> 16),
                              static_cast<uint8_t>(crc >> 8), static_cast<uint8_t>(crc)};
    if (std::memcmp(out, bytes, 4) != 0) {
      std::memcpy(out, bytes, 4);
      changed = true;
    }
    at += length + 12;
  }
  return changed;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  decode(data, size);
  std::vector<uint8_t> fixed(data, data + size);
  if (fix_png_crcs(fixed)) decode(fixed.data(), fixed.size());
  return 0;
}
