// ONNX export with Debian's libonnx (onnx::ModelProto), checked by onnx::checker.

#include "engine/hyperparameters.h"
#include "serialization/checkpoint.h"
#include "serialization/export.h"

#include <algorithm>
#include <stdexcept>

#ifdef DEN_HAVE_ONNX
#include "serialization/internal/onnx_graph.h"

#include <onnx/checker.h>
#endif

namespace den::io {

#ifdef DEN_HAVE_ONNX

using internal::float_initializer;
using internal::int64_initializer;
using internal::ints_attribute;
using internal::node;
using internal::tensor_value;

namespace {

constexpr int kOpset = 13;
constexpr int kIrVersion = 7;  // the first IR version of opset 13; widest reader support

/// `x` flattened to `[N, C*H*W]` when it holds images (then `image` is cleared), else `x`.
std::string flat(onnx::GraphProto& g, const std::string& x, bool& image) {
  if (!image) return x;
  image = false;
  node(g, "Flatten", {x}, x + "_flat");
  return x + "_flat";
}

/// y = relu?(x W^T + b) as a Gemm node (transB = 1), then Relu when `relu`; returns y's name.
std::string gemm(onnx::GraphProto& g, const std::string& x, const std::string& w, const std::string& b,
                 const std::string& out, bool relu) {
  const std::string pre = relu ? out + "_pre" : out;
  internal::int_attribute(node(g, "Gemm", {x, w, b}, pre), "transB", 1);
  if (relu) node(g, "Relu", {pre}, out);
  return out;
}

/// Nodes that take `x` (images when `image`) through one hidden layer of `spec` with weight and
/// bias `w`, `b` into `out`: Conv, Relu and MaxPool, AveragePool or GlobalAveragePool for a conv layer; a Flatten
/// after conv layers, then Gemm and Relu for an fc layer. `image` becomes what the layer outputs.
std::string hidden_layer(onnx::GraphProto& g, const engine::LayerSpec& spec, const std::string& x, const std::string& w,
                         const std::string& b, const std::string& out, bool& image) {
  if (spec.kind == engine::LayerKind::Conv) {
    onnx::NodeProto& conv = node(g, "Conv", {x, w, b}, out + "_conv");
    ints_attribute(conv, "kernel_shape", {spec.kernel_h, spec.kernel_w});
    ints_attribute(conv, "strides", {spec.stride, spec.stride});
    ints_attribute(conv, "pads", {spec.padding, spec.padding, spec.padding, spec.padding});
    image = true;
    if (spec.pool == engine::PoolKind::None) {
      node(g, "Relu", {out + "_conv"}, out);
      return out;
    }
    node(g, "Relu", {out + "_conv"}, out + "_relu");
    if (spec.pool == engine::PoolKind::GlobalAvg) {
      node(g, "GlobalAveragePool", {out + "_relu"}, out);
      return out;
    }
    onnx::NodeProto& pool = node(g, spec.pool == engine::PoolKind::Max ? "MaxPool" : "AveragePool", {out + "_relu"}, out);
    ints_attribute(pool, "kernel_shape", {spec.pool_size, spec.pool_size});
    ints_attribute(pool, "strides", {spec.pool_size, spec.pool_size});
    return out;
  }
  return gemm(g, flat(g, x, image), w, b, out, true);
}

void metadata(onnx::ModelProto& model, const std::string& key, const std::string& value) {
  auto* p = model.add_metadata_props();
  p->set_key(key);
  p->set_value(value);
}

}  // namespace

bool onnx_supported() { return true; }

std::string onnx_model(const engine::Engine& engine, int64_t task, const ExportInfo& info) {
  check_export_task(engine, task, true);
  onnx::ModelProto model;
  model.set_ir_version(kIrVersion);
  model.set_producer_name("den");
  model.set_model_version(1);
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpset);
  const std::vector<int64_t>& shape = engine.network().input_shape();
  metadata(model, "task", task == kAllTasks ? "all" : std::to_string(task));
  metadata(model, "num_tasks", std::to_string(engine.num_tasks()));
  metadata(model, "loss", engine::to_string(engine.config().loss));
  metadata(model, "normalization", info.normalization);
  // ONNX opset 13 has no antialiased resize, so the graph takes prepared images; the metadata says
  // how den prepares them (NOTE: [exported image input]).
  if (info.images) {
    const ImageInput& i = *info.images;
    std::string mean, std;
    for (size_t c = 0; c < i.mean.size(); ++c) {
      mean += (c ? "," : "") + std::to_string(i.mean[c]);
      std += (c ? "," : "") + std::to_string(i.std[c]);
    }
    metadata(model, "image_input",
             "channels=" + std::to_string(i.channels) + ";height=" + std::to_string(i.height) + ";width=" +
                 std::to_string(i.width) + ";resize=" + std::to_string(i.resize > 0 ? i.resize : std::max(i.height, i.width)) +
                 ";mean=" + mean + ";std=" + std);
  }
  for (const auto& [id, name] : info.class_names) metadata(model, "class_name_" + std::to_string(id), name);
  std::string trunk_text;
  if (info.trunk) {
    trunk_text = "Input: float32 [N, " + std::to_string(info.trunk->input_dim()) + "] samples (" +
                 engine::to_text(info.trunk->input_shape) + " each, flattened), which the frozen trunk (the imported "
                 "model up to '" + info.trunk->cut + "') turns into the network's ";
  }
  model.set_doc_string("DEN network (Yoon et al., ICLR 2018) exported by den. " +
                       (info.trunk ? trunk_text : "Input: float32 [N, ") + std::to_string(engine.input_dim()) +
                       (info.trunk ? " features" : "] features") +
                       (engine.network().spec(0).kind == engine::LayerKind::Conv
                            ? " (images " + std::to_string(shape[0]) + "x" + std::to_string(shape[1]) + "x" +
                                  std::to_string(shape[2]) + ", flattened channel by channel)"
                            : std::string()) +
                       (info.shift.defined() ? ", raw: the training normalization ('" + info.normalization +
                                                   "') is applied first"
                                             : " as in training ('" + info.normalization + "'; not applied here)") +
                       (info.images ? ". Images are prepared as den predict --images does before they go in "
                                      "(metadata image_input: to gray or RGB, shorter side resized, center-cropped, "
                                      "/ 255, (x - mean) / std)"
                                    : std::string()) +
                       ". Output: logits; apply " +
                       (engine.config().loss == engine::LossKind::Softmax ? "softmax" : "sigmoid") +
                       " for class scores.");

  onnx::GraphProto& g = *model.mutable_graph();
  tensor_value(*g.add_input(), "input", info.trunk ? info.trunk->input_dim() : engine.input_dim());
  // The model's own inputs through its frozen trunk, then raw inputs: (input - shift) * scale before
  // the first layer.
  std::string input = info.trunk ? internal::write_trunk(g, *info.trunk, "input") : "input";
  if (info.shift.defined()) {
    float_initializer(g, "input_shift", info.shift);
    float_initializer(g, "input_scale", info.scale);
    node(g, "Sub", {input, "input_shift"}, "input_centered");
    input = "input_normalized";
    node(g, "Mul", {"input_centered", "input_scale"}, input);
  }
  // A conv first layer reads the flat input as images.
  const bool image_input = engine.network().spec(0).kind == engine::LayerKind::Conv;
  if (image_input) {
    int64_initializer(g, "image_shape", {-1, shape[0], shape[1], shape[2]});
    node(g, "Reshape", {input, "image_shape"}, "input_images");
    input = "input_images";
  }

  if (task != kAllTasks) {
    const TaskNetwork net = task_network(engine, task);
    g.set_name("den_task_" + std::to_string(task));
    std::string h = input;
    bool image = image_input;
    for (size_t l = 0; l < net.hidden.size(); ++l) {
      const std::string p = "layer_" + std::to_string(l);
      float_initializer(g, p + "_weight", net.hidden[l].weight);
      float_initializer(g, p + "_bias", net.hidden[l].bias);
      h = hidden_layer(g, net.hidden[l].spec, h, p + "_weight", p + "_bias", "hidden_" + std::to_string(l), image);
    }
    float_initializer(g, "head_weight", net.head.weight);
    float_initializer(g, "head_bias", net.head.bias);
    gemm(g, flat(g, h, image), "head_weight", "head_bias", "logits", false);
    tensor_value(*g.add_output(), "logits", net.head.weight.size(0));
  } else {
    const MultiTaskNetwork net = multi_task_network(engine);
    g.set_name("den_all_tasks");
    for (size_t l = 0; l < net.hidden.size(); ++l) {
      const std::string p = "layer_" + std::to_string(l);
      float_initializer(g, p + "_weight", net.hidden[l].weight);
      float_initializer(g, p + "_bias", net.hidden[l].bias);
    }
    int64_initializer(g, "zeros_2", {0, 0});
    int64_initializer(g, "zeros_1", {0});
    for (size_t s = 1; s <= net.heads.size(); ++s) {
      const std::string task_prefix = "task_" + std::to_string(s);
      const std::vector<int64_t>& sizes = net.sizes[s - 1];
      std::string h = input;
      bool image = image_input;
      for (size_t l = 0; l < sizes.size(); ++l) {
        const std::string p = "layer_" + std::to_string(l);
        const std::string tp = task_prefix + "_" + p;
        // Task s uses the first sizes[l] units: a Slice of the shared weights (rows, and what the
        // units below that it uses own: their channels of a conv weight, their column blocks of an
        // fc weight; its first two axes either way).
        const bool conv = net.hidden[l].spec.kind == engine::LayerKind::Conv;
        const int64_t in = l == 0 ? net.hidden[0].weight.size(1) : sizes[l - 1] * (conv ? 1 : net.blocks[l]);
        int64_initializer(g, tp + "_weight_ends", {sizes[l], in});
        int64_initializer(g, tp + "_bias_ends", {sizes[l]});
        node(g, "Slice", {p + "_weight", "zeros_2", tp + "_weight_ends"}, tp + "_weight");
        node(g, "Slice", {p + "_bias", "zeros_1", tp + "_bias_ends"}, tp + "_bias");
        h = hidden_layer(g, net.hidden[l].spec, h, tp + "_weight", tp + "_bias", tp + "_hidden_" + std::to_string(l),
                         image);
      }
      const std::string head = "head_" + std::to_string(s);
      float_initializer(g, head + "_weight", net.heads[s - 1].weight);
      float_initializer(g, head + "_bias", net.heads[s - 1].bias);
      const std::string out = "logits_task_" + std::to_string(s);
      gemm(g, flat(g, h, image), head + "_weight", head + "_bias", out, false);
      tensor_value(*g.add_output(), out, net.heads[s - 1].weight.size(0));
    }
  }

  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("the ONNX checker rejected the exported model: ") + e.what());
  }
  return model.SerializeAsString();
}

#else  // DEN_HAVE_ONNX

bool onnx_supported() { return false; }

std::string onnx_model(const engine::Engine&, int64_t, const ExportInfo&) {
  throw std::runtime_error("this den was built without ONNX support (install libonnx-dev and reconfigure)");
}

#endif  // DEN_HAVE_ONNX

void export_onnx(const engine::Engine& engine, int64_t task, const std::string& path, const ExportInfo& info) {
  const std::string bytes = onnx_model(engine, task, info);
  write_file_atomically(path, bytes);
}

}  // namespace den::io
