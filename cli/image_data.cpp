#include "cli/image_data.h"

#include "cli/flag_checks.h"
#include "cli/progress.h"
#include "engine/hyperparameters.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace den::cli {

namespace {

/// Comma-separated numbers; std::invalid_argument naming `flag`.
std::vector<double> parse_numbers(const std::string& text, const std::string& flag) {
  std::vector<double> values;
  if (text.empty()) return values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    double v = 0.0;
    try {
      engine::from_text(item, v);
    } catch (const std::invalid_argument&) {
      throw std::invalid_argument(flag + " '" + text + "': '" + item + "' is not a number");
    }
    values.push_back(v);
  }
  if (text.back() == ',') throw std::invalid_argument(flag + " '" + text + "' ends with a comma");
  return values;
}

}  // namespace

void add_image_flags(CLI::App* command, ImageFlags& flags) {
  command->add_option("--image-size", flags.image_size,
                      "Image folders: resize the shorter side to this, then center-crop to the input's H,W "
                      "(default: the crop's size; an image of the input's size is kept as it is)")
      ->check(at_least(0));
  command->add_option("--mean", flags.mean,
                      "Image folders: per-channel mean subtracted after pixels are taken to [0, 1] (e.g. "
                      "0.485,0.456,0.406; default: none)");
  command->add_option("--std", flags.std, "Image folders: per-channel std divided by after the mean (default: none)");
}

data::ImagePreprocess preprocess_from_flags(const ImageFlags& flags, const std::vector<int64_t>& input_shape) {
  if (input_shape.size() != 3) {
    throw std::invalid_argument("an image folder needs the model's input shape: give --input-shape C,H,W (C = 1 for "
                                "gray, 3 for RGB)");
  }
  data::ImagePreprocess p;
  p.channels = input_shape[0];
  p.height = input_shape[1];
  p.width = input_shape[2];
  p.resize = flags.image_size;
  p.mean = parse_numbers(flags.mean, "--mean");
  p.std = parse_numbers(flags.std, "--std");
  if (p.mean.empty() != p.std.empty()) throw std::invalid_argument("give --mean and --std together");
  try {
    data::check_preprocess(p);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(e.what()) + " (from --input-shape, --image-size, --mean and --std)");
  }
  // The shorter side becomes --image-size: only at least the crop's longer side fits every image.
  if (p.resize > 0 && p.resize < std::max(p.height, p.width)) {
    throw std::invalid_argument("--image-size " + std::to_string(p.resize) + " is smaller than the crop " +
                                std::to_string(p.height) + "x" + std::to_string(p.width) +
                                ": give at least its longer side, " + std::to_string(std::max(p.height, p.width)));
  }
  return p;
}

data::ImagePreprocess to_preprocess(const io::ImageInput& input) {
  data::ImagePreprocess p;
  p.channels = input.channels;
  p.height = input.height;
  p.width = input.width;
  p.resize = input.resize;
  p.mean = input.mean;
  p.std = input.std;
  return p;
}

io::ImageInput to_image_input(const data::ImagePreprocess& p) {
  return io::ImageInput{p.channels, p.height, p.width, p.resize, p.mean, p.std};
}

data::ImagePreprocess checkpoint_preprocess(const io::LoadedCheckpoint& c, const std::string& where) {
  if (c.extras.images) return to_preprocess(*c.extras.images);
  // Without a stored image input, images are what the model reads: its trunk's input, or the network's.
  const std::vector<int64_t>& shape = c.extras.trunk ? c.extras.trunk->input_shape : c.engine.config().input_shape;
  if (shape.size() != 3 || (shape[0] != 1 && shape[0] != 3)) {
    throw std::invalid_argument(where + ": the checkpoint's model reads " + std::to_string(c.engine.input_dim()) +
                                " flat features, not images; image folders need a network of 1- or 3-channel images "
                                "(den import --input-shape C,H,W, or den run on IDX images)");
  }
  return preprocess_from_flags(ImageFlags{}, shape);  // the defaults: [0, 1], no mean or std
}

ImageSamples load_image_samples(const std::string& dir, const data::ImagePreprocess& preprocess,
                                const std::map<int64_t, std::string>& names, int64_t first_free_id,
                                bool allow_unlabelled, bool quiet, const io::FrozenTrunk* trunk) {
  data::ImageFolderOptions options;
  options.preprocess = preprocess;
  for (const auto& [id, name] : names) options.known[name] = id;
  options.first_free_id = first_free_id;
  options.allow_unlabelled = allow_unlabelled;
  // One updating line on a terminal; a log gets the final count only.
  options.progress = count_on_terminal("decoding " + dir + (trunk ? " through the frozen trunk" : ""), "images", quiet);
  if (trunk) {
    // Features chunk by chunk: the full images of one chunk are held at once, not of the folder.
    auto runner = std::make_shared<io::TrunkRunner>(*trunk);
    options.transform = [runner, trunk, dir](const at::Tensor& rows) {
      if (rows.size(1) != trunk->input_dim()) {
        throw data::DataError(dir + ": images are prepared as " + std::to_string(rows.size(1)) + " values but the "
                              "model's frozen trunk takes " + std::to_string(trunk->input_dim()) + " (" +
                              engine::to_text(trunk->input_shape) + ")");
      }
      try {
        return runner->features(rows);
      } catch (const std::runtime_error& e) {
        throw data::DataError(dir + ": " + e.what());
      }
    };
  }
  data::ImageFolder folder = data::load_image_folder(dir, options);
  if (!quiet && !options.progress) {
    std::fprintf(stderr, "decoded %s: %zu images\n", dir.c_str(), folder.files.size());
  }
  // Only names that are no class id are names; folder "3" is class 3.
  std::map<int64_t, std::string> named;
  for (const auto& [id, name] : folder.class_names) {
    if (name != std::to_string(id)) named[id] = name;
  }
  return ImageSamples{std::move(folder.dataset), std::move(folder.files), std::move(named), folder.labelled,
                      trunk != nullptr};
}

int64_t next_free_class(const io::LoadedCheckpoint& c) {
  int64_t next = 0;
  if (c.extras.agnostic) {
    for (const std::vector<int64_t>& outputs : c.extras.agnostic->output_classes) {
      for (int64_t id : outputs) next = std::max(next, id + 1);
    }
  }
  for (const engine::TaskReport& report : c.engine.history()) next = std::max(next, report.num_classes);
  if (!c.extras.class_names.empty()) next = std::max(next, c.extras.class_names.rbegin()->first + 1);
  return next;
}

std::string class_label(int64_t id, const std::map<int64_t, std::string>& names) {
  if (id < 0) return "rest";
  const auto named = names.find(id);
  return named != names.end() ? named->second : std::to_string(id);
}

}  // namespace den::cli
