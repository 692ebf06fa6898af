// ONNX export with Debian's libonnx (onnx::ModelProto), checked by onnx::checker.

#include "serialization/checkpoint.h"
#include "serialization/export.h"

#include <algorithm>
#include <stdexcept>

#ifdef DEN_HAVE_ONNX
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#endif

namespace den::io {

#ifdef DEN_HAVE_ONNX

namespace {

constexpr int kOpset = 13;
constexpr int kIrVersion = 7;  // the first IR version of opset 13; widest reader support

void float_initializer(onnx::GraphProto& g, const std::string& name, const at::Tensor& t) {
  const at::Tensor data = t.contiguous().to(at::kFloat);
  onnx::TensorProto* init = g.add_initializer();
  init->set_name(name);
  init->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : data.sizes()) init->add_dims(d);
  // raw_data is little-endian by the ONNX spec; den only builds on little-endian hosts' LibTorch.
  init->set_raw_data(std::string(static_cast<const char*>(data.data_ptr()), static_cast<size_t>(data.numel()) * 4));
}

void int64_initializer(onnx::GraphProto& g, const std::string& name, const std::vector<int64_t>& values) {
  onnx::TensorProto* init = g.add_initializer();
  init->set_name(name);
  init->set_data_type(onnx::TensorProto::INT64);
  init->add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values) init->add_int64_data(v);
}

void tensor_value(onnx::ValueInfoProto& v, const std::string& name, int64_t width) {
  v.set_name(name);
  auto* type = v.mutable_type()->mutable_tensor_type();
  type->set_elem_type(onnx::TensorProto::FLOAT);
  type->mutable_shape()->add_dim()->set_dim_param("N");
  type->mutable_shape()->add_dim()->set_dim_value(width);
}

onnx::NodeProto& node(onnx::GraphProto& g, const std::string& op, const std::vector<std::string>& inputs,
                      const std::string& output) {
  onnx::NodeProto* n = g.add_node();
  n->set_op_type(op);
  n->set_name(output + "_" + op);
  for (const std::string& in : inputs) n->add_input(in);
  n->add_output(output);
  return *n;
}

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
  onnx::AttributeProto* trans_b = node(g, "Gemm", {x, w, b}, pre).add_attribute();
  trans_b->set_name("transB");
  trans_b->set_type(onnx::AttributeProto::INT);
  trans_b->set_i(1);
  if (relu) node(g, "Relu", {pre}, out);
  return out;
}

void ints_attribute(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
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
  model.set_doc_string("DEN network (Yoon et al., ICLR 2018) exported by den. Input: float32 [N, " +
                       std::to_string(engine.input_dim()) + "] features" +
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
  tensor_value(*g.add_input(), "input", engine.input_dim());
  // Raw inputs: (input - shift) * scale before the first layer.
  std::string input = "input";
  if (info.shift.defined()) {
    float_initializer(g, "input_shift", info.shift);
    float_initializer(g, "input_scale", info.scale);
    node(g, "Sub", {"input", "input_shift"}, "input_centered");
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
