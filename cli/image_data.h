#pragma once

// Image folders as the data of den import, add-task and predict: the flags that say how images
// become the network's input, the preprocessing a checkpoint stores, and the class names that
// folders give.

#include "data/image_folder.h"
#include "engine/engine.h"
#include "serialization/checkpoint.h"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace den::cli {

/// `--image-size`, `--mean`, `--std` (den import): how images are prepared for the model, as its
/// training did. The crop and the channels are the model's input shape (--input-shape).
struct ImageFlags {
  int64_t image_size = 0;  ///< the shorter side is resized to this, then center-cropped; 0: the crop's size
  std::string mean, std;   ///< per channel, comma separated; empty: none
};

/// Registers the ImageFlags on `command`.
void add_image_flags(CLI::App* command, ImageFlags& flags);

/// The preprocessing of `flags` for a model reading `input_shape` (C,H,W), checked
/// (std::invalid_argument naming the flag).
data::ImagePreprocess preprocess_from_flags(const ImageFlags& flags, const std::vector<int64_t>& input_shape);

/// A checkpoint's image input as the data module's preprocessing, and back.
data::ImagePreprocess to_preprocess(const io::ImageInput& input);
io::ImageInput to_image_input(const data::ImagePreprocess& preprocess);

/// How images become the input of checkpoint `c`: its stored image input, else (a checkpoint from
/// IDX images or `--input-shape`) its network's C,H,W with the defaults: pixels to [0, 1], no mean or
/// std, images of that size kept as they are. std::invalid_argument naming `where` for a network of
/// flat features, which no image fits.
data::ImagePreprocess checkpoint_preprocess(const io::LoadedCheckpoint& c, const std::string& where);

/// Samples read from an image folder (data::load_image_folder), decoded on every core with a
/// progress line on a terminal.
struct ImageSamples {
  data::Dataset dataset;
  std::vector<std::string> files;              ///< each sample's file, relative to the folder
  std::map<int64_t, std::string> class_names;  ///< the class folders read whose name is no class id
  bool labelled = true;
  bool through_trunk = false;  ///< the features are the frozen trunk's, the network's inputs
};

/// Reads image folder `dir`. Folders named by an integer are that class; a named folder takes its
/// id from `names` (the checkpoint's class names), and a name it lacks the next id above
/// `first_free_id` and every known id. With `trunk`, the images go through it as they decode, a
/// chunk at a time (NOTE: [frozen trunk]: thousands of ImageNet-sized photos never sit in memory
/// at once), and the samples are its features. data::DataError naming the file for an image that
/// does not decode, an empty class folder, or a folder with no image, and naming `dir` when the
/// trunk fails.
ImageSamples load_image_samples(const std::string& dir, const data::ImagePreprocess& preprocess,
                                const std::map<int64_t, std::string>& names, int64_t first_free_id,
                                bool allow_unlabelled, bool quiet, const io::FrozenTrunk* trunk = nullptr);

/// Every class id a checkpoint knows: its tasks' output classes and its class names. The next new
/// class gets the id above the largest.
int64_t next_free_class(const io::LoadedCheckpoint& c);

/// How a class is shown to users: its name when it has one, "rest" for -1 (a one-vs-rest task's
/// other output), else its id.
std::string class_label(int64_t id, const std::map<int64_t, std::string>& names);

}  // namespace den::cli
