// TorchScript export: a torch::jit::Module built in C++ with define(), no Python involved.

#include "serialization/checkpoint.h"
#include "serialization/export.h"

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/import.h>

#include <algorithm>
#include <sstream>

namespace den::io {

namespace {

std::string int_list(const std::vector<int64_t>& values) {
  std::string out;
  for (int64_t v : values) out += (out.empty() ? "" : ", ") + std::to_string(v);
  return "[" + out + "]";
}

std::string input_text(const engine::Engine& engine, const ExportInfo& info) {
  std::ostringstream out;
  if (info.images) {
    const ImageInput& i = *info.images;
    out << "Input: raw images [N, C, H, W], pixel values 0..255 (uint8 or float), gray or RGB, of any size; the "
        << "module prepares them as den predict --images does: to " << (i.channels == 1 ? "gray" : "RGB")
        << ", the shorter side resized to " << (i.resize > 0 ? i.resize : std::max(i.height, i.width))
        << " (antialiased bilinear) unless the image is " << i.height << "x" << i.width << " already, center-cropped to "
        << i.height << "x" << i.width << ", / 255" << (i.mean.empty() ? "" : ", then (x - mean) / std per channel")
        << (info.trunk ? "; then the frozen trunk (the imported model up to '" + info.trunk->cut + "') runs" : "")
        << ".";
    return out.str();
  }
  if (info.trunk) {
    out << "Input: float32 [N, " << info.trunk->input_dim() << "] samples (" << int_list(info.trunk->input_shape)
        << " each, flattened), which the frozen trunk (the imported model up to '" << info.trunk->cut
        << "') turns into the network's " << engine.input_dim() << " features.";
    return out.str();
  }
  out << "Input: float32 [N, " << engine.input_dim() << "] features";
  const std::vector<int64_t>& shape = engine.network().input_shape();
  if (engine.network().spec(0).kind == engine::LayerKind::Conv) {
    out << " (images " << shape[0] << "x" << shape[1] << "x" << shape[2] << ", flattened channel by channel)";
  }
  if (info.shift.defined()) {
    out << ", raw: the module applies the training normalization ('" << info.normalization << "') itself.";
  } else {
    out << ", normalized as in training ('" << info.normalization << "'; the module does not normalize).";
  }
  return out.str();
}

// NOTE: [exported image input] A module exported from a checkpoint of image folders takes raw
// images and prepares them as den's decoder does (data::preprocess_image): channels converted on
// the integer pixel values (PIL's L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16, exact in float32
// since every term stays below 2^24), the shorter side resized by ATen's antialiased bilinear
// interpolation (torchvision's resize(antialias=True), which den's resize matches), a center crop
// with Python's round-half-to-even offsets written out in integers, / 255, then mean and std.

/// The method `prepare(self, x)` of NOTE: [exported image input], registering its buffers on `m`;
/// empty without image input.
std::string prepare_method(torch::jit::Module& m, const ExportInfo& info) {
  if (!info.images) return "";
  const ImageInput& i = *info.images;
  const std::string c = std::to_string(i.channels), h = std::to_string(i.height), w = std::to_string(i.width);
  const std::string r = std::to_string(i.resize > 0 ? i.resize : std::max(i.height, i.width));
  std::ostringstream code;
  code << "def prepare(self, x):\n"
       << "    assert x.dim() == 4, \"den: images are [N, C, H, W]\"\n"
       << "    x = x.float()\n";
  if (i.channels == 1) {
    code << "    if x.size(1) == 3:\n"
         << "        x = torch.floor((x[:, 0:1] * 19595.0 + x[:, 1:2] * 38470.0 + x[:, 2:3] * 7471.0 + 32768.0) / "
            "65536.0)\n";
  } else {
    code << "    if x.size(1) == 1:\n        x = x.expand(-1, 3, -1, -1)\n";
  }
  code << "    assert x.size(1) == " << c << ", \"den: images have 1 (gray) or 3 (RGB) channels\"\n"
       << "    if x.size(2) != " << h << " or x.size(3) != " << w << ":\n"
       << "        height = x.size(2)\n        width = x.size(3)\n"
       << "        if height <= width:\n"
       << "            new_h = " << r << "\n            new_w = int(" << r << " * width / height)\n"
       << "        else:\n"
       << "            new_w = " << r << "\n            new_h = int(" << r << " * height / width)\n"
       << "        x = torch._upsample_bilinear2d_aa(x, [new_h, new_w], False, None, None)\n"
       << "        top = self.crop_start(new_h - " << h << ")\n"
       << "        left = self.crop_start(new_w - " << w << ")\n"
       << "        x = x[:, :, top:top + " << h << ", left:left + " << w << "]\n"
       << "    x = x / 255.0\n";
  if (!i.mean.empty()) {
    const auto per_channel = [&](const std::vector<double>& v) {
      return at::tensor(v, at::kDouble).to(at::kFloat).view({1, i.channels, 1, 1}).contiguous();
    };
    m.register_buffer("image_mean", per_channel(i.mean));
    m.register_buffer("image_std", per_channel(i.std));
    code << "    x = (x - self.image_mean) / self.image_std\n";
  }
  code << "    return x.reshape(x.size(0), -1)\n\n"
       // int(round(d / 2.0)) with Python's half to even, in integers.
       << "def crop_start(self, d: int) -> int:\n"
       << "    start = d // 2\n"
       << "    if d % 2 == 1 and start % 2 == 1:\n        start = start + 1\n"
       << "    return start\n\n";
  return code.str();
}

/// Registers the normalization's statistics (or the frozen trunk) and returns the first lines of a
/// forward that prepare raw images (prepare_method) and apply the statistics (or run the trunk) on
/// `x`; empty without any.
std::string input_lines(torch::jit::Module& m, const ExportInfo& info) {
  std::string lines = info.images ? "    x = self.prepare(x)\n" : "";
  if (info.trunk) {
    std::istringstream archive(info.trunk->module);
    m.register_module("trunk", torch::jit::load(archive, at::kCPU));
    std::vector<int64_t> shape = info.trunk->input_shape;
    shape.insert(shape.begin(), -1);
    lines += "    x = self.trunk.forward(x.reshape(" + int_list(shape) + ")).flatten(1)\n";
  }
  if (!info.shift.defined()) return lines;
  m.register_buffer("input_shift", info.shift.to(at::kFloat).contiguous());
  m.register_buffer("input_scale", info.scale.to(at::kFloat).contiguous());
  return lines + "    x = (x - self.input_shift) * self.input_scale\n";
}

std::string describe(const engine::Engine& engine, int64_t task, const ExportInfo& info) {
  std::ostringstream out;
  out << "DEN network exported by den (Dynamically Expandable Networks, Yoon et al., ICLR 2018). ";
  if (task == kAllTasks) {
    out << "Every task 1.." << engine.num_tasks() << ": forward(x, task) returns that task's logits [N, c_task], "
        << "using only the units born at stages <= task. ";
  } else {
    out << "Task " << task << " of " << engine.num_tasks() << ": forward(x) returns logits [N, "
        << engine.graph().head(task).num_outputs << "]. ";
  }
  out << input_text(engine, info) << " scores() applies "
      << (engine.config().loss == engine::LossKind::Softmax ? "softmax" : "sigmoid") << " to the logits.";
  return out.str();
}

void add_common_attributes(torch::jit::Module& m, const engine::Engine& engine, int64_t task, const ExportInfo& info) {
  m.register_attribute("task", c10::IntType::get(), task);
  m.register_attribute("num_tasks", c10::IntType::get(), engine.num_tasks());
  m.register_attribute("input_dim", c10::IntType::get(), engine.input_dim());
  m.register_attribute("loss", c10::StringType::get(), engine::to_string(engine.config().loss));
  m.register_attribute("normalization", c10::StringType::get(), info.normalization);
  m.register_attribute("description", c10::StringType::get(), describe(engine, task, info));
  // Two parallel lists rather than a Dict[int, str]: LibTorch's Dict type pulls in c10::DynamicType,
  // whose typeinfo libc10 does not export, so a UBSan (vptr) build would not link.
  std::vector<int64_t> ids;
  c10::List<std::string> names;
  for (const auto& [id, name] : info.class_names) {
    ids.push_back(id);
    names.push_back(name);
  }
  m.register_attribute("class_name_ids", c10::ListType::ofInts(), c10::List<int64_t>(c10::ArrayRef<int64_t>(ids)));
  m.register_attribute("class_names", c10::ListType::ofStrings(), names);
}

/// The line that reads flat inputs `h` as images, when a conv layer comes first.
std::string image_line(const std::vector<int64_t>& input_shape) {
  if (input_shape.empty()) return "";
  return "    h = h.reshape(" + int_list({-1, input_shape[0], input_shape[1], input_shape[2]}) + ")\n";
}

/// The lines that take `h` through one hidden layer of `spec` with weight and bias expressions `w`
/// and `b` (AffineLayer's forward); `image` says whether `h` holds images, and becomes what the
/// layer outputs.
std::string hidden_lines(const engine::LayerSpec& spec, const std::string& w, const std::string& b, bool& image) {
  std::ostringstream code;
  if (spec.kind == engine::LayerKind::Conv) {
    code << "    h = torch.relu(torch.conv2d(h, " << w << ", " << b << ", " << int_list({spec.stride, spec.stride}) << ", "
         << int_list({spec.padding, spec.padding}) << "))\n";
    const std::string window = int_list({spec.pool_size, spec.pool_size});
    if (spec.pool == engine::PoolKind::Max) code << "    h = torch.max_pool2d(h, " << window << ", " << window << ")\n";
    if (spec.pool == engine::PoolKind::Avg) code << "    h = torch.avg_pool2d(h, " << window << ", " << window << ")\n";
    if (spec.pool == engine::PoolKind::GlobalAvg) code << "    h = torch.mean(h, [2, 3], True)\n";
    image = true;
    return code.str();
  }
  if (image) code << "    h = h.flatten(1)\n";
  code << "    h = torch.relu(torch.addmm(" << b << ", h, " << w << ".t()))\n";
  image = false;
  return code.str();
}

/// The return line of a head with weight and bias expressions `w` and `b`.
std::string head_lines(const std::string& w, const std::string& b, bool image) {
  return std::string(image ? "    h = h.flatten(1)\n" : "") + "    return torch.addmm(" + b + ", h, " + w + ".t())\n";
}

std::string score_fn(const engine::Engine& engine) {
  return engine.config().loss == engine::LossKind::Softmax ? "torch.softmax" : "torch.sigmoid";
}

torch::jit::Module single_task_module(const engine::Engine& engine, int64_t task, const ExportInfo& info) {
  const TaskNetwork net = task_network(engine, task);
  torch::jit::Module m("DenTaskNetwork");
  std::ostringstream code;
  code << "def forward(self, x):\n" << input_lines(m, info) << "    h = x\n" << image_line(net.input_shape);
  bool image = false;
  for (size_t l = 0; l < net.hidden.size(); ++l) {
    const std::string w = "layer_" + std::to_string(l) + "_weight";
    const std::string b = "layer_" + std::to_string(l) + "_bias";
    m.register_parameter(w, net.hidden[l].weight, false);
    m.register_parameter(b, net.hidden[l].bias, false);
    code << hidden_lines(net.hidden[l].spec, "self." + w, "self." + b, image);
  }
  m.register_parameter("head_weight", net.head.weight, false);
  m.register_parameter("head_bias", net.head.bias, false);
  code << head_lines("self.head_weight", "self.head_bias", image) << "\n"
       << "def scores(self, x):\n    return " << score_fn(engine) << "(self.forward(x), 1)\n\n"
       << prepare_method(m, info);
  add_common_attributes(m, engine, task, info);
  m.define(code.str());
  return m;
}

/// Registers every task's parameters on `m` and writes a method `task_<s>(self, x)` per task that
/// returns its logits for (normalized) inputs x.
void add_task_methods(torch::jit::Module& m, const MultiTaskNetwork& net, std::ostringstream& code) {
  for (size_t l = 0; l < net.hidden.size(); ++l) {
    m.register_parameter("layer_" + std::to_string(l) + "_weight", net.hidden[l].weight, false);
    m.register_parameter("layer_" + std::to_string(l) + "_bias", net.hidden[l].bias, false);
  }
  for (size_t s = 1; s <= net.heads.size(); ++s) {
    const std::string prefix = "head_" + std::to_string(s);
    m.register_parameter(prefix + "_weight", net.heads[s - 1].weight, false);
    m.register_parameter(prefix + "_bias", net.heads[s - 1].bias, false);
    // Task s reads the first sizes[l] units of every layer: slices are views, no copies. A conv
    // weight's second dimension is the channels below; an fc weight's columns are their blocks.
    const std::vector<int64_t>& sizes = net.sizes[s - 1];
    code << "def task_" << s << "(self, x):\n    h = x\n" << image_line(net.input_shape);
    bool image = false;
    for (size_t l = 0; l < sizes.size(); ++l) {
      const std::string n = std::to_string(sizes[l]);
      const bool conv = net.hidden[l].spec.kind == engine::LayerKind::Conv;
      const std::string in =
          l == 0 ? std::string("") : ", :" + std::to_string(sizes[l - 1] * (conv ? 1 : net.blocks[l]));
      code << hidden_lines(net.hidden[l].spec, "self.layer_" + std::to_string(l) + "_weight[:" + n + in + "]",
                           "self.layer_" + std::to_string(l) + "_bias[:" + n + "]", image);
    }
    code << head_lines("self." + prefix + "_weight", "self." + prefix + "_bias", image) << "\n";
  }
}

torch::jit::Module all_tasks_module(const engine::Engine& engine, const ExportInfo& info) {
  const MultiTaskNetwork net = multi_task_network(engine);
  torch::jit::Module m("DenMultiTaskNetwork");
  std::ostringstream code;
  add_task_methods(m, net, code);
  const size_t last = net.heads.size();
  code << "def forward(self, x, task: int):\n"
       << "    assert task >= 1 and task <= " << last << ", \"den: unknown task id; this module has tasks 1.." << last
       << "\"\n" << input_lines(m, info);
  for (size_t s = 1; s < last; ++s) {
    code << "    if task == " << s << ":\n        return self.task_" << s << "(x)\n";
  }
  code << "    return self.task_" << last << "(x)\n\n"
       << "def scores(self, x, task: int):\n    return " << score_fn(engine) << "(self.forward(x, task), 1)\n\n"
       << prepare_method(m, info);
  add_common_attributes(m, engine, kAllTasks, info);
  m.define(code.str());
  return m;
}

torch::jit::Module agnostic_module(const engine::Engine& engine, const engine::TaskAgnosticClassifier& classifier,
                                   const ExportInfo& info) {
  const MultiTaskNetwork net = multi_task_network(engine);
  torch::jit::Module m("DenAgnosticNetwork");
  std::ostringstream code;
  add_task_methods(m, net, code);
  // Per task, the evidence of its class-bearing outputs (TaskAgnosticClassifier::output_evidence).
  const bool softmax = engine.config().loss == engine::LossKind::Softmax;
  for (size_t s = 1; s <= classifier.output_classes().size(); ++s) {
    std::vector<int64_t> keep, rest;
    const std::vector<int64_t>& outputs = classifier.output_classes()[s - 1];
    for (size_t o = 0; o < outputs.size(); ++o) (outputs[o] >= 0 ? keep : rest).push_back(static_cast<int64_t>(o));
    const std::string task = std::to_string(s);
    m.register_buffer("keep_" + task, at::tensor(keep, at::kLong));
    code << "def evidence_" << task << "(self, x):\n    z = self.task_" << task << "(x).double()\n";
    if (softmax && !rest.empty()) {
      m.register_buffer("rest_" + task, at::tensor(rest, at::kLong));
      code << "    z = z - torch.logsumexp(z.index_select(1, self.rest_" << task << "), 1, True)\n";
    }
    code << "    return z.index_select(1, self.keep_" << task << ")\n\n";
  }
  // Each output's calibration is its task's (a_s, b_s); then a logsumexp per class (combine()).
  const at::Tensor task_of_output = at::tensor(classifier.output_tasks(), at::kLong);
  m.register_buffer("output_scale", classifier.scales().index_select(0, task_of_output).contiguous());
  m.register_buffer("output_shift", classifier.shifts().index_select(0, task_of_output).contiguous());
  m.register_buffer("class_outputs", classifier.class_outputs().contiguous());
  m.register_buffer("class_ids", at::tensor(classifier.classes(), at::kLong));
  m.register_attribute("classes", c10::ListType::ofInts(), c10::List<int64_t>(c10::ArrayRef<int64_t>(classifier.classes())));
  add_common_attributes(m, engine, kAllTasks, info);
  m.register_attribute("description", c10::StringType::get(),
                       "DEN network exported by den: task-agnostic classification among the classes " +
                           int_list(classifier.classes()) + " of tasks 1.." + std::to_string(engine.num_tasks()) +
                           ". forward(x) returns calibrated class scores [N, " +
                           std::to_string(classifier.classes().size()) + "] in the order of `classes`, predict(x) the "
                           "class ids, scores(x) their softmax. " + input_text(engine, info));
  code << "def forward(self, x):\n" << input_lines(m, info) << "    e = torch.cat([";
  for (size_t s = 1; s <= classifier.output_classes().size(); ++s) {
    code << (s > 1 ? ", " : "") << "self.evidence_" << s << "(x)";
  }
  code << "], 1)\n"
       << "    c = e * self.output_scale + self.output_shift\n"
       << "    padded = torch.cat([c, torch.full_like(c.narrow(1, 0, 1), float('-inf'))], 1)\n"
       << "    return torch.logsumexp(padded.index_select(1, self.class_outputs).view(c.size(0), "
       << classifier.classes().size() << ", -1), 2)\n\n"
       << "def predict(self, x):\n    return self.class_ids.index_select(0, self.forward(x).argmax(1))\n\n"
       << "def scores(self, x):\n    return torch.softmax(self.forward(x), 1)\n\n"
       << prepare_method(m, info);
  m.define(code.str());
  return m;
}

void save_module(torch::jit::Module& m, const std::string& path) {
  m.eval();
  std::ostringstream bytes;
  m.save(bytes);
  write_file_atomically(path, bytes.str());
}

}  // namespace

void export_torchscript_agnostic(const engine::Engine& engine, const engine::TaskAgnosticClassifier& classifier,
                                 const std::string& path, const ExportInfo& info) {
  if (classifier.num_tasks() != engine.num_tasks() || engine.num_tasks() == 0) {
    throw std::invalid_argument("task-agnostic export: the classifier describes " +
                                std::to_string(classifier.num_tasks()) + " tasks, the engine has " +
                                std::to_string(engine.num_tasks()));
  }
  torch::jit::Module m = agnostic_module(engine, classifier, info);
  save_module(m, path);
}

void export_torchscript(const engine::Engine& engine, int64_t task, const std::string& path, const ExportInfo& info) {
  check_export_task(engine, task, true);
  torch::jit::Module m = task == kAllTasks ? all_tasks_module(engine, info) : single_task_module(engine, task, info);
  save_module(m, path);
}

}  // namespace den::io
