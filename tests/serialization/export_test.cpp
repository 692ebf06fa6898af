// Exporters: TorchScript (C++ and, when available, Python), ONNX (checker and a tiny evaluator),
// DOT (parsed back), and the compaction behind them.

#include "serialization/checkpoint.h"
#include "serialization/export.h"
#include "serialization/torchscript_import.h"
#include "data/image_folder.h"

#include "engine/engine_state.h"
#include "engine/evaluation/run.h"
#include "tests/engine/synthetic.h"
#include "tests/serialization/helpers.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/import.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/graphviz.hpp>
#pragma GCC diagnostic pop

#ifdef DEN_HAVE_ONNX
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#endif

#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

namespace den::io {

namespace {

namespace fs = std::filesystem;

/// Exports must match Engine::predict within this (summation order differs, values do not).
constexpr double kTolerance = 1e-5;

class Export : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("den_export_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  /// A 3-task engine that expanded and split.
  static const engine::Engine& trained() {
    static engine::Engine engine = [] {
      engine::Engine e(testing::small_config(), den::testing::SyntheticSpec{}.dim);
      for (int64_t t = 1; t <= 3; ++t) e.add_task(den::testing::synthetic_task(20 + t));
      return e;
    }();
    return engine;
  }
  static at::Tensor input() { return den::testing::synthetic_task(99).test_x.narrow(0, 0, 64); }

  /// 1x10x10 images through conv layers with padding, both poolings and an fc layer reading 2x2 per
  /// channel: conv3x3p1 (10x10), avgpool2 (5x5), conv2x2 (4x4), maxpool2 (2x2), fc.
  static den::testing::SyntheticSpec image_spec() {
    den::testing::SyntheticSpec s;
    s.dim = s.informative = 100;
    return s;
  }
  /// A 3-task conv engine (den preset) that grew and split filters.
  static const engine::Engine& trained_conv() {
    static engine::Engine engine = [] {
      engine::EngineConfig config = engine::preset("den")
                                        .set_layers(engine::parse_layers("conv3x3p1:6,avgpool2,conv2x2:8,maxpool2,fc:12"))
                                        .set_input_shape({1, 10, 10})
                                        .set_max_iter(150)
                                        .set_batch_size(64)
                                        .set_eval_every(50)
                                        .set_k(3)
                                        .set_tau(0)
                                        .set_sigma(0);
      engine::Engine e(config, 100);
      for (int64_t t = 1; t <= 3; ++t) e.add_task(den::testing::synthetic_task(30 + t, image_spec()));
      return e;
    }();
    return engine;
  }
  static at::Tensor conv_input() { return den::testing::synthetic_task(98, image_spec()).test_x.narrow(0, 0, 64); }

  /// An imported conv network with BatchNorms folded and global average pooling:
  /// conv3x3p1:4,maxpool2,conv3x3:6,gap,fc:8 on 1x10x10 images.
  static const engine::Engine& pooled_globally() {
    static const io::ImportedModel model = [] {
      io::ImportOptions options;
      options.config.set_input_shape({1, 10, 10});
      return io::import_torchscript(std::string(DEN_SERIALIZATION_TEST_DATA) + "/import/conv_batchnorm_script.pt",
                                    options);
    }();
    return model.engine;
  }

  fs::path dir_;
};

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

TEST_F(Export, TheFixtureGrewAndSplit) {
  const engine::Engine& e = trained();
  int64_t splits = 0;
  for (const auto& r : e.history()) splits += static_cast<int64_t>(r.split_pairs.size());
  EXPECT_GT(e.graph().layer_size(0), 16);
  EXPECT_GT(splits, 0);
}

TEST_F(Export, TheConvFixtureGrewFilters) {
  const engine::Engine& e = trained_conv();
  EXPECT_GT(e.graph().layer_size(0) + e.graph().layer_size(1), 14);
  EXPECT_EQ(e.network().block(2), 4);
}

// A conv network's compacted task networks hold filters [n, C, kh, kw] and compute predict.
TEST_F(Export, CompactConvTaskNetworksKeepTheirFilters) {
  const engine::Engine& e = trained_conv();
  for (int64_t t = 1; t <= e.num_tasks(); ++t) {
    const TaskNetwork net = task_network(e, t);
    EXPECT_EQ(net.input_shape, (std::vector<int64_t>{1, 10, 10}));
    ASSERT_EQ(net.hidden[0].weight.dim(), 4);
    EXPECT_EQ(net.hidden[0].weight.sizes().slice(1), (std::vector<int64_t>{1, 3, 3}));
    EXPECT_EQ(net.hidden[1].weight.size(1), net.hidden[0].weight.size(0));  // channels follow the filters below
    EXPECT_EQ(net.hidden[2].weight.size(1), net.hidden[1].weight.size(0) * 4);  // 2x2 per channel
    EXPECT_EQ(net.hidden[1].spec.pool, engine::PoolKind::Max);
  }
}

TEST_F(Export, CompactTaskNetworksMatchPredict) {
  const engine::Engine& e = trained();
  const at::Tensor x = input();
  for (int64_t t = 1; t <= e.num_tasks(); ++t) {
    const TaskNetwork net = task_network(e, t);
    at::Tensor h = x;
    for (const AffineLayer& l : net.hidden) h = at::relu(at::addmm(l.bias, h, l.weight.t()));
    const at::Tensor logits = at::addmm(net.head.bias, h, net.head.weight.t());
    EXPECT_LE(max_diff(logits, e.predict(t, x)), kTolerance) << "task " << t;
    for (size_t l = 0; l < net.hidden.size(); ++l) {
      EXPECT_LE(net.hidden[l].weight.size(0), net.visible_units[l]);
      EXPECT_EQ(net.visible_units[l], static_cast<int64_t>(e.graph().visible_units(static_cast<int64_t>(l), t).size()));
    }
  }
  EXPECT_THROW(task_network(e, 0), std::invalid_argument);
  EXPECT_THROW(task_network(e, 4), std::invalid_argument);
}

TEST_F(Export, DeadUnitsAreRemovedExactly) {
  // Hand-made network: in layer 0, unit 1 has a zero row (outputs relu(0) = 0) and unit 2 a zero
  // outgoing column; removing unit 2 leaves unit 0 of... nothing, the rest stay.
  engine::EngineState s;
  s.config = engine::EngineConfig().set_hidden({4, 3});
  s.input_dim = 3;
  s.graph = graph::UnitGraph(3, {4, 3});
  s.graph.add_head(1, 2);
  at::Tensor l0 = at::randn({4, 4});
  l0[1].zero_();
  at::Tensor l1 = at::randn({3, 5});
  l1.select(1, 2).zero_();
  at::Tensor head = at::randn({2, 4});
  head.select(1, 0).zero_();  // top unit 0 is never read
  s.layers = {l0, l1};
  s.heads = {head};
  engine::TaskReport r;
  r.task = 1;
  r.num_classes = 2;
  s.history = {r};
  s.base_params = 1;
  s.rng_state = at::make_generator<at::CPUGeneratorImpl>(1).get_state();
  const engine::Engine e = engine::Engine::from_state(s);

  const TaskNetwork net = task_network(e, 1);
  EXPECT_EQ(net.hidden[0].weight.size(0), 2);  // units 1 (zero row) and 2 (zero column) removed
  EXPECT_EQ(net.hidden[1].weight.size(0), 2);  // unit 0 (zero head column) removed
  EXPECT_EQ(net.hidden[1].weight.size(1), 2);
  const at::Tensor x = at::randn({16, 3});
  at::Tensor h = x;
  for (const AffineLayer& l : net.hidden) h = at::relu(at::addmm(l.bias, h, l.weight.t()));
  EXPECT_LE(max_diff(at::addmm(net.head.bias, h, net.head.weight.t()), e.predict(1, x)), kTolerance);
}

TEST_F(Export, TorchScriptOfOneTaskMatchesPredict) {
  const engine::Engine& e = trained();
  const at::Tensor x = input();
  for (int64_t t = 1; t <= e.num_tasks(); ++t) {
    const std::string file = path("task" + std::to_string(t) + ".pt");
    export_torchscript(e, t, file, ExportInfo{"minmax", "/data"});
    torch::jit::Module m = torch::jit::load(file);
    const at::Tensor logits = m.forward({x}).toTensor();
    EXPECT_LE(max_diff(logits, e.predict(t, x)), kTolerance) << "task " << t;
    const at::Tensor scores = m.get_method("scores")({x}).toTensor();
    EXPECT_LE(max_diff(scores, e.predict_scores(t, x)), kTolerance);
    EXPECT_EQ(m.attr("task").toInt(), t);
    EXPECT_EQ(m.attr("input_dim").toInt(), e.input_dim());
    EXPECT_EQ(m.attr("normalization").toStringRef(), "minmax");
    EXPECT_NE(m.attr("description").toStringRef().find("normalized"), std::string::npos);
  }
}

TEST_F(Export, TorchScriptOfAllTasksTakesTheTaskId) {
  const engine::Engine& e = trained();
  const at::Tensor x = input();
  export_torchscript(e, kAllTasks, path("all.pt"));
  torch::jit::Module m = torch::jit::load(path("all.pt"));
  for (int64_t t = 1; t <= e.num_tasks(); ++t) {
    EXPECT_LE(max_diff(m.forward({x, t}).toTensor(), e.predict(t, x)), kTolerance) << "task " << t;
  }
  EXPECT_ANY_THROW(m.forward({x, int64_t{7}}));
  EXPECT_EQ(m.attr("num_tasks").toInt(), e.num_tasks());
}

TEST_F(Export, ConvTorchScriptOfOneTaskAndOfAllTasksMatchPredict) {
  const engine::Engine& e = trained_conv();
  const at::Tensor x = conv_input();
  export_torchscript(e, kAllTasks, path("all.pt"));
  torch::jit::Module every = torch::jit::load(path("all.pt"));
  for (int64_t t = 1; t <= e.num_tasks(); ++t) {
    export_torchscript(e, t, path("task.pt"));
    torch::jit::Module one = torch::jit::load(path("task.pt"));
    EXPECT_LE(max_diff(one.forward({x}).toTensor(), e.predict(t, x)), kTolerance) << "task " << t;
    EXPECT_LE(max_diff(every.forward({x, t}).toTensor(), e.predict(t, x)), kTolerance) << "task " << t;
  }
  EXPECT_NE(every.attr("description").toStringRef().find("images 1x10x10"), std::string::npos);
}

TEST_F(Export, GlobalAveragePoolingExportsToTorchScript) {
  const engine::Engine& e = pooled_globally();
  ASSERT_EQ(e.config().layers[1].pool, engine::PoolKind::GlobalAvg);
  const at::Tensor x = conv_input();
  export_torchscript(e, 1, path("task.pt"));
  export_torchscript(e, kAllTasks, path("all.pt"));
  torch::jit::Module one = torch::jit::load(path("task.pt"));
  torch::jit::Module every = torch::jit::load(path("all.pt"));
  EXPECT_LE(max_diff(one.forward({x}).toTensor(), e.predict(1, x)), kTolerance);
  EXPECT_LE(max_diff(every.forward({x, int64_t{1}}).toTensor(), e.predict(1, x)), kTolerance);
}

// NOTE: [exported image input] A module of a checkpoint learned from image folders takes raw
// images of any size, gray or RGB, and prepares them as den's decoder does before predict.
TEST_F(Export, TorchScriptOfImageInputPreparesRawImagesAsDenDoes) {
  const engine::Engine& e = trained_conv();  // 1x10x10 images
  ExportInfo info;
  info.images = ImageInput{1, 10, 10, 12, {0.4}, {0.3}};
  info.class_names = {{0, "zero"}, {2, "two"}};
  export_torchscript(e, 2, path("task.pt"), info);
  export_torchscript(e, kAllTasks, path("all.pt"), info);
  torch::jit::Module one = torch::jit::load(path("task.pt"));
  torch::jit::Module every = torch::jit::load(path("all.pt"));
  EXPECT_EQ(one.attr("class_names").toListRef().size(), 2u);
  EXPECT_NE(one.attr("description").toStringRef().find("raw images"), std::string::npos);
  data::ImagePreprocess preprocess;
  preprocess.height = preprocess.width = 10;
  preprocess.resize = 12;
  preprocess.mean = {0.4};
  preprocess.std = {0.3};
  at::manual_seed(5);
  // Already 10x10 (kept), larger and of another aspect (resized, cropped), and RGB (made gray).
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{1, 10, 10}, std::vector<int64_t>{1, 23, 17},
                                            std::vector<int64_t>{3, 14, 31}, std::vector<int64_t>{3, 10, 10}}) {
    std::vector<at::Tensor> raw, prepared;
    for (int i = 0; i < 6; ++i) {
      raw.push_back(at::randint(0, 256, shape, at::kByte));
      prepared.push_back(data::preprocess_image(raw.back(), preprocess, "random").flatten());
    }
    const at::Tensor images = at::stack(raw), x = at::stack(prepared);
    EXPECT_LE(max_diff(one.forward({images}).toTensor(), e.predict(2, x)), 1e-4) << shape;
    EXPECT_LE(max_diff(every.forward({images.to(at::kFloat), int64_t{1}}).toTensor(), e.predict(1, x)), 1e-4) << shape;
  }
}

TEST_F(Export, TorchScriptWithNormalizationTakesRawInputs) {
  const engine::Engine& e = trained();
  const at::Tensor x = input();
  ExportInfo info{"minmax", ""};
  info.shift = at::randn({e.input_dim()});
  info.scale = at::rand({e.input_dim()}) + 0.5;
  const at::Tensor raw = x / info.scale + info.shift;  // normalizes back to x
  export_torchscript(e, 2, path("task2.pt"), info);
  export_torchscript(e, kAllTasks, path("all.pt"), info);
  torch::jit::Module one = torch::jit::load(path("task2.pt"));
  torch::jit::Module all = torch::jit::load(path("all.pt"));
  EXPECT_LE(max_diff(one.forward({raw}).toTensor(), e.predict(2, x)), kTolerance);
  EXPECT_LE(max_diff(all.forward({raw, int64_t{3}}).toTensor(), e.predict(3, x)), kTolerance);
  EXPECT_NE(one.attr("description").toStringRef().find("raw"), std::string::npos);
}

TEST_F(Export, AgnosticTorchScriptScoresAndPredictsAsTheClassifier) {
  const engine::Engine& e = trained();
  engine::TaskAgnosticClassifier classifier;
  for (int64_t t = 1; t <= 3; ++t) {
    engine::Task task = den::testing::synthetic_task(20 + t);
    // Tasks 1 and 2 share classes 0..2; task 3 has a "rest" output, whose evidence is measured
    // against it, and two new classes.
    if (t == 3) task.output_classes = {-1, 5, 6};
    classifier.add_task(t, task);
  }
  classifier.fit(e);
  ExportInfo info;
  info.shift = at::zeros({e.input_dim()});
  info.scale = at::full({e.input_dim()}, 2.0);
  const at::Tensor x = input();
  export_torchscript_agnostic(e, classifier, path("agnostic.pt"), info);
  torch::jit::Module m = torch::jit::load(path("agnostic.pt"));
  const at::Tensor raw = x / 2.0;
  EXPECT_LE(max_diff(m.forward({raw}).toTensor(), classifier.class_scores(e, x)), 1e-4);
  EXPECT_TRUE(at::equal(m.get_method("predict")({raw}).toTensor(), classifier.predict(e, x)));
  const c10::List<int64_t> classes = m.attr("classes").toIntList();
  EXPECT_EQ(std::vector<int64_t>(classes.begin(), classes.end()), classifier.classes());

  engine::TaskAgnosticClassifier short_of_tasks;
  short_of_tasks.add_task(1, den::testing::synthetic_task(21));
  EXPECT_THROW(export_torchscript_agnostic(e, short_of_tasks, path("x.pt")), std::invalid_argument);
  EXPECT_FALSE(fs::exists(path("x.pt")));
}

TEST_F(Export, TorchScriptLoadsInPython) {
  if (std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3-torch is not installed";
  }
  for (const bool conv : {false, true}) {
    const engine::Engine& e = conv ? trained_conv() : trained();
    const at::Tensor x = conv ? conv_input() : input();
    export_torchscript(e, 2, path("task2.pt"));
    export_torchscript(e, kAllTasks, path("all.pt"));
    // Input and expected outputs travel as a TorchScript module of buffers.
    torch::jit::Module data("Data");
    data.register_buffer("x", x);
    data.register_buffer("task2", e.predict(2, x));
    data.register_buffer("task3", e.predict(3, x));
    data.save(path("data.pt"));
    const std::string script = path("check.py");
    testing::write_bytes(script,
                         "import sys, torch\n"
                         "d = torch.jit.load(sys.argv[1])\n"
                         "one = torch.jit.load(sys.argv[2])\n"
                         "every = torch.jit.load(sys.argv[3])\n"
                         "a = (one(d.x) - d.task2).abs().max().item()\n"
                         "b = (every(d.x, 3) - d.task3).abs().max().item()\n"
                         "print('max diff', a, b)\n"
                         "sys.exit(0 if a <= 1e-5 and b <= 1e-5 and one.task == 2 else 1)\n");
    const std::string command = "/usr/bin/python3 " + script + " " + path("data.pt") + " " + path("task2.pt") + " " +
                                path("all.pt") + " > " + path("py.log") + " 2>&1";
    EXPECT_EQ(std::system(command.c_str()), 0) << (conv ? "conv: " : "fc: ") << testing::read_bytes(path("py.log"));
  }
}

TEST_F(Export, DotParsesAndShowsWhatATaskSees) {
  const engine::Engine& e = trained();
  const auto parse = [](const std::string& dot, size_t& vertices) {
    struct Vertex {
      std::string label;
    };
    using G = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, Vertex>;
    G g;
    boost::dynamic_properties dp(boost::ignore_other_properties);
    dp.property("label", boost::get(&Vertex::label, g));
    std::istringstream in(dot);
    const bool ok = boost::read_graphviz(in, g, dp);
    vertices = boost::num_vertices(g);
    return ok;
  };
  size_t all_vertices = 0;
  size_t first_vertices = 0;
  const std::string all = dot_graph(e, kAllTasks, NetworkView::PerUnit);
  const std::string first = dot_graph(e, 1, NetworkView::PerUnit);
  ASSERT_TRUE(parse(all, all_vertices));
  ASSERT_TRUE(parse(first, first_vertices));
  // input + units + heads
  const auto units = [&](int64_t task) {
    int64_t n = 0;
    for (int64_t l = 0; l < e.graph().num_layers(); ++l) {
      n += static_cast<int64_t>(task == 0 ? e.graph().layer_size(l) : e.graph().visible_units(l, task).size());
    }
    return n;
  };
  EXPECT_EQ(static_cast<int64_t>(all_vertices), 1 + units(0) + e.num_tasks());
  EXPECT_EQ(static_cast<int64_t>(first_vertices), 1 + units(1) + 1);
  EXPECT_NE(all.find("stage 3"), std::string::npos);
  EXPECT_EQ(first.find("stage 2"), std::string::npos);
  EXPECT_NE(all.find("split"), std::string::npos);

  export_dot(e, kAllTasks, path("g.dot"), NetworkView::PerUnit);
  EXPECT_EQ(testing::read_bytes(path("g.dot")), all);
  EXPECT_THROW(export_dot(e, 9, path("bad.dot")), std::invalid_argument);
  EXPECT_FALSE(fs::exists(path("bad.dot")));
}

/// A DOT graph parsed back: node labels by node id, and the edges with their style and label.
struct ParsedDot {
  std::map<std::string, std::string> labels;
  struct Edge {
    std::string from, to, style, label;
  };
  std::vector<Edge> edges;
};

ParsedDot parse_dot(const std::string& dot) {
  struct Vertex {
    std::string id, label;
  };
  struct EdgeProps {
    std::string style, label;
  };
  using G = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, Vertex, EdgeProps>;
  G g;
  boost::dynamic_properties dp(boost::ignore_other_properties);
  dp.property("node_id", boost::get(&Vertex::id, g));
  dp.property("label", boost::get(&Vertex::label, g));
  dp.property("style", boost::get(&EdgeProps::style, g));
  dp.property("label", boost::get(&EdgeProps::label, g));
  std::istringstream in(dot);
  EXPECT_TRUE(boost::read_graphviz(in, g, dp, "node_id")) << dot;
  ParsedDot out;
  for (auto v : boost::make_iterator_range(boost::vertices(g))) out.labels[g[v].id] = g[v].label;
  for (auto e : boost::make_iterator_range(boost::edges(g))) {
    out.edges.push_back({g[boost::source(e, g)].id, g[boost::target(e, g)].id, g[e].style, g[e].label});
  }
  return out;
}

TEST_F(Export, TheGroupedPictureHasOneNodePerLayerAndBirthStage) {
  const engine::Engine& e = trained();
  const graph::UnitGraph& g = e.graph();
  const ParsedDot dot = parse_dot(dot_graph(e, kAllTasks));
  size_t groups = 0;
  for (int64_t l = 0; l < g.num_layers(); ++l) {
    for (int64_t s = 1; s <= e.num_tasks(); ++s) {
      const size_t born = g.units_born_at(l, s).size();
      const std::string node = "l" + std::to_string(l) + "_s" + std::to_string(s);
      if (born == 0) {
        EXPECT_EQ(dot.labels.count(node), 0u) << node;
        continue;
      }
      ++groups;
      ASSERT_EQ(dot.labels.count(node), 1u) << node;
      EXPECT_EQ(dot.labels.at(node), std::to_string(born) + " units\\nborn at task " + std::to_string(s));
    }
  }
  ASSERT_GT(groups, static_cast<size_t>(g.num_layers()));  // the engine grew
  // input, a name per layer row, the groups and the heads: nothing per unit.
  EXPECT_EQ(dot.labels.size(), 1 + static_cast<size_t>(g.num_layers()) + groups + static_cast<size_t>(e.num_tasks()));

  int64_t split_copies = 0, expected_copies = 0;
  for (int64_t l = 0; l < g.num_layers(); ++l) {
    for (const graph::Unit& u : g.units(l)) expected_copies += u.origin == graph::Origin::Split ? 1 : 0;
  }
  for (const ParsedDot::Edge& edge : dot.edges) {
    if (edge.style == "dashed") {
      split_copies += std::stoll(edge.label);  // "3 split"
      EXPECT_EQ(edge.from.substr(0, 3), edge.to.substr(0, 3)) << "split lineage stays in its layer";
    } else if (edge.to.rfind("head", 0) == 0 && edge.style.empty()) {
      // Timestamped inference: head t reads units born at stages <= t only.
      const int64_t head = std::stoll(edge.to.substr(4));
      const int64_t stage = std::stoll(edge.from.substr(edge.from.find("_s") + 2));
      EXPECT_LE(stage, head) << edge.from << " -> " << edge.to;
    }
  }
  ASSERT_GT(expected_copies, 0);  // the engine split
  EXPECT_EQ(split_copies, expected_copies);

  // What task 1 sees: its own units and head only.
  const ParsedDot first = parse_dot(dot_graph(e, 1));
  for (const auto& [node, label] : first.labels) {
    EXPECT_EQ(label.find("born at task 2"), std::string::npos) << label;
    EXPECT_NE(node, "head2");
  }
  EXPECT_EQ(first.labels.count("head1"), 1u);
}

#ifdef DEN_HAVE_ONNX

/// A tiny ONNX interpreter for the ops the exporter emits (Gemm, Relu, Slice on constants; Reshape,
/// Conv, MaxPool, AveragePool, GlobalAveragePool and Flatten for conv networks).
std::map<std::string, at::Tensor> evaluate_onnx(const onnx::ModelProto& model, const at::Tensor& input) {
  std::map<std::string, at::Tensor> values;
  const onnx::GraphProto& g = model.graph();
  for (const onnx::TensorProto& t : g.initializer()) {
    std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
    if (t.data_type() == onnx::TensorProto::FLOAT) {
      at::Tensor v = at::empty(dims, at::kFloat);
      EXPECT_EQ(t.raw_data().size(), static_cast<size_t>(v.numel()) * 4) << t.name();
      std::memcpy(v.data_ptr(), t.raw_data().data(), t.raw_data().size());
      values[t.name()] = v;
    } else {
      EXPECT_EQ(t.data_type(), onnx::TensorProto::INT64);
      values[t.name()] = at::tensor(std::vector<int64_t>(t.int64_data().begin(), t.int64_data().end()), at::kLong);
    }
  }
  values[g.input(0).name()] = input;
  for (const onnx::NodeProto& n : g.node()) {
    const auto in = [&](int i) { return values.at(n.input(i)); };
    at::Tensor out;
    if (n.op_type() == "Gemm") {
      int64_t trans_b = 0;
      for (const auto& a : n.attribute()) {
        if (a.name() == "transB") trans_b = a.i();
        EXPECT_TRUE(a.name() == "transB") << "unexpected Gemm attribute " << a.name();
      }
      out = at::addmm(in(2), in(0), trans_b ? in(1).t() : in(1));
    } else if (n.op_type() == "Relu") {
      out = at::relu(in(0));
    } else if (n.op_type() == "Conv" || n.op_type() == "MaxPool" || n.op_type() == "AveragePool") {
      std::map<std::string, std::vector<int64_t>> a;
      for (const auto& attr : n.attribute()) a[attr.name()] = {attr.ints().begin(), attr.ints().end()};
      const std::vector<int64_t> strides = a.at("strides");
      if (n.op_type() == "Conv") {
        const std::vector<int64_t> pads = a.at("pads");
        EXPECT_TRUE(pads[0] == pads[2] && pads[1] == pads[3]) << "asymmetric pads";
        out = at::conv2d(in(0), in(1), in(2), strides, {pads[0], pads[1]});
      } else if (n.op_type() == "MaxPool") {
        out = at::max_pool2d(in(0), a.at("kernel_shape"), strides);
      } else {
        out = at::avg_pool2d(in(0), a.at("kernel_shape"), strides);
      }
    } else if (n.op_type() == "GlobalAveragePool") {
      out = in(0).mean({2, 3}, /*keepdim=*/true);
    } else if (n.op_type() == "Flatten") {
      out = in(0).flatten(1);
    } else if (n.op_type() == "Reshape") {
      const at::Tensor shape = in(1).to(at::kLong).contiguous();
      out = in(0).reshape(std::vector<int64_t>(shape.data_ptr<int64_t>(), shape.data_ptr<int64_t>() + shape.numel()));
    } else if (n.op_type() == "Sub") {
      out = in(0) - in(1);
    } else if (n.op_type() == "Mul") {
      out = in(0) * in(1);
    } else if (n.op_type() == "Slice") {
      out = in(0);
      const at::Tensor starts = in(1);
      const at::Tensor ends = in(2);
      for (int64_t d = 0; d < starts.numel(); ++d) {
        const int64_t s = starts[d].item<int64_t>();
        out = out.narrow(d, s, ends[d].item<int64_t>() - s);
      }
    } else {
      ADD_FAILURE() << "unexpected op " << n.op_type();
    }
    values[n.output(0)] = out;
  }
  return values;
}

onnx::ModelProto checked_model(const std::string& bytes) {
  onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromString(bytes));
  EXPECT_NO_THROW(onnx::checker::check_model(model));
  EXPECT_NO_THROW(onnx::shape_inference::InferShapes(model));
  EXPECT_EQ(model.opset_import(0).version(), 13);
  return model;
}

TEST_F(Export, OnnxOfOneTaskPassesTheCheckerAndMatchesPredict) {
  const engine::Engine& e = trained();
  const at::Tensor x = input();
  for (int64_t t = 1; t <= e.num_tasks(); ++t) {
    const onnx::ModelProto model = checked_model(onnx_model(e, t));
    ASSERT_EQ(model.graph().output_size(), 1);
    const auto values = evaluate_onnx(model, x);
    EXPECT_LE(max_diff(values.at("logits"), e.predict(t, x)), kTolerance) << "task " << t;
  }
  export_onnx(e, 2, path("task2.onnx"));
  onnx::ModelProto from_file;
  ASSERT_TRUE(from_file.ParseFromString(testing::read_bytes(path("task2.onnx"))));
  EXPECT_NO_THROW(onnx::checker::check_model(from_file));
}

TEST_F(Export, OnnxOfAllTasksHasOneOutputPerTask) {
  const engine::Engine& e = trained();
  const at::Tensor x = input();
  const onnx::ModelProto model = checked_model(onnx_model(e, kAllTasks));
  ASSERT_EQ(model.graph().output_size(), e.num_tasks());
  const auto values = evaluate_onnx(model, x);
  for (int64_t t = 1; t <= e.num_tasks(); ++t) {
    EXPECT_LE(max_diff(values.at("logits_task_" + std::to_string(t)), e.predict(t, x)), kTolerance) << "task " << t;
  }
}

TEST_F(Export, ConvOnnxOfOneTaskAndOfAllTasksMatchesPredict) {
  const engine::Engine& e = trained_conv();
  const at::Tensor x = conv_input();
  const auto every = evaluate_onnx(checked_model(onnx_model(e, kAllTasks)), x);
  for (int64_t t = 1; t <= e.num_tasks(); ++t) {
    const auto one = evaluate_onnx(checked_model(onnx_model(e, t)), x);
    EXPECT_LE(max_diff(one.at("logits"), e.predict(t, x)), kTolerance) << "task " << t;
    EXPECT_LE(max_diff(every.at("logits_task_" + std::to_string(t)), e.predict(t, x)), kTolerance) << "task " << t;
  }
}

TEST_F(Export, GlobalAveragePoolingExportsToOnnx) {
  const engine::Engine& e = pooled_globally();
  const at::Tensor x = conv_input();
  const onnx::ModelProto model = checked_model(onnx_model(e, 1));
  bool pooled = false;
  for (const onnx::NodeProto& n : model.graph().node()) pooled = pooled || n.op_type() == "GlobalAveragePool";
  EXPECT_TRUE(pooled);
  EXPECT_LE(max_diff(evaluate_onnx(model, x).at("logits"), e.predict(1, x)), kTolerance);
}

TEST_F(Export, OnnxRecordsTheImageInputAndTheClassNames) {
  ExportInfo info;
  info.images = ImageInput{1, 10, 10, 0, {0.5}, {0.25}};
  info.class_names = {{3, "brad_pitt"}};
  const onnx::ModelProto model = checked_model(onnx_model(trained_conv(), 1, info));
  std::map<std::string, std::string> meta;
  for (const auto& p : model.metadata_props()) meta[p.key()] = p.value();
  EXPECT_EQ(meta["class_name_3"], "brad_pitt");
  EXPECT_EQ(meta["image_input"], "channels=1;height=10;width=10;resize=10;mean=0.500000;std=0.250000");
}

TEST_F(Export, OnnxWithNormalizationTakesRawInputs) {
  const engine::Engine& e = trained();
  const at::Tensor x = input();
  ExportInfo info{"standardize", ""};
  info.shift = at::randn({e.input_dim()});
  info.scale = at::rand({e.input_dim()}) + 0.5;
  const at::Tensor raw = x / info.scale + info.shift;  // normalizes back to x
  for (int64_t t : {int64_t{1}, kAllTasks}) {
    const auto values = evaluate_onnx(checked_model(onnx_model(e, t, info)), raw);
    const std::string out = t == kAllTasks ? "logits_task_3" : "logits";
    EXPECT_LE(max_diff(values.at(out), e.predict(t == kAllTasks ? 3 : 1, x)), kTolerance) << out;
  }
}

#else

TEST_F(Export, OnnxOfOneTaskPassesTheCheckerAndMatchesPredict) { GTEST_SKIP() << "built without libonnx-dev"; }

#endif

}  // namespace

}  // namespace den::io
