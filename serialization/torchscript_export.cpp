// TorchScript export: a torch::jit::Module built in C++ with define(), no Python involved.

#include "serialization/checkpoint.h"
#include "serialization/export.h"

#include <torch/csrc/jit/api/module.h>

#include <sstream>

namespace den::io {

namespace {

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
  out << "Input: float32 [N, " << engine.input_dim() << "] features, normalized as in training ('"
      << info.normalization << "'; the module does not normalize). scores() applies "
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
}

std::string score_fn(const engine::Engine& engine) {
  return engine.config().loss == engine::LossKind::Softmax ? "torch.softmax" : "torch.sigmoid";
}

torch::jit::Module single_task_module(const engine::Engine& engine, int64_t task, const ExportInfo& info) {
  const TaskNetwork net = task_network(engine, task);
  torch::jit::Module m("DenTaskNetwork");
  std::ostringstream code;
  code << "def forward(self, x):\n    h = x\n";
  for (size_t l = 0; l < net.hidden.size(); ++l) {
    const std::string w = "layer_" + std::to_string(l) + "_weight";
    const std::string b = "layer_" + std::to_string(l) + "_bias";
    m.register_parameter(w, net.hidden[l].weight, false);
    m.register_parameter(b, net.hidden[l].bias, false);
    code << "    h = torch.relu(torch.addmm(self." << b << ", h, self." << w << ".t()))\n";
  }
  m.register_parameter("head_weight", net.head.weight, false);
  m.register_parameter("head_bias", net.head.bias, false);
  code << "    return torch.addmm(self.head_bias, h, self.head_weight.t())\n\n"
       << "def scores(self, x):\n    return " << score_fn(engine) << "(self.forward(x), 1)\n";
  add_common_attributes(m, engine, task, info);
  m.define(code.str());
  return m;
}

torch::jit::Module all_tasks_module(const engine::Engine& engine, const ExportInfo& info) {
  const MultiTaskNetwork net = multi_task_network(engine);
  torch::jit::Module m("DenMultiTaskNetwork");
  for (size_t l = 0; l < net.hidden.size(); ++l) {
    m.register_parameter("layer_" + std::to_string(l) + "_weight", net.hidden[l].weight, false);
    m.register_parameter("layer_" + std::to_string(l) + "_bias", net.hidden[l].bias, false);
  }
  std::ostringstream code;
  for (size_t s = 1; s <= net.heads.size(); ++s) {
    const std::string prefix = "head_" + std::to_string(s);
    m.register_parameter(prefix + "_weight", net.heads[s - 1].weight, false);
    m.register_parameter(prefix + "_bias", net.heads[s - 1].bias, false);
    // Task s reads the first sizes[l] units of every layer: slices are views, no copies.
    const std::vector<int64_t>& sizes = net.sizes[s - 1];
    code << "def task_" << s << "(self, x):\n    h = x\n";
    for (size_t l = 0; l < sizes.size(); ++l) {
      const std::string n = std::to_string(sizes[l]);
      const std::string in = l == 0 ? std::string("") : ", :" + std::to_string(sizes[l - 1]);
      code << "    h = torch.relu(torch.addmm(self.layer_" << l << "_bias[:" << n << "], h, self.layer_" << l
           << "_weight[:" << n << in << "].t()))\n";
    }
    code << "    return torch.addmm(self." << prefix << "_bias, h, self." << prefix << "_weight.t())\n\n";
  }
  const size_t last = net.heads.size();
  code << "def forward(self, x, task: int):\n"
       << "    assert task >= 1 and task <= " << last << ", \"den: unknown task id; this module has tasks 1.." << last
       << "\"\n";
  for (size_t s = 1; s < last; ++s) {
    code << "    if task == " << s << ":\n        return self.task_" << s << "(x)\n";
  }
  code << "    return self.task_" << last << "(x)\n\n"
       << "def scores(self, x, task: int):\n    return " << score_fn(engine) << "(self.forward(x, task), 1)\n";
  add_common_attributes(m, engine, kAllTasks, info);
  m.define(code.str());
  return m;
}

}  // namespace

void export_torchscript(const engine::Engine& engine, int64_t task, const std::string& path, const ExportInfo& info) {
  check_export_task(engine, task, true);
  torch::jit::Module m = task == kAllTasks ? all_tasks_module(engine, info) : single_task_module(engine, task, info);
  m.eval();
  std::ostringstream bytes;
  m.save(bytes);
  write_file_atomically(path, bytes.str());
}

}  // namespace den::io
