#pragma once

// Images as data: PNG and JPEG decoding, the preprocessing that turns an image into a model's input,
// and folders of images laid out one folder per class.
//
// Decoding goes through libpng and libjpeg-turbo: they are the reference decoders of their formats,
// hardened and fuzzed upstream (OSS-Fuzz), packaged by Debian (security updates come with the
// system), and small. Both report errors by longjmp; image_folder.cpp keeps every C++ object out of
// the frames a longjmp crosses.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace den::data {

/// The largest image a decoder accepts, checked against the file's header before any pixel buffer
/// is allocated: at most kMaxImageSide pixels per side and kMaxImagePixels pixels in all (64 Mpx,
/// 192 MiB as RGB bytes).
constexpr int64_t kMaxImageSide = 32768;
constexpr int64_t kMaxImagePixels = int64_t{1} << 26;

/// Decodes a PNG or JPEG file (the format is detected from its first bytes, not its name) to uint8
/// [C, H, W], C = 1 (gray, gray + alpha) or 3 (RGB, RGBA, palette; YCbCr JPEG). Alpha and tRNS
/// transparency are dropped and 16-bit samples keep their high byte, as PIL's convert("RGB") /
/// convert("L") do; gAMA, ICC profiles and EXIF orientation are ignored, as PIL's open ignores them
/// (16-bit gray, which PIL reads as 32-bit integers and clips in convert("L"), keeps its high byte
/// too). A JPEG whose data ends before its last pixel is an error, not a gray-padded image; its other
/// warnings (extraneous bytes) are not, as in PIL. Throws DataError naming the file when it is
/// missing, truncated, corrupt, neither PNG nor JPEG, larger than the limits above (or than 1 GiB on
/// disk), a progressive JPEG of more than 500 scans, or a JPEG in a colour space other than gray,
/// YCbCr or RGB (CMYK, YCCK).
at::Tensor decode_image(const std::string& path);

/// decode_image on bytes in memory; `name` stands for the file in messages.
at::Tensor decode_image_bytes(const uint8_t* data, size_t size, const std::string& name);

/// How images become a model's input (stored by the caller in checkpoints, so that later images are
/// prepared the same way).
struct ImagePreprocess {
  int64_t channels = 1;           ///< 1: gray, 3: RGB (converted as PIL's convert("L") / convert("RGB") do)
  int64_t height = 0, width = 0;  ///< the model's input size, the center crop
  int64_t resize = 0;             ///< the shorter side is resized to this before the crop; 0: max(height, width)
  std::vector<double> mean, std;  ///< per channel, applied after pixels are taken to [0, 1]; empty: none
};

/// Throws std::invalid_argument naming the bad field of `preprocess`: channels not 1 or 3, height,
/// width outside [1, kMaxImageSide], resize outside [0, kMaxImageSide], mean or std neither empty
/// nor one value per channel, a std <= 0, a non-finite mean or std.
void check_preprocess(const ImagePreprocess& preprocess);

/// uint8 [C0, H0, W0] (C0 = 1 or 3) -> float32 [channels, height, width], as torchvision's
/// Resize(resize, BILINEAR, antialias=True), CenterCrop((height, width)), ToTensor-like /255 and
/// Normalize(mean, std) do on the float tensor of the image:
///  1. channels converted on uint8, PIL-exact: L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16,
///     gray -> RGB replicates;
///  2. unless the image already is height x width (then it is kept exactly), the shorter side is
///     resized to `resize` (the longer to int(resize * long / short), as torchvision computes it) by
///     antialiased bilinear interpolation: per axis, output i reads the inputs around
///     center = (i + 0.5) * scale (scale = in / out) with triangle weights whose support is scaled by
///     max(scale, 1), normalized per output pixel (PIL's BILINEAR, ATen's _upsample_bilinear2d_aa);
///     only the pixels inside the crop are computed, so a thin image does not allocate its huge
///     resized version;
///  3. center crop at top = int(round((H - height) / 2.0)), left likewise (Python's round: half to even);
///  4. x / 255, then (x - mean[c]) / std[c].
/// Matches torchvision's tensor path within 1e-4 and PIL's uint8 path within 2/255. Throws
/// DataError naming `name` and the sizes when the resized image is smaller than the crop (possible
/// only with resize < max(height, width)), std::invalid_argument for a bad `preprocess` or a tensor
/// that is not uint8 [1 or 3, H, W].
at::Tensor preprocess_image(const at::Tensor& image, const ImagePreprocess& preprocess, const std::string& name);

/// A folder of images read as a data set (load_image_folder).
struct ImageFolder {
  /// features float32 [N, C*H*W] (channel-major, as den flattens images; [N, D] after a transform),
  /// labels int64 [N] class ids, sample_shape {C, H, W} ({D} after a transform), num_classes = max
  /// id + 1. Unlabelled: labels undefined, num_classes 0
  /// (Dataset::size() is then 0: count features.size(0) or files).
  Dataset dataset;
  std::vector<std::string> files;  ///< each sample's path relative to DIR ("brad_pitt/001.jpg"), in sample order
  std::map<int64_t, std::string> class_names;  ///< id -> folder name, for every class folder read
  bool labelled = true;
};

/// Options of load_image_folder.
struct ImageFolderOptions {
  ImagePreprocess preprocess;
  std::map<std::string, int64_t> known;  ///< class names an earlier import gave ids to
  int64_t first_free_id = 0;             ///< new class names get ids from here up (or higher)
  bool allow_unlabelled = false;         ///< accept images directly in DIR, without class folders
  int threads = 0;                       ///< decode threads; 0: std::thread::hardware_concurrency()
  /// Called on the calling thread about ten times a second while images decode, and once at the end
  /// with done == total.
  std::function<void(int64_t done, int64_t total)> progress;
  /// When set, images are decoded a chunk at a time and each chunk's rows (float32 [rows, C*H*W])
  /// are replaced by what this returns (float32 [rows, D], the same D for every chunk), so that only
  /// one chunk of full images is held at once: a frozen trunk's features, for thousands of
  /// ImageNet-sized photos. Called on the calling thread, chunks in sample order.
  std::function<at::Tensor(const at::Tensor& rows)> transform;
  /// Images per chunk with `transform`; 0: as many as fit in kTransformChunkBytes.
  int64_t chunk = 0;
};

/// The bytes of full images held at once when ImageFolderOptions::transform is set and no chunk is given.
constexpr int64_t kTransformChunkBytes = int64_t{256} << 20;

/// Reads DIR/<class>/*.{png,jpg,jpeg} (extensions case-insensitive; hidden entries, other files and
/// folders inside a class folder are skipped), or with `allow_unlabelled`, DIR/*.{png,jpg,jpeg} when
/// DIR has no subfolder. Each image is decoded (decode_image) and preprocessed (preprocess_image) to
/// one size, on options.threads threads; the result does not depend on the thread count.
///
/// Class ids: a folder named by a non-negative integer ("3") is that class. Any other name gets its
/// id in `known` if it has one, else the next free id: above every integer-named folder, every id
/// in `known` and first_free_id, given in sorted order of names so runs are reproducible. Samples
/// are in sorted order: class folder name, then file name (byte order).
///
/// Throws DataError naming the folder or file: DIR missing, no class folder (or no image), a class
/// folder with no image, two folders with one class id, a file that does not decode or preprocess
/// (the first such file in sample order). Throws std::invalid_argument for bad options.
ImageFolder load_image_folder(const std::string& dir, const ImageFolderOptions& options);

/// The first image of labelled image folder `dir` in load_image_folder's sample order, relative to
/// `dir` ("ankle_boot/0001.png"): what a network trained from scratch takes its input shape from.
/// Throws DataError when `dir` is missing or holds no class folder with an image.
std::string first_image(const std::string& dir);

/// Whether `dir` looks like an image folder: it holds a (non-hidden) subfolder with an image file
/// in it, or (allow_unlabelled) an image file. Reads names only, no image.
bool is_image_folder(const std::string& dir, bool allow_unlabelled = false);

}  // namespace den::data
