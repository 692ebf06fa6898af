// den's Python module (`import den`): the Engine, its configuration, the task streams and the
// checkpoint and export functions, mirroring the C++ API. Tensors cross as torch.Tensor, sharing
// storage (no copy); python/den/__init__.py accepts numpy arrays too. C++ exceptions become Python
// exceptions with the same message: std::invalid_argument and data errors ValueError, checkpoint
// errors den.CheckpointError, write errors OSError.

#include "data/idx_reader.h"
#include "data/task_stream.h"
#include "den/version.h"
#include "engine/engine.h"
#include "engine/hyperparameters.h"
#include "engine/evaluation/run.h"
#include "engine/training/threads.h"
#include "engine/training/trainer.h"
#include "serialization/checkpoint.h"
#include "serialization/export.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/csrc/utils/pybind.h>

#include <string>
#include <vector>

namespace py = pybind11;
using namespace den;

namespace {

engine::Task make_task(at::Tensor train_x, at::Tensor train_y, at::Tensor val_x, at::Tensor val_y, at::Tensor test_x,
                       at::Tensor test_y, int64_t num_classes, std::string name, std::vector<int64_t> output_classes) {
  engine::Task task;
  task.train_x = std::move(train_x);
  task.train_y = std::move(train_y);
  task.val_x = std::move(val_x);
  task.val_y = std::move(val_y);
  // den.Task without test data passes two empty tensors: no test set (the engine refuses a test set
  // without samples, as a stream task whose classes the test file lacks).
  if (!(test_x.defined() && test_x.numel() == 0 && test_y.defined() && test_y.numel() == 0)) {
    task.test_x = std::move(test_x);
    task.test_y = std::move(test_y);
  }
  // Default: every label seen in training, 0..max.
  task.num_classes = num_classes > 0 ? num_classes
                                     : (task.train_y.defined() && task.train_y.numel() > 0
                                            ? task.train_y.max().item<int64_t>() + 1
                                            : 0);
  task.name = std::move(name);
  task.output_classes = std::move(output_classes);
  return task;
}

/// The table's name as a Python attribute: a keyword (lambda) gets a trailing underscore, as PEP 8 advises.
std::string python_name(const char* name) {
  const bool keyword = py::module_::import("keyword").attr("iskeyword")(name).cast<bool>();
  return keyword ? std::string(name) + "_" : std::string(name);
}

void bind_config(py::module_& m) {
  py::enum_<engine::LossKind>(m, "Loss").value("softmax", engine::LossKind::Softmax).value("sigmoid", engine::LossKind::Sigmoid);
  py::enum_<engine::SplitPolicy>(m, "SplitPolicy")
      .value("always", engine::SplitPolicy::Always)
      .value("after_expansion", engine::SplitPolicy::AfterExpansion);

  py::class_<engine::EngineConfig> config(m, "EngineConfig",
                                          "DEN's hyperparameters; EngineConfig(k=5, layers='conv5x5:32,maxpool2,fc:128', ...), starting from "
                                          "preset='den' (or 'released')");
  // Keyword arguments are set through the table, so the Python names are exactly its names; the
  // rest come from the preset (NOTE: [presets]), den's own unless preset='released' is given.
  config.def(py::init([](const py::kwargs& kwargs) {
    engine::EngineConfig c = engine::preset(kwargs.contains("preset") ? py::cast<std::string>(kwargs["preset"]) : "den");
    py::object self = py::cast(&c, py::return_value_policy::reference);
    for (const auto& [key, value] : kwargs) {
      const std::string name = py::cast<std::string>(key);
      if (name == "preset") continue;
      // A field's older flag name works as a keyword too (hidden=[312, 128] sets layers).
      std::string field;
      engine::visit_hyperparameters([&](const auto& h) {
        if (name == python_name(h.name) || (*h.alias != '\0' && "--" + name == h.alias)) field = python_name(h.name);
      });
      if (field.empty()) throw py::type_error("EngineConfig has no hyperparameter '" + name + "'");
      py::setattr(self, field.c_str(), value);
    }
    return c;
  }));
  engine::visit_hyperparameters([&](const auto& h) {
    using T = typename std::decay_t<decltype(h)>::Value;
    if constexpr (std::is_same_v<T, engine::Layers>) {
      // Layers read and write as their text form ("conv5x5:32,maxpool2,fc:256"); a list of ints is
      // all-fc layers of those sizes.
      const auto member = h.member;
      config.def_property(
          python_name(h.name).c_str(), [member](const engine::EngineConfig& c) { return engine::to_text(c.*member); },
          [member](engine::EngineConfig& c, const py::object& v) {
            if (py::isinstance<py::str>(v)) {
              engine::from_text(py::cast<std::string>(v), c.*member);
            } else {
              const auto sizes = py::cast<std::vector<int64_t>>(v);
              c.*member = engine::Layers(sizes.begin(), sizes.end());
            }
          },
          h.help);
    } else {
      config.def_readwrite(python_name(h.name).c_str(), h.member, h.help);
    }
  });
  config.def("validate", &engine::EngineConfig::validate, "raises ValueError naming the first invalid setting");
  config.def("__repr__", [](const engine::EngineConfig& c) {
    py::object self = py::cast(c);
    std::string out = "EngineConfig(";
    bool first = true;
    engine::visit_hyperparameters([&](const auto& h) {
      const std::string name = python_name(h.name);
      out += (first ? "" : ", ") + name + "=" + py::cast<std::string>(py::repr(self.attr(name.c_str())));
      first = false;
    });
    return out + ")";
  });
  m.def("hyperparameters", [] {
    py::list rows;
    engine::visit_hyperparameters([&](const auto& h) {
      const engine::EngineConfig defaults = engine::preset("den"), released = engine::preset("released");
      const auto python_value = [](const auto& v) {
        if constexpr (std::is_same_v<std::decay_t<decltype(v)>, engine::Layers>) {
          return py::cast(engine::to_text(v));
        } else {
          return py::cast(v);
        }
      };
      rows.append(py::dict(py::arg("name") = python_name(h.name), py::arg("default") = python_value(h.value(defaults)),
                           py::arg("released") = python_value(h.value(released)), py::arg("flag") = h.flag,
                           py::arg("help") = h.help));
    });
    return rows;
  }, "every hyperparameter: name, default (the den preset's), the released preset's value, command-line flag and help");
}

/// A report struct's Python class: every field of its table (NOTE: [report fields]), read-only.
template <typename S>
void bind_report_fields(py::class_<S>& cls) {
  engine::visit_report_fields(static_cast<const S*>(nullptr),
                              [&](const auto& field) { cls.def_readonly(field.name, field.member); });
}

void bind_reports(py::module_& m) {
  py::class_<graph::Subnetwork>(m, "Subnetwork", "the units selective retraining chose: input units and, per layer, "
                                                 "positions")
      .def_readonly("inputs", &graph::Subnetwork::inputs)
      .def_readonly("hidden", &graph::Subnetwork::hidden);
  py::class_<engine::PhaseResult> phase(m, "PhaseResult");
  bind_report_fields(phase);
  py::class_<engine::SplitPair> pair(m, "SplitPair");
  bind_report_fields(pair);
  py::class_<engine::TaskReport> report(m, "TaskReport", "what add_task did; den.report_dict() turns it into a dict");
  bind_report_fields(report);
}

void bind_data(py::module_& m) {
  py::class_<engine::Task>(m, "Task", "one task: train/val/test tensors, class count, name, output classes")
      .def(py::init(&make_task), py::arg("train_x"), py::arg("train_y"), py::arg("val_x"), py::arg("val_y"),
           py::arg("test_x") = at::Tensor(), py::arg("test_y") = at::Tensor(), py::arg("num_classes") = 0,
           py::arg("name") = "", py::arg("output_classes") = std::vector<int64_t>{})
      .def_readwrite("name", &engine::Task::name)
      .def_readwrite("num_classes", &engine::Task::num_classes)
      .def_readwrite("train_x", &engine::Task::train_x)
      .def_readwrite("train_y", &engine::Task::train_y)
      .def_readwrite("val_x", &engine::Task::val_x)
      .def_readwrite("val_y", &engine::Task::val_y)
      .def_readwrite("test_x", &engine::Task::test_x)
      .def_readwrite("test_y", &engine::Task::test_y)
      .def_readwrite("output_classes", &engine::Task::output_classes);

  py::class_<data::TaskStream>(m, "TaskStream", "a seeded sequence of tasks from an IDX or CSV data directory")
      .def(py::init([](const std::string& data_dir, const std::string& protocol, int64_t num_tasks,
                       int64_t classes_per_task, int64_t base_classes, int64_t train_limit, double val_fraction,
                       uint64_t seed) {
             data::StreamOptions o;
             // Messages name this constructor's arguments, not the CLI's flags.
             o.names = {"protocol", "num_tasks", "classes_per_task", "base_classes", "train_limit", "val_fraction"};
             o.protocol = data::parse_protocol(protocol, o.names.protocol);
             o.num_tasks = num_tasks;
             o.classes_per_task = classes_per_task;
             o.base_classes = base_classes;
             o.train_limit = train_limit;
             o.val_fraction = val_fraction;
             o.seed = seed;
             data::DirectoryOptions directory;
             directory.option = "data_dir";
             data::TrainTest files = data::load_directory(data_dir, directory);
             return data::TaskStream(std::move(files.train), std::move(files.test), o);
           }),
           py::arg("data_dir") = "/usr/share/datasets/fashion-mnist", py::arg("protocol") = "permuted",
           py::arg("num_tasks") = 10, py::arg("classes_per_task") = 2, py::arg("base_classes") = 0,
           py::arg("train_limit") = 0, py::arg("val_fraction") = 0.1, py::arg("seed") = 1)
      .def_property_readonly("num_tasks", &data::TaskStream::num_tasks)
      .def_property_readonly("input_dim", &data::TaskStream::input_dim)
      .def_property_readonly("num_classes", &data::TaskStream::num_classes)
      .def("task", &data::TaskStream::task, py::arg("t"), "task t (1-based)");
}

void bind_engine(py::module_& m) {
  py::class_<engine::Engine>(m, "Engine", "a Dynamically Expandable Network; Engine(EngineConfig(...), input_dim)")
      .def(py::init<engine::EngineConfig, int64_t>(), py::arg("config"), py::arg("input_dim"))
      .def("add_task", [](engine::Engine& e, const engine::Task& task) {
             py::gil_scoped_release release;  // training takes a while; other Python threads may run
             return e.add_task(task);
           }, py::arg("task"), "learns one more task; returns its TaskReport")
      .def("predict", &engine::Engine::predict, py::arg("task_id"), py::arg("x"),
           "logits [N, classes of the task] of task task_id (1-based)")
      .def("predict_all", &engine::Engine::predict_all, py::arg("x"), "logits of every task")
      .def("clone", &engine::Engine::clone, "an independent deep copy")
      .def_property_readonly("num_tasks", &engine::Engine::num_tasks)
      .def_property_readonly("input_dim", &engine::Engine::input_dim)
      .def_property_readonly("num_params", &engine::Engine::num_params)
      .def_property_readonly("base_params", &engine::Engine::base_params)
      .def_property_readonly("config", &engine::Engine::config)
      .def_property_readonly("history", &engine::Engine::history)
      .def_property_readonly("hidden_units", [](const engine::Engine& e) {
        std::vector<int64_t> sizes;
        for (int64_t l = 0; l < e.graph().num_layers(); ++l) sizes.push_back(e.graph().layer_size(l));
        return sizes;
      })
      .def("save", [](const engine::Engine& e, const std::string& path) { io::save_checkpoint(e, path); },
           py::arg("path"), "writes a checkpoint atomically")
      .def_static("load", [](const std::string& path) { return std::move(io::load_checkpoint(path).engine); },
                  py::arg("path"), "reads a checkpoint")
      .def("export", [](const engine::Engine& e, const std::string& path, int64_t task, const std::string& format) {
             if (format == "torchscript") {
               io::export_torchscript(e, task, path);
             } else if (format == "onnx") {
               io::export_onnx(e, task, path);
             } else if (format == "dot") {
               io::export_dot(e, task, path);
             } else {
               throw std::invalid_argument("export: format must be torchscript, onnx or dot, got '" + format + "'");
             }
           }, py::arg("path"), py::arg("task") = 0, py::arg("format") = "torchscript",
           "exports task `task`'s network (0 = every task, where the format allows)");
}

}  // namespace

PYBIND11_MODULE(_den, m) {
  m.doc() = "den: lifelong learning with Dynamically Expandable Networks (Yoon et al., ICLR 2018)";
  m.attr("__version__") = kVersion;

  static py::exception<io::CheckpointError> checkpoint_error(m, "CheckpointError", PyExc_RuntimeError);
  static py::exception<engine::TrainingDiverged> diverged(m, "TrainingDiverged", PyExc_ArithmeticError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const io::CheckpointError& e) {
      checkpoint_error(e.what());
    } catch (const engine::TrainingDiverged& e) {
      diverged(e.what());
    } catch (const io::WriteError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    } catch (const data::DataError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const c10::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what_without_backtrace());
    }
  });

  bind_config(m);
  bind_reports(m);
  bind_data(m);
  bind_engine(m);
  m.def("configure_threads", &engine::configure_threads, py::arg("threads"),
        "threads of the matrix products (0 = all cores); element-wise ops use one");
}
