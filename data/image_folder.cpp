#include "data/image_folder.h"

#include <png.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>

// After <cstdio>: jpeglib.h uses FILE and size_t without including their headers.
#include <jerror.h>
#include <jpeglib.h>

namespace den::data {

namespace {

namespace fs = std::filesystem;

std::string in_quotes(const std::string& path) { return "'" + path + "'"; }

std::string dims_text(int64_t width, int64_t height) { return std::to_string(width) + " x " + std::to_string(height); }

/// Image files larger than this are refused before they are read (a 64 Mpx RGBA 16-bit PNG stored
/// without compression is 512 MiB).
constexpr uint64_t kMaxImageFileBytes = uint64_t{1} << 30;
/// A progressive JPEG may hold any number of scans, each a pass over the whole image; libjpeg-turbo's
/// own fuzzers stop at 500.
constexpr int kMaxJpegScans = 500;
/// libjpeg's working memory (a progressive JPEG keeps all its coefficients: 6 bytes a pixel for
/// YCbCr at the pixel limit, 384 MiB).
constexpr long kMaxJpegMemory = 1L << 30;
/// Ancillary PNG chunks (text, ICC profiles) larger than this are an error rather than an allocation.
constexpr png_alloc_size_t kMaxPngChunkBytes = 8u << 20;

/// The size checks every decoder makes on its header, before it allocates pixels.
void check_image_dims(int64_t width, int64_t height, const char* format, const std::string& name) {
  if (width < 1 || height < 1) {
    throw DataError(in_quotes(name) + ": " + format + " header declares an empty image (" + dims_text(width, height) +
                    ")");
  }
  if (width > kMaxImageSide || height > kMaxImageSide) {
    throw DataError(in_quotes(name) + ": " + format + " header declares " + dims_text(width, height) +
                    " pixels, more than the limit of " + std::to_string(kMaxImageSide) + " per side");
  }
  if (width * height > kMaxImagePixels) {
    throw DataError(in_quotes(name) + ": " + format + " header declares " + dims_text(width, height) + " = " +
                    std::to_string(width * height) + " pixels, more than the limit of " +
                    std::to_string(kMaxImagePixels));
  }
}

/// The decoders write interleaved [H, W, C] rows into an uninitialized tensor (pages a failed decode
/// never reaches are never touched); this makes it [C, H, W]. A plain loop rather than
/// permute().contiguous(): load_image_folder calls it on several threads, and ATen's copy would start
/// an intra-op thread team inside each.
at::Tensor planar(const at::Tensor& hwc) {
  const int64_t height = hwc.size(0), width = hwc.size(1), channels = hwc.size(2);
  if (channels == 1) return hwc.view({1, height, width});
  at::Tensor out = at::empty({channels, height, width}, at::kByte);
  const uint8_t* src = hwc.data_ptr<uint8_t>();
  uint8_t* dst = out.data_ptr<uint8_t>();
  const int64_t plane = height * width;
  for (int64_t i = 0; i < plane; ++i) {
    for (int64_t c = 0; c < channels; ++c) dst[c * plane + i] = src[i * channels + c];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// PNG. libpng reports errors by png_longjmp to the setjmp of the function that called into it:
// png_read_header and png_read_pixels below hold nothing but trivially destructible locals, and the
// callbacks never throw; every C++ object (the pixel buffer, the row pointers, the guard that frees
// libpng's structs) lives in decode_png, which has no setjmp.

struct PngInput {  // trivially destructible: it outlives every longjmp
  const uint8_t* data;
  size_t size;
  size_t pos;
  char message[256];
};

void png_error_callback(png_structp png, png_const_charp message) {
  auto* input = static_cast<PngInput*>(png_get_error_ptr(png));
  std::snprintf(input->message, sizeof input->message, "%s", message != nullptr ? message : "libpng error");
  png_longjmp(png, 1);
}

void png_warning_callback(png_structp, png_const_charp) {}  // warnings are fixes libpng made, not errors

void png_read_callback(png_structp png, png_bytep out, size_t length) {
  auto* input = static_cast<PngInput*>(png_get_io_ptr(png));
  if (length > input->size - input->pos) png_error(png, "the file ends early");
  std::memcpy(out, input->data + input->pos, length);
  input->pos += length;
}

/// What the header says, and the decoded layout after the transforms.
struct PngHeader {
  png_uint_32 width, height;
  int bit_depth, file_channels;  // as stored
  int channels;                  // after the transforms: 1 or 3
  int out_bit_depth;
  size_t rowbytes;
};

/// Reads the chunks up to the first IDAT and sets the transforms: palette to RGB, gray 1/2/4-bit to
/// 8, 16-bit to its high byte, alpha dropped (tRNS too: palette_to_rgb expands it into an alpha
/// channel, stripped with the others), Adam7 passes combined. False with input->message on an error.
bool png_read_header(png_structp png, png_infop info, PngHeader* header) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_info(png, info);
  header->width = png_get_image_width(png, info);
  header->height = png_get_image_height(png, info);
  header->bit_depth = png_get_bit_depth(png, info);
  header->file_channels = png_get_channels(png, info);
  const int color_type = png_get_color_type(png, info);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && header->bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (header->bit_depth == 16) png_set_strip_16(png);
  png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  header->channels = png_get_channels(png, info);
  header->out_bit_depth = png_get_bit_depth(png, info);
  header->rowbytes = png_get_rowbytes(png, info);
  return true;
}

/// Decodes every pass into `rows`, then reads the chunks after the image (their CRCs included).
bool png_read_pixels(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return true;
}

struct PngStructs {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngStructs() {
    if (png != nullptr) png_destroy_read_struct(&png, info != nullptr ? &info : nullptr, nullptr);
  }
};

at::Tensor decode_png(const uint8_t* data, size_t size, const std::string& name) {
  // The IHDR is the first chunk; its size fields are checked here, with their values in the
  // message, before libpng reads anything (png_set_user_limits below is the backstop).
  if (size >= 24 && std::memcmp(data + 12, "IHDR", 4) == 0) {
    auto be32 = [&](size_t at) {
      return (int64_t{data[at]} << 24) | (int64_t{data[at + 1]} << 16) | (int64_t{data[at + 2]} << 8) |
             int64_t{data[at + 3]};
    };
    const int64_t width = be32(16), height = be32(20);
    if (width > 0 && height > 0) check_image_dims(width, height, "PNG", name);
  }

  PngInput input{data, size, 0, {}};
  PngStructs structs;
  structs.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &input, png_error_callback, png_warning_callback);
  if (structs.png == nullptr) throw DataError(in_quotes(name) + ": libpng could not start (out of memory?)");
  structs.info = png_create_info_struct(structs.png);
  if (structs.info == nullptr) throw DataError(in_quotes(name) + ": libpng could not start (out of memory?)");
  png_set_read_fn(structs.png, &input, png_read_callback);
  png_set_user_limits(structs.png, static_cast<png_uint_32>(kMaxImageSide), static_cast<png_uint_32>(kMaxImageSide));
  png_set_chunk_malloc_max(structs.png, kMaxPngChunkBytes);
  png_set_chunk_cache_max(structs.png, 1000);

  PngHeader header{};
  if (!png_read_header(structs.png, structs.info, &header)) {
    throw DataError(in_quotes(name) + ": corrupt or truncated PNG (libpng: " + input.message + ")");
  }
  const int64_t width = header.width, height = header.height;
  check_image_dims(width, height, "PNG", name);
  // Deflate cannot compress more than 1032:1: a header that declares more pixel bytes than the
  // file could hold is refused before the pixels are allocated.
  const uint64_t packed_bytes =
      (static_cast<uint64_t>(width) * height * header.file_channels * header.bit_depth + 7) / 8;
  if (packed_bytes > static_cast<uint64_t>(size) * 1032 + 1024) {
    throw DataError(in_quotes(name) + ": PNG header declares " + dims_text(width, height) + " pixels (" +
                    std::to_string(packed_bytes) + " bytes), more than a " + std::to_string(size) +
                    "-byte PNG can hold: the file is truncated or corrupt");
  }
  if ((header.channels != 1 && header.channels != 3) || header.out_bit_depth != 8 ||
      header.rowbytes != static_cast<size_t>(width * header.channels)) {
    throw DataError(in_quotes(name) + ": unsupported PNG layout (" + std::to_string(header.channels) + " channels of " +
                    std::to_string(header.out_bit_depth) + " bits after conversion)");
  }

  const at::Tensor pixels = at::empty({height, width, header.channels}, at::kByte);
  std::vector<png_bytep> rows(static_cast<size_t>(height));
  for (int64_t y = 0; y < height; ++y) rows[y] = pixels.data_ptr<uint8_t>() + y * width * header.channels;
  if (!png_read_pixels(structs.png, rows.data())) {
    throw DataError(in_quotes(name) + ": corrupt or truncated PNG (libpng: " + input.message + ")");
  }
  return planar(pixels);
}

// ---------------------------------------------------------------------------------------------
// JPEG. libjpeg reports errors through error_exit, which must not return: it longjmps to the setjmp
// of the function that called into libjpeg, under the same rules as the PNG code above.

struct JpegErrors {  // trivially destructible; `pub` first, as libjpeg casts cinfo->err to it
  jpeg_error_mgr pub;
  jmp_buf jump;
  bool stop_on_missing_data;
  char message[JMSG_LENGTH_MAX + 64];
};

void jpeg_fail(j_common_ptr cinfo, const char* text) {
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  if (text != nullptr) {
    std::snprintf(errors->message, sizeof errors->message, "%s", text);
  } else {
    char buffer[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buffer);
    std::snprintf(errors->message, sizeof errors->message, "%s", buffer);
  }
  std::longjmp(errors->jump, 1);
}

void jpeg_error_exit_callback(j_common_ptr cinfo) { jpeg_fail(cinfo, nullptr); }

/// Warnings (level -1) are damage libjpeg worked around, and PIL lets it (extraneous bytes before a
/// marker are common in camera files). Missing data is the exception: libjpeg would pad the rest of
/// the image with gray, so the end of the file (JWRN_JPEG_EOF) or of a scan's data (JWRN_HIT_MARKER)
/// before the last pixel is an error, as PIL's "image file is truncated" is. After the last scan
/// line it is not: a missing EOI marker loses nothing.
void jpeg_emit_message_callback(j_common_ptr cinfo, int level) {
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  const int code = cinfo->err->msg_code;
  if (level < 0 && errors->stop_on_missing_data && (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER)) {
    jpeg_fail(cinfo, nullptr);
  }
}

void jpeg_output_message_callback(j_common_ptr) {}

void jpeg_progress_callback(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  if (reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > kMaxJpegScans) {
    jpeg_fail(cinfo, "more than 500 scans in a progressive JPEG");
  }
}

/// Starts the decoder on `data` and reads the header. False with errors->message on an error.
bool jpeg_open(j_decompress_ptr cinfo, JpegErrors* errors, jpeg_progress_mgr* progress, const uint8_t* data,
               size_t size) {
  if (setjmp(errors->jump)) return false;
  jpeg_create_decompress(cinfo);  // clears cinfo but for err and client_data
  cinfo->mem->max_memory_to_use = kMaxJpegMemory;
  cinfo->progress = progress;
  jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(cinfo, TRUE);
  return true;
}

/// Decodes into `pixels` (output_height rows of output_width * output_components bytes, allocated
/// by the caller from the header). `out_color_space` is set by the caller.
bool jpeg_read_pixels(j_decompress_ptr cinfo, JpegErrors* errors, uint8_t* pixels, size_t row_bytes,
                      JDIMENSION expected_height) {
  if (setjmp(errors->jump)) return false;
  jpeg_start_decompress(cinfo);
  if (cinfo->output_height != expected_height || cinfo->output_width * cinfo->output_components != row_bytes) {
    jpeg_fail(reinterpret_cast<j_common_ptr>(cinfo), "the decoder's output size differs from the header's");
  }
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = pixels + static_cast<size_t>(cinfo->output_scanline) * row_bytes;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  errors->stop_on_missing_data = false;
  jpeg_finish_decompress(cinfo);
  return true;
}

struct JpegStruct {
  jpeg_decompress_struct cinfo{};
  bool created = false;
  ~JpegStruct() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

const char* jpeg_color_space_name(J_COLOR_SPACE space) {
  switch (space) {
    case JCS_CMYK:
      return "CMYK";
    case JCS_YCCK:
      return "YCCK";
    case JCS_UNKNOWN:
      return "unknown";
    default:
      return "other";
  }
}

at::Tensor decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  JpegErrors errors{};
  errors.stop_on_missing_data = true;
  jpeg_progress_mgr progress{};
  progress.progress_monitor = jpeg_progress_callback;
  JpegStruct decoder;
  decoder.cinfo.err = jpeg_std_error(&errors.pub);
  errors.pub.error_exit = jpeg_error_exit_callback;
  errors.pub.emit_message = jpeg_emit_message_callback;
  errors.pub.output_message = jpeg_output_message_callback;
  decoder.created = true;  // jpeg_destroy_decompress is safe on a zeroed or half-created struct
  if (!jpeg_open(&decoder.cinfo, &errors, &progress, data, size)) {
    throw DataError(in_quotes(name) + ": corrupt or truncated JPEG (libjpeg: " + errors.message + ")");
  }
  const int64_t width = decoder.cinfo.image_width, height = decoder.cinfo.image_height;
  check_image_dims(width, height, "JPEG", name);
  const J_COLOR_SPACE space = decoder.cinfo.jpeg_color_space;
  int64_t channels = 0;
  if (space == JCS_GRAYSCALE && decoder.cinfo.num_components == 1) {
    decoder.cinfo.out_color_space = JCS_GRAYSCALE;
    channels = 1;
  } else if ((space == JCS_YCbCr || space == JCS_RGB) && decoder.cinfo.num_components == 3) {
    decoder.cinfo.out_color_space = JCS_RGB;
    channels = 3;
  } else {
    throw DataError(in_quotes(name) + ": unsupported JPEG colour space " + jpeg_color_space_name(space) + " with " +
                    std::to_string(decoder.cinfo.num_components) +
                    " components (only gray, YCbCr and RGB are read; convert the image to RGB)");
  }

  const size_t row_bytes = static_cast<size_t>(width * channels);
  const at::Tensor pixels = at::empty({height, width, channels}, at::kByte);
  if (!jpeg_read_pixels(&decoder.cinfo, &errors, pixels.data_ptr<uint8_t>(), row_bytes,
                        static_cast<JDIMENSION>(height))) {
    const bool truncated = errors.pub.msg_code == JWRN_JPEG_EOF || errors.pub.msg_code == JWRN_HIT_MARKER;
    throw DataError(in_quotes(name) + (truncated ? ": truncated JPEG (libjpeg: " : ": corrupt JPEG (libjpeg: ") +
                    errors.message + ")");
  }
  return planar(pixels);
}

// ---------------------------------------------------------------------------------------------
// Preprocessing.

/// Which inputs one axis of the antialiased bilinear resize reads, with their weights, for output
/// indices [first, first + count) of an axis resized from `in_size` to `out_size` (ATen's
/// _compute_weights_aa with interp_size 2, PIL's precompute_coeffs with its bilinear filter).
struct AxisWeights {
  std::vector<int64_t> start;   ///< first input index of each output
  std::vector<int64_t> length;  ///< how many inputs it reads
  std::vector<double> weight;   ///< `taps` per output, the first `length` used
  int64_t taps = 0;
};

AxisWeights axis_weights(int64_t in_size, int64_t out_size, int64_t first, int64_t count) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  // Downscaling widens the triangle to the input pixels one output pixel covers.
  const double support = scale >= 1.0 ? scale : 1.0;
  const double inv_scale = scale >= 1.0 ? 1.0 / scale : 1.0;
  AxisWeights w;
  w.taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  w.start.resize(static_cast<size_t>(count));
  w.length.resize(static_cast<size_t>(count));
  w.weight.assign(static_cast<size_t>(count * w.taps), 0.0);
  for (int64_t k = 0; k < count; ++k) {
    const double center = scale * (static_cast<double>(first + k) + 0.5);
    // Truncation as in ATen and PIL (the lower bound is clamped to 0 anyway).
    int64_t lo = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t hi = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in_size);
    lo = std::min(lo, in_size - 1);
    const int64_t length = std::min(std::max<int64_t>(hi - lo, 1), w.taps);
    double* out = &w.weight[static_cast<size_t>(k * w.taps)];
    double total = 0.0;
    for (int64_t j = 0; j < length; ++j) {
      const double x = std::abs((static_cast<double>(j + lo) - center + 0.5) * inv_scale);
      out[j] = x < 1.0 ? 1.0 - x : 0.0;
      total += out[j];
    }
    if (total != 0.0) {
      for (int64_t j = 0; j < length; ++j) out[j] /= total;
    }
    w.start[static_cast<size_t>(k)] = lo;
    w.length[static_cast<size_t>(k)] = length;
  }
  return w;
}

/// torchvision's CenterCrop offset: int(round(diff / 2.0)), Python's round taking halves to even.
int64_t center_offset(int64_t diff) {
  const int64_t half = diff / 2;
  if (diff % 2 == 0) return half;
  return half % 2 == 0 ? half : half + 1;
}

/// PIL's convert("L") of RGB (Convert.c, L24): ITU-R 601-2 luma in 16-bit fixed point.
inline uint8_t pil_luma(uint8_t r, uint8_t g, uint8_t b) {
  return static_cast<uint8_t>((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

/// The preprocessing on raw memory: `image` uint8 [c0, h0, w0] contiguous, `out` float
/// [channels, height, width].
void preprocess_into(const uint8_t* image, int64_t c0, int64_t h0, int64_t w0, const ImagePreprocess& p,
                     const std::string& name, float* out) {
  const int64_t plane0 = h0 * w0;
  // 1. Channels, on uint8.
  std::vector<uint8_t> converted;
  const uint8_t* src = image;
  if (p.channels == 1 && c0 == 3) {
    converted.resize(static_cast<size_t>(plane0));
    for (int64_t i = 0; i < plane0; ++i) converted[i] = pil_luma(image[i], image[plane0 + i], image[2 * plane0 + i]);
    src = converted.data();
  }
  // Gray to RGB replicates: channel c reads plane `c * channel_step`.
  const int64_t channel_step = (p.channels == 3 && c0 == 1) ? 0 : plane0;

  const int64_t height = p.height, width = p.width;
  const int64_t plane = height * width;
  // Exactly b / 255 in float32, as torchvision's tensor division computes it.
  float unit[256];
  for (int b = 0; b < 256; ++b) unit[b] = static_cast<float>(b) / 255.0f;

  if (h0 == height && w0 == width) {
    for (int64_t c = 0; c < p.channels; ++c) {
      const uint8_t* in = src + c * channel_step;
      for (int64_t i = 0; i < plane; ++i) out[c * plane + i] = unit[in[i]];
    }
  } else {
    // 2. The resize: the shorter side to `resize`, the longer as torchvision's int(resize * long / short).
    const int64_t resize = p.resize > 0 ? p.resize : std::max(height, width);
    int64_t new_h = resize, new_w = resize;
    if (w0 <= h0) {
      new_h = static_cast<int64_t>(static_cast<double>(resize * h0) / static_cast<double>(w0));
    } else {
      new_w = static_cast<int64_t>(static_cast<double>(resize * w0) / static_cast<double>(h0));
    }
    if (new_h < height || new_w < width) {
      throw DataError(in_quotes(name) + ": the image of " + dims_text(w0, h0) + " pixels resized to " +
                      dims_text(new_w, new_h) + " (shorter side " + std::to_string(resize) +
                      ") is smaller than the crop of " + dims_text(width, height) +
                      "; use a resize of at least max(height, width)");
    }
    // 3. Only the crop is computed: its rows and columns of the resized image.
    const AxisWeights rows = axis_weights(h0, new_h, center_offset(new_h - height), height);
    const AxisWeights cols = axis_weights(w0, new_w, center_offset(new_w - width), width);
    int64_t y_lo = h0, y_hi = 0;
    for (int64_t k = 0; k < height; ++k) {
      y_lo = std::min(y_lo, rows.start[k]);
      y_hi = std::max(y_hi, rows.start[k] + rows.length[k]);
    }
    // Horizontal pass over the input rows the crop reads, then the vertical pass (ATen's order).
    std::vector<double> tmp(static_cast<size_t>((y_hi - y_lo) * width));
    for (int64_t c = 0; c < p.channels; ++c) {
      const uint8_t* in = src + c * channel_step;
      for (int64_t y = y_lo; y < y_hi; ++y) {
        const uint8_t* line = in + y * w0;
        double* t = &tmp[static_cast<size_t>((y - y_lo) * width)];
        for (int64_t x = 0; x < width; ++x) {
          const double* wt = &cols.weight[static_cast<size_t>(x * cols.taps)];
          const uint8_t* px = line + cols.start[x];
          double acc = 0.0;
          for (int64_t j = 0; j < cols.length[x]; ++j) acc += wt[j] * px[j];
          t[x] = acc;
        }
      }
      float* o = out + c * plane;
      for (int64_t y = 0; y < height; ++y) {
        const double* wt = &rows.weight[static_cast<size_t>(y * rows.taps)];
        const double* base = &tmp[static_cast<size_t>((rows.start[y] - y_lo) * width)];
        for (int64_t x = 0; x < width; ++x) {
          double acc = 0.0;
          for (int64_t j = 0; j < rows.length[y]; ++j) acc += wt[j] * base[j * width + x];
          o[y * width + x] = static_cast<float>(acc) / 255.0f;
        }
      }
    }
  }
  // 4. Normalize, in float32 as torchvision's normalize.
  if (!p.mean.empty() || !p.std.empty()) {
    for (int64_t c = 0; c < p.channels; ++c) {
      const float mean = p.mean.empty() ? 0.0f : static_cast<float>(p.mean[c]);
      const float std = p.std.empty() ? 1.0f : static_cast<float>(p.std[c]);
      float* o = out + c * plane;
      for (int64_t i = 0; i < plane; ++i) o[i] = (o[i] - mean) / std;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Folders.

bool is_hidden(const std::string& name) { return !name.empty() && name[0] == '.'; }

bool has_image_extension(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

struct Listing {
  std::vector<std::string> folders;  ///< non-hidden subfolders
  std::vector<std::string> images;   ///< non-hidden regular files with an image extension
};

/// The sorted names in `dir`; throws DataError when it cannot be read.
Listing list_folder(const fs::path& dir) {
  Listing listing;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (is_hidden(name)) continue;
    std::error_code type_ec;
    if (it->is_directory(type_ec)) {
      listing.folders.push_back(name);
    } else if (it->is_regular_file(type_ec) && has_image_extension(name)) {
      listing.images.push_back(name);
    }
  }
  if (ec) throw DataError("cannot list folder " + in_quotes(dir.string()) + ": " + ec.message());
  std::sort(listing.folders.begin(), listing.folders.end());
  std::sort(listing.images.begin(), listing.images.end());
  return listing;
}

/// The class id a folder name states ("3"), or -1 when it is not a non-negative integer.
int64_t integer_class(const std::string& name, const std::string& dir) {
  if (name.empty() || !std::all_of(name.begin(), name.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) return -1;
  const size_t digits =
      name.find_first_not_of('0') == std::string::npos ? 1 : name.size() - name.find_first_not_of('0');
  int64_t id = 0;
  if (digits <= 10) id = std::stoll(name);
  if (digits > 10 || id > INT32_MAX) {
    throw DataError("class folder " + in_quotes((fs::path(dir) / name).string()) + " names class " + name +
                    ", above the largest class id " + std::to_string(INT32_MAX));
  }
  return id;
}

struct Sample {
  std::string relative;  ///< "class/file.png"
  int64_t label;
};

/// Decodes and preprocesses samples[i] into row i of `features` on `threads` workers; the calling
/// thread reports progress. An error in the lowest-numbered failing sample is rethrown: every sample
/// before it was claimed earlier and is finished before the workers stop, so it is the same error
/// as a single thread would meet first.
void decode_all(const fs::path& root, const std::vector<Sample>& samples, const ImageFolderOptions& options,
                float* features, int64_t row_size) {
  const int64_t total = static_cast<int64_t>(samples.size());
  int threads = options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, total)));

  std::atomic<int64_t> next{0}, done{0};
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::condition_variable finished_cv;
  int finished = 0;
  int64_t error_index = std::numeric_limits<int64_t>::max();
  std::exception_ptr error;

  auto work = [&] {
    while (!stop.load()) {
      const int64_t i = next.fetch_add(1);
      if (i >= total) break;
      try {
        const std::string path = (root / samples[static_cast<size_t>(i)].relative).string();
        const at::Tensor image = decode_image(path);
        preprocess_into(image.data_ptr<uint8_t>(), image.size(0), image.size(1), image.size(2), options.preprocess,
                        path, features + i * row_size);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (i < error_index) {
          error_index = i;
          error = std::current_exception();
        }
        stop.store(true);
      }
      done.fetch_add(1);
    }
    std::lock_guard<std::mutex> lock(mutex);
    ++finished;
    finished_cv.notify_all();
  };

  std::vector<std::thread> workers;
  // Joins the workers however this function ends (a failed thread start, a throwing callback).
  struct Joiner {
    std::vector<std::thread>& workers;
    std::atomic<bool>& stop;
    ~Joiner() {
      stop.store(true);
      for (auto& t : workers) {
        if (t.joinable()) t.join();
      }
    }
  } joiner{workers, stop};
  workers.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) workers.emplace_back(work);

  int64_t reported = -1;
  std::unique_lock<std::mutex> lock(mutex);
  while (finished < threads) {
    finished_cv.wait_for(lock, std::chrono::milliseconds(100));
    const int64_t now = done.load();
    if (options.progress && now != reported && finished < threads && !stop.load()) {
      lock.unlock();
      options.progress(now, total);
      lock.lock();
      reported = now;
    }
  }
  lock.unlock();
  for (auto& t : workers) t.join();
  if (error) std::rethrow_exception(error);
  if (options.progress) options.progress(total, total);
}

}  // namespace

at::Tensor decode_image_bytes(const uint8_t* data, size_t size, const std::string& name) {
  static const uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= 8 && std::memcmp(data, kPngSignature, 8) == 0) return decode_png(data, size, name);
  if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) return decode_jpeg(data, size, name);
  if (size == 0) throw DataError("image file " + in_quotes(name) + " is empty");
  std::string start;
  for (size_t i = 0; i < std::min<size_t>(size, 4); ++i) {
    char byte[8];
    std::snprintf(byte, sizeof byte, " 0x%02x", data[i]);
    start += byte;
  }
  throw DataError(in_quotes(name) + " is neither a PNG nor a JPEG file (it starts with" + start + ")");
}

at::Tensor decode_image(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw DataError("image file " + in_quotes(path) + " does not exist");
  const uint64_t bytes = fs::file_size(path, ec);
  if (ec) throw DataError("cannot read image file " + in_quotes(path) + ": " + ec.message());
  if (bytes > kMaxImageFileBytes) {
    throw DataError("image file " + in_quotes(path) + " holds " + std::to_string(bytes) +
                    " bytes, more than the limit of " + std::to_string(kMaxImageFileBytes));
  }
  std::vector<uint8_t> data(static_cast<size_t>(bytes));
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) throw DataError("cannot open image file " + in_quotes(path));
  const size_t got = data.empty() ? 0 : std::fread(data.data(), 1, data.size(), file);
  std::fclose(file);
  if (got != data.size()) throw DataError("cannot read image file " + in_quotes(path) + " (it changed while read?)");
  return decode_image_bytes(data.data(), data.size(), path);
}

void check_preprocess(const ImagePreprocess& p) {
  auto fail = [](const std::string& text) { throw std::invalid_argument("image preprocessing: " + text); };
  if (p.channels != 1 && p.channels != 3) fail("channels is " + std::to_string(p.channels) + ", must be 1 or 3");
  if (p.height < 1 || p.height > kMaxImageSide) {
    fail("height is " + std::to_string(p.height) + ", must be in [1, " + std::to_string(kMaxImageSide) + "]");
  }
  if (p.width < 1 || p.width > kMaxImageSide) {
    fail("width is " + std::to_string(p.width) + ", must be in [1, " + std::to_string(kMaxImageSide) + "]");
  }
  if (p.resize < 0 || p.resize > kMaxImageSide) {
    fail("resize is " + std::to_string(p.resize) + ", must be in [0, " + std::to_string(kMaxImageSide) +
         "] (0: max(height, width))");
  }
  for (const auto* field : {&p.mean, &p.std}) {
    const char* what = field == &p.mean ? "mean" : "std";
    if (!field->empty() && static_cast<int64_t>(field->size()) != p.channels) {
      fail(std::string(what) + " has " + std::to_string(field->size()) + " values, must be empty or one per channel (" +
           std::to_string(p.channels) + ")");
    }
    for (size_t c = 0; c < field->size(); ++c) {
      const double v = (*field)[c];
      if (!std::isfinite(v)) fail(std::string(what) + "[" + std::to_string(c) + "] is not finite");
      if (field == &p.std && v <= 0.0) fail("std[" + std::to_string(c) + "] is " + std::to_string(v) + ", must be > 0");
    }
  }
}

at::Tensor preprocess_image(const at::Tensor& image, const ImagePreprocess& preprocess, const std::string& name) {
  check_preprocess(preprocess);
  if (!image.defined() || image.dim() != 3 || image.scalar_type() != at::kByte ||
      (image.size(0) != 1 && image.size(0) != 3) || image.size(1) < 1 || image.size(2) < 1) {
    throw std::invalid_argument("preprocess_image(" + in_quotes(name) +
                                "): the image must be uint8 [1 or 3, H, W], got " +
                                (image.defined() ? std::string(image.toString()) + " " + c10::str(image.sizes())
                                                 : std::string("an undefined tensor")));
  }
  const at::Tensor in = image.contiguous();
  at::Tensor out = at::empty({preprocess.channels, preprocess.height, preprocess.width}, at::kFloat);
  preprocess_into(in.data_ptr<uint8_t>(), in.size(0), in.size(1), in.size(2), preprocess, name, out.data_ptr<float>());
  return out;
}

ImageFolder load_image_folder(const std::string& dir, const ImageFolderOptions& options) {
  check_preprocess(options.preprocess);
  if (options.threads < 0) throw std::invalid_argument("image folder: threads is " + std::to_string(options.threads));
  if (options.first_free_id < 0) {
    throw std::invalid_argument("image folder: first_free_id is " + std::to_string(options.first_free_id) +
                                ", must be >= 0");
  }
  for (const auto& [name, id] : options.known) {
    if (id < 0)
      throw std::invalid_argument("image folder: known class " + in_quotes(name) + " has id " + std::to_string(id));
  }
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw DataError("image folder " + in_quotes(dir) + " does not exist");
  const Listing top = list_folder(root);

  ImageFolder result;
  std::vector<Sample> samples;
  if (top.folders.empty()) {
    if (!options.allow_unlabelled) {
      throw DataError("image folder " + in_quotes(dir) + " holds no class folder (DIR/<class>/*.png|jpg|jpeg)" +
                      (top.images.empty() ? std::string()
                                          : "; it holds " + std::to_string(top.images.size()) +
                                                " images directly, which are read only as unlabelled images"));
    }
    if (top.images.empty()) throw DataError("image folder " + in_quotes(dir) + " holds no image (.png, .jpg or .jpeg)");
    result.labelled = false;
    for (const auto& name : top.images) samples.push_back({name, -1});
  } else {
    if (options.allow_unlabelled && !top.images.empty()) {
      throw DataError("image folder " + in_quotes(dir) + " holds both class folders and " +
                      std::to_string(top.images.size()) + " images directly (" + top.images.front() +
                      "...): use one layout, DIR/<class>/*.png for labelled images or DIR/*.png for unlabelled ones");
    }
    // Class ids: integer names first, then the other names in sorted order.
    std::map<std::string, int64_t> ids;
    int64_t next_free = options.first_free_id;
    for (const auto& [name, id] : options.known) next_free = std::max(next_free, id + 1);
    for (const auto& name : top.folders) {
      const int64_t id = integer_class(name, dir);
      if (id >= 0) {
        ids[name] = id;
        next_free = std::max(next_free, id + 1);
      }
    }
    for (const auto& name : top.folders) {
      if (ids.count(name) != 0) continue;
      const auto known = options.known.find(name);
      ids[name] = known != options.known.end() ? known->second : next_free++;
    }
    for (const auto& name : top.folders) {
      const int64_t id = ids[name];
      const auto [it, inserted] = result.class_names.emplace(id, name);
      if (!inserted) {
        throw DataError("image folder " + in_quotes(dir) + ": class folders " + in_quotes(it->second) + " and " +
                        in_quotes(name) + " both get class id " + std::to_string(id));
      }
      const Listing inside = list_folder(root / name);
      if (inside.images.empty()) {
        throw DataError("class folder " + in_quotes((root / name).string()) + " holds no image (.png, .jpg or .jpeg)");
      }
      for (const auto& file : inside.images) samples.push_back({name + "/" + file, id});
    }
  }

  const ImagePreprocess& p = options.preprocess;
  const int64_t n = static_cast<int64_t>(samples.size());
  const int64_t row_size = p.channels * p.height * p.width;
  const auto allocate = [&](int64_t rows, int64_t width) {
    try {
      return at::empty({rows, width}, at::kFloat);
    } catch (const std::exception&) {
      throw DataError("image folder " + in_quotes(dir) + ": cannot allocate " + std::to_string(rows) + " x " +
                      std::to_string(width) + " floats for its images");
    }
  };
  if (!options.transform) {
    result.dataset.features = allocate(n, row_size);
    decode_all(root, samples, options, result.dataset.features.data_ptr<float>(), row_size);
    result.dataset.sample_shape = {p.channels, p.height, p.width};
  } else {
    const int64_t chunk =
        options.chunk > 0 ? options.chunk : std::max<int64_t>(1, kTransformChunkBytes / (row_size * 4));
    const at::Tensor images = allocate(std::min(chunk, n), row_size);
    ImageFolderOptions part = options;
    for (int64_t start = 0; start < n; start += chunk) {
      const int64_t rows = std::min(chunk, n - start);
      const std::vector<Sample> slice(samples.begin() + start, samples.begin() + start + rows);
      if (options.progress) part.progress = [&](int64_t done, int64_t) { options.progress(start + done, n); };
      decode_all(root, slice, part, images.data_ptr<float>(), row_size);
      const at::Tensor out = options.transform(images.narrow(0, 0, rows));
      if (out.dim() != 2 || out.size(0) != rows || out.scalar_type() != at::kFloat ||
          (start > 0 && out.size(1) != result.dataset.features.size(1))) {
        throw std::invalid_argument("image folder: the transform gave " + c10::str(out.sizes()) + " for " +
                                    std::to_string(rows) + " images");
      }
      if (start == 0) result.dataset.features = allocate(n, out.size(1));
      result.dataset.features.narrow(0, start, rows).copy_(out);
    }
    result.dataset.sample_shape = {result.dataset.features.size(1)};
  }
  result.files.reserve(samples.size());
  for (const auto& s : samples) result.files.push_back(s.relative);
  if (result.labelled) {
    at::Tensor labels = at::empty({n}, at::kLong);
    int64_t* l = labels.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) l[i] = samples[static_cast<size_t>(i)].label;
    result.dataset.labels = labels;
    result.dataset.num_classes = result.class_names.rbegin()->first + 1;
  }
  return result;
}

std::string first_image(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw DataError("image folder " + in_quotes(dir) + " does not exist");
  for (const auto& name : list_folder(dir).folders) {
    const Listing inside = list_folder(fs::path(dir) / name);
    if (!inside.images.empty()) return name + "/" + inside.images.front();
  }
  throw DataError("image folder " + in_quotes(dir) + " holds no class folder with an image (DIR/<class>/*.png|jpg|jpeg)");
}

bool is_image_folder(const std::string& dir, bool allow_unlabelled) {
  try {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return false;
    const Listing top = list_folder(dir);
    if (allow_unlabelled && !top.images.empty()) return true;
    for (const auto& name : top.folders) {
      if (!list_folder(fs::path(dir) / name).images.empty()) return true;
    }
  } catch (const DataError&) {
  }
  return false;
}

}  // namespace den::data
