// Checkpoints: round trip, resumed training, chunked records, atomic writes, and every bad input.

#include "serialization/checkpoint.h"

#include "engine/engine_state.h"
#include "engine/evaluation/run.h"
#include "tests/engine/synthetic.h"
#include "tests/fuzz/mutate.h"
#include "tests/serialization/helpers.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/import.h>
#include <zlib.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

namespace den::io {

namespace {

namespace fs = std::filesystem;
using testing::equal_graphs;
using testing::equal_reports;
using testing::read_bytes;
using testing::small_config;
using testing::write_bytes;

using Kind = CheckpointError::Kind;

class Checkpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("den_ckpt_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  /// A 3-task engine that grew (expansion on) and its per-task evaluations.
  static const std::pair<engine::Engine*, std::vector<engine::TaskEvaluation>>& trained() {
    static engine::Engine engine(small_config(), den::testing::SyntheticSpec{}.dim);
    static std::vector<engine::TaskEvaluation> evaluations = [] {
      engine::RunResult r = engine::run_stream(engine, 3, [](int64_t t) { return den::testing::synthetic_task(t); });
      return r.evaluations;
    }();
    static std::pair<engine::Engine*, std::vector<engine::TaskEvaluation>> out{&engine, evaluations};
    return out;
  }

  /// Loads `bytes` and returns the error kind it raises (fails the test if it loads).
  static Kind load_error(const std::string& bytes, LoadOptions options = {}) {
    try {
      load_checkpoint_bytes(bytes, "test", options);
    } catch (const CheckpointError& e) {
      return e.kind();
    }
    ADD_FAILURE() << "loaded without an error";
    return Kind::Missing;
  }

  fs::path dir_;
};

RunInfo sample_run() {
  RunInfo run;
  run.data_dir = "/data/x";
  run.protocol = "permuted";
  run.num_tasks = 5;
  run.classes_per_task = 2;
  run.train_limit = 100;
  run.val_fraction = 0.2;
  run.normalize = "minmax";
  run.seed = 7;
  run.data_crc32 = 0xdeadbeef;
  run.seconds = 12.5;
  return run;
}

TEST_F(Checkpoint, RoundTripKeepsPredictionsGraphHistoryAndMetrics) {
  const auto& [engine, evaluations] = trained();
  ASSERT_GT(engine->graph().layer_size(0), 16) << "the fixture should have grown";
  save_checkpoint(*engine, path("a.den"), {evaluations, sample_run()});

  const LoadedCheckpoint c = load_checkpoint(path("a.den"));
  EXPECT_EQ(c.format_version, kFormatVersion);
  EXPECT_EQ(c.file_bytes, fs::file_size(path("a.den")));
  EXPECT_EQ(c.writer.rfind("den ", 0), 0u);
  const engine::EngineState a = engine->state();
  const engine::EngineState b = c.engine.state();
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t l = 0; l < a.layers.size(); ++l) EXPECT_TRUE(at::equal(a.layers[l], b.layers[l])) << "layer " << l;
  ASSERT_EQ(a.heads.size(), b.heads.size());
  for (size_t t = 0; t < a.heads.size(); ++t) EXPECT_TRUE(at::equal(a.heads[t], b.heads[t])) << "head " << t + 1;
  EXPECT_TRUE(at::equal(a.rng_state, b.rng_state));
  EXPECT_TRUE(equal_graphs(a.graph, b.graph));
  ASSERT_EQ(a.history.size(), b.history.size());
  for (size_t t = 0; t < a.history.size(); ++t) {
    EXPECT_TRUE(equal_reports(a.history[t], b.history[t], /*with_seconds=*/true)) << "task " << t + 1;
  }
  EXPECT_EQ(a.base_params, b.base_params);
  EXPECT_EQ(a.config.layers, b.config.layers);
  EXPECT_EQ(a.config.input_shape, b.config.input_shape);
  EXPECT_EQ(a.config.k, b.config.k);
  EXPECT_EQ(a.config.lr, b.config.lr);
  EXPECT_EQ(a.config.seed, b.config.seed);
  EXPECT_EQ(a.config.max_iter, b.config.max_iter);

  const at::Tensor x = den::testing::synthetic_task(11).test_x;
  for (int64_t t = 1; t <= engine->num_tasks(); ++t) {
    EXPECT_TRUE(at::equal(engine->predict(t, x), c.engine.predict(t, x))) << "task " << t;
  }
  ASSERT_EQ(c.extras.evaluations.size(), evaluations.size());
  for (size_t i = 0; i < evaluations.size(); ++i) {
    EXPECT_EQ(c.extras.evaluations[i].after_task, evaluations[i].after_task);
    EXPECT_EQ(c.extras.evaluations[i].accuracy, evaluations[i].accuracy);
    EXPECT_EQ(c.extras.evaluations[i].auroc, evaluations[i].auroc);
  }
  ASSERT_TRUE(c.extras.run.has_value());
  const RunInfo& run = *c.extras.run;
  EXPECT_EQ(run.data_dir, "/data/x");
  EXPECT_EQ(run.normalize, "minmax");
  EXPECT_EQ(run.num_tasks, 5);
  EXPECT_EQ(run.val_fraction, 0.2);
  EXPECT_EQ(run.data_crc32, 0xdeadbeefu);
  EXPECT_EQ(run.seconds, 12.5);

  // The same engine saved twice gives the same bytes (no timestamps in the file).
  save_checkpoint(*engine, path("b.den"), {evaluations, sample_run()});
  EXPECT_EQ(read_bytes(path("a.den")), read_bytes(path("b.den")));
}

TEST_F(Checkpoint, AnEngineWithoutTasksRoundTrips) {
  const engine::Engine fresh(small_config(), 5);
  save_checkpoint(fresh, path("empty.den"));
  const LoadedCheckpoint c = load_checkpoint(path("empty.den"));
  EXPECT_EQ(c.engine.num_tasks(), 0);
  EXPECT_TRUE(at::equal(c.engine.network().layer(0), fresh.network().layer(0)));
  EXPECT_FALSE(c.extras.run.has_value());
  EXPECT_TRUE(c.extras.evaluations.empty());
}

// Settings added after the format's first version take 0 / false for "the behaviour before them":
// proto3 writes no field at its zero value, so a checkpoint written before a setting existed reads
// exactly like one written with it at zero, and resumes as it was trained.
TEST_F(Checkpoint, LaterSettingsRoundTripAndReadAsOffWhenAbsent) {
  const engine::Engine tuned(small_config()
                                 .set_early_stop_patience(3)
                                 .set_early_stop_min_delta(0.02)
                                 .set_prune_to_fixpoint(true)
                                 .set_reset_zeroed_moments(true),
                             5);
  save_checkpoint(tuned, path("tuned.den"));
  const LoadedCheckpoint tuned_back = load_checkpoint(path("tuned.den"));
  const engine::EngineConfig& t = tuned_back.engine.config();
  EXPECT_EQ(t.early_stop_patience, 3);
  EXPECT_EQ(t.early_stop_min_delta, 0.02);
  EXPECT_TRUE(t.prune_to_fixpoint);
  EXPECT_TRUE(t.reset_zeroed_moments);

  const engine::Engine old(small_config().set_early_stop_patience(0).set_early_stop_min_delta(0), 5);
  save_checkpoint(old, path("old.den"));
  const LoadedCheckpoint old_back = load_checkpoint(path("old.den"));
  const engine::EngineConfig& o = old_back.engine.config();
  EXPECT_EQ(o.early_stop_patience, 0);  // off: the moving-mean rule
  EXPECT_FALSE(o.prune_to_fixpoint);     // one sweep over zero groups
  EXPECT_FALSE(o.reset_zeroed_moments);
}

TEST_F(Checkpoint, ARestoredEngineContinuesBitForBit) {
  // Uninterrupted: tasks 1, 2, 3. Interrupted: tasks 1, 2, save, load, task 3.
  engine::Engine straight(small_config(), den::testing::SyntheticSpec{}.dim);
  engine::Engine first(small_config(), den::testing::SyntheticSpec{}.dim);
  for (int64_t t = 1; t <= 2; ++t) {
    straight.add_task(den::testing::synthetic_task(t));
    first.add_task(den::testing::synthetic_task(t));
  }
  save_checkpoint(first, path("two.den"));
  LoadedCheckpoint resumed = load_checkpoint(path("two.den"));
  const engine::TaskReport a = straight.add_task(den::testing::synthetic_task(3));
  const engine::TaskReport b = resumed.engine.add_task(den::testing::synthetic_task(3));

  EXPECT_TRUE(equal_reports(a, b, /*with_seconds=*/false));
  const engine::EngineState sa = straight.state();
  const engine::EngineState sb = resumed.engine.state();
  for (size_t l = 0; l < sa.layers.size(); ++l) EXPECT_TRUE(at::equal(sa.layers[l], sb.layers[l])) << "layer " << l;
  for (size_t t = 0; t < sa.heads.size(); ++t) EXPECT_TRUE(at::equal(sa.heads[t], sb.heads[t])) << "head " << t + 1;
  EXPECT_TRUE(equal_graphs(sa.graph, sb.graph));
  EXPECT_TRUE(at::equal(sa.rng_state, sb.rng_state));
}

TEST_F(Checkpoint, AResumedStreamRunEqualsTheUninterruptedOne) {
  const auto task = [](int64_t t) { return den::testing::synthetic_task(100 + t); };
  engine::Engine straight(small_config(), den::testing::SyntheticSpec{}.dim);
  const engine::RunResult full = engine::run_stream(straight, 3, task);

  engine::Engine part(small_config(), den::testing::SyntheticSpec{}.dim);
  const engine::RunResult first = engine::run_stream(part, 2, task);
  save_checkpoint(part, path("part.den"), {first.evaluations, std::nullopt});
  LoadedCheckpoint c = load_checkpoint(path("part.den"));
  int64_t callbacks = 0;
  engine::RunCallbacks cb;
  cb.task_done = [&](const engine::TaskReport&, const engine::TaskEvaluation&) { ++callbacks; };
  const engine::RunResult resumed =
      engine::resume_stream(c.engine, 3, task, engine::RunPrior{c.extras.evaluations, first.seconds}, cb);

  EXPECT_EQ(callbacks, 1);
  EXPECT_EQ(resumed.accuracy_matrix, full.accuracy_matrix);
  EXPECT_EQ(resumed.auroc_matrix, full.auroc_matrix);
  EXPECT_EQ(resumed.avg_accuracy, full.avg_accuracy);
  EXPECT_EQ(resumed.bwt, full.bwt);
  EXPECT_EQ(resumed.params, full.params);
  EXPECT_EQ(resumed.base_params, full.base_params);
  ASSERT_EQ(resumed.tasks.size(), full.tasks.size());
  for (size_t t = 0; t < full.tasks.size(); ++t) {
    EXPECT_TRUE(equal_reports(resumed.tasks[t], full.tasks[t], false)) << "task " << t + 1;
  }
  EXPECT_THROW(engine::resume_stream(c.engine, 3, task, engine::RunPrior{}), std::invalid_argument);
}

/// The same task-agnostic state, field by field.
void expect_same_agnostic(const engine::AgnosticState& a, const engine::AgnosticState& b) {
  EXPECT_EQ(a.output_classes, b.output_classes);
  EXPECT_EQ(a.memory_classes, b.memory_classes);
  EXPECT_EQ(a.memory_tasks, b.memory_tasks);
  EXPECT_EQ(a.scale, b.scale);
  EXPECT_EQ(a.shift, b.shift);
  ASSERT_EQ(a.memory_x.defined(), b.memory_x.defined());
  if (a.memory_x.defined()) {
    EXPECT_TRUE(at::equal(a.memory_x, b.memory_x));
  }
}

TEST_F(Checkpoint, TheTaskAgnosticStateAndTheNormalizationRoundTrip) {
  const auto task = [](int64_t t) { return den::testing::synthetic_task(200 + t); };
  engine::Engine engine(small_config(), den::testing::SyntheticSpec{}.dim);
  const engine::RunResult r = engine::run_stream(engine, 2, task);
  ASSERT_EQ(r.agnostic.output_classes.size(), 2u);
  ASSERT_GT(r.agnostic.memory_classes.size(), 0u);
  const int64_t dim = den::testing::SyntheticSpec{}.dim;
  const FeatureNormalization normalization{"standardize", at::randn({dim}), at::rand({dim})};
  for (const int64_t record_bytes : {int64_t{64} << 20, int64_t{256}}) {  // whole and chunked
    SaveOptions options;
    options.max_record_bytes = record_bytes;
    save_checkpoint(engine, path("a.den"), {r.evaluations, sample_run(), r.agnostic, normalization}, options);
    const LoadedCheckpoint c = load_checkpoint(path("a.den"));
    EXPECT_EQ(c.format_version, kFormatVersion);
    ASSERT_TRUE(c.extras.agnostic.has_value());
    expect_same_agnostic(*c.extras.agnostic, r.agnostic);
    ASSERT_TRUE(c.extras.normalization.has_value());
    EXPECT_EQ(c.extras.normalization->mode, "standardize");
    EXPECT_TRUE(at::equal(c.extras.normalization->shift, normalization.shift));
    EXPECT_TRUE(at::equal(c.extras.normalization->scale, normalization.scale));
    // Same task-agnostic predictions as the classifier that was saved.
    const at::Tensor x = task(2).test_x;
    const engine::TaskAgnosticClassifier original = engine::TaskAgnosticClassifier::restore({}, r.agnostic);
    EXPECT_TRUE(at::equal(agnostic_classifier(c, "a.den").predict(c.engine, x), original.predict(engine, x)));
  }
  // Without them, nothing is invented on load.
  save_checkpoint(engine, path("b.den"), {r.evaluations, std::nullopt});
  const LoadedCheckpoint plain = load_checkpoint(path("b.den"));
  EXPECT_FALSE(plain.extras.agnostic.has_value());
  EXPECT_FALSE(plain.extras.normalization.has_value());
  try {
    agnostic_classifier(plain, "b.den");
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_EQ(e.kind(), Kind::LacksState);
    EXPECT_NE(std::string(e.what()).find("saved without a task-agnostic state"), std::string::npos) << e.what();
  }
}

TEST_F(Checkpoint, AContradictoryTaskAgnosticStateIsRefused) {
  const auto task = [](int64_t t) { return den::testing::synthetic_task(300 + t); };
  engine::Engine engine(small_config(), den::testing::SyntheticSpec{}.dim);
  const engine::RunResult r = engine::run_stream(engine, 1, task);
  engine::AgnosticState unknown_class = r.agnostic;
  unknown_class.memory_classes.back() = 99;
  save_checkpoint(engine, path("c.den"), {r.evaluations, std::nullopt, unknown_class});
  EXPECT_EQ(load_error(read_bytes(path("c.den"))), Kind::Inconsistent);
  engine::AgnosticState two_tasks = r.agnostic;  // one more task than the engine learned
  two_tasks.output_classes.push_back(two_tasks.output_classes.back());
  EXPECT_THROW(save_checkpoint(engine, path("d.den"), {r.evaluations, std::nullopt, two_tasks}), WriteError);
}

TEST_F(Checkpoint, AResumeFromOneTaskEqualsTheUninterruptedRunTaskAgnosticToo) {
  const auto task = [](int64_t t) { return den::testing::synthetic_task(400 + t); };
  engine::Engine straight(small_config(), den::testing::SyntheticSpec{}.dim);
  const engine::RunResult full = engine::run_stream(straight, 3, task);
  ASSERT_EQ(full.agnostic_matrix.size(), 3u);

  engine::Engine part(small_config(), den::testing::SyntheticSpec{}.dim);
  const engine::RunResult first = engine::run_stream(part, 1, task);
  save_checkpoint(part, path("one.den"), {first.evaluations, std::nullopt, first.agnostic});
  LoadedCheckpoint c = load_checkpoint(path("one.den"));
  LoadedCheckpoint rebuilt = load_checkpoint(path("one.den"));
  const engine::RunResult resumed =
      engine::resume_stream(c.engine, 3, task, engine::RunPrior{c.extras.evaluations, 0.0, c.extras.agnostic});
  EXPECT_EQ(resumed.accuracy_matrix, full.accuracy_matrix);
  EXPECT_EQ(resumed.agnostic_matrix, full.agnostic_matrix);
  EXPECT_EQ(resumed.avg_agnostic_accuracy, full.avg_agnostic_accuracy);
  expect_same_agnostic(resumed.agnostic, full.agnostic);

  // The defect this state fixes: rebuilt from the validation splits, the classifier starts its
  // next calibration from (1, 0) instead of task 1's fit, and ends elsewhere.
  const engine::RunResult without = engine::resume_stream(rebuilt.engine, 3, task,
                                                          engine::RunPrior{rebuilt.extras.evaluations, 0.0});
  EXPECT_EQ(without.accuracy_matrix, full.accuracy_matrix);
  EXPECT_NE(without.agnostic.scale, full.agnostic.scale);
  // A state that does not describe the stream's tasks is refused.
  engine::AgnosticState other = *c.extras.agnostic;
  for (int64_t& k : other.output_classes[0]) k += 1;
  LoadedCheckpoint again = load_checkpoint(path("one.den"));
  EXPECT_THROW(engine::resume_stream(again.engine, 3, task, engine::RunPrior{again.extras.evaluations, 0.0, other}),
               std::invalid_argument);
}

// A conv network round-trips with its layers, its input shape and every filter, and goes on learning
// from the checkpoint as the original does.
TEST_F(Checkpoint, AConvNetworkRoundTripsAndContinuesAsTheOriginal) {
  den::testing::SyntheticSpec spec;
  spec.dim = spec.informative = 64;
  engine::EngineConfig config = engine::preset("den")
                                    .set_layers(engine::parse_layers("conv3x3:4,maxpool2,conv2x2:6,fc:8"))
                                    .set_input_shape({1, 8, 8})
                                    .set_max_iter(60)
                                    .set_batch_size(64)
                                    .set_eval_every(20)
                                    .set_k(2)
                                    .set_tau(0);
  engine::Engine original(config, 64);
  original.add_task(den::testing::synthetic_task(1, spec));
  original.add_task(den::testing::synthetic_task(2, spec));
  save_checkpoint(original, path("conv.den"));
  LoadedCheckpoint c = load_checkpoint(path("conv.den"));
  EXPECT_EQ(c.engine.config().layers, config.layers);
  EXPECT_EQ(c.engine.config().input_shape, config.input_shape);
  for (int64_t l = 0; l < 3; ++l) EXPECT_TRUE(at::equal(c.engine.network().layer(l), original.network().layer(l)));
  const at::Tensor x = den::testing::synthetic_task(9, spec).test_x;
  for (int64_t t = 1; t <= 2; ++t) EXPECT_TRUE(at::equal(c.engine.predict(t, x), original.predict(t, x)));
  original.add_task(den::testing::synthetic_task(3, spec));
  c.engine.add_task(den::testing::synthetic_task(3, spec));
  EXPECT_TRUE(at::equal(c.engine.predict(3, x), original.predict(3, x)));
}

// Format 2 stored fc layers as their sizes (Config.hidden); it loads as fc layers on flat input and
// goes on learning, and what it writes next is format 3.
TEST_F(Checkpoint, AFormatVersion2CheckpointLoadsAsFcLayersAndGoesOn) {
  const std::string file = std::string(DEN_SERIALIZATION_TEST_DATA) + "/format2-one-task.den";
  LoadedCheckpoint c = load_checkpoint(file);
  EXPECT_EQ(c.format_version, 2u);
  EXPECT_EQ(c.engine.config().layers, (engine::Layers{4, 3}));
  EXPECT_TRUE(c.engine.config().input_shape.empty());
  EXPECT_TRUE(c.engine.network().all_fc());
  EXPECT_EQ(c.engine.input_dim(), 36);
  ASSERT_TRUE(c.extras.agnostic.has_value());
  const at::Tensor x = at::rand({5, 36});
  const at::Tensor before = c.engine.predict(1, x);
  den::testing::SyntheticSpec spec;
  spec.dim = spec.informative = 36;
  c.engine.add_task(den::testing::synthetic_task(4, spec));
  EXPECT_TRUE(at::equal(c.engine.predict(1, x), before));  // its den preset keeps task 1 exact
  save_checkpoint(c.engine, path("again.den"));
  const LoadedCheckpoint again = load_checkpoint(path("again.den"));
  EXPECT_EQ(again.format_version, kFormatVersion);
  EXPECT_EQ(again.engine.config().layers, (engine::Layers{4, 3}));
  EXPECT_TRUE(at::equal(again.engine.predict(2, x), c.engine.predict(2, x)));
}

// Format 4: how images become the input, and the names of the classes image folders gave.
TEST_F(Checkpoint, TheImageInputAndTheClassNamesRoundTrip) {
  engine::Engine engine(small_config(), den::testing::SyntheticSpec{}.dim);  // 20 inputs: 1x4x5 images
  engine.add_task(den::testing::synthetic_task(1));
  CheckpointExtras extras;
  extras.images = ImageInput{1, 4, 5, 6, {0.5}, {0.25}};
  extras.class_names = {{3, "brad_pitt"}, {11, "angelina jolie"}};
  save_checkpoint(engine, path("images.den"), extras);
  const LoadedCheckpoint c = load_checkpoint(path("images.den"));
  ASSERT_TRUE(c.extras.images.has_value());
  EXPECT_EQ(c.extras.images->channels, 1);
  EXPECT_EQ(c.extras.images->height, 4);
  EXPECT_EQ(c.extras.images->width, 5);
  EXPECT_EQ(c.extras.images->resize, 6);
  EXPECT_EQ(c.extras.images->mean, std::vector<double>{0.5});
  EXPECT_EQ(c.extras.images->std, std::vector<double>{0.25});
  EXPECT_EQ(c.extras.class_names, extras.class_names);
  save_checkpoint(engine, path("plain.den"));
  EXPECT_FALSE(load_checkpoint(path("plain.den")).extras.images.has_value());

  // A preprocessing that cannot be (or cannot feed this network) is refused as corrupt.
  for (const ImageInput& bad : {ImageInput{2, 4, 5, 0, {}, {}}, ImageInput{1, 4, 5, 0, {0.5}, {}},
                                ImageInput{1, 4, 5, 0, {0.5}, {0.0}}, ImageInput{3, 4, 5, 0, {}, {}},
                                ImageInput{1, -4, -5, 0, {}, {}}}) {
    extras.images = bad;
    save_checkpoint(engine, path("bad.den"), extras);
    try {
      load_checkpoint(path("bad.den"));
      FAIL() << bad.channels << "x" << bad.height << "x" << bad.width;
    } catch (const CheckpointError& e) {
      EXPECT_EQ(e.kind(), Kind::Corrupt) << e.what();
      EXPECT_NE(std::string(e.what()).find("image input"), std::string::npos) << e.what();
    }
  }
}

// Format 3 (commit b56557a) had no image input or class names; a conv checkpoint of it loads and
// predicts, and what it writes next is format 4.
TEST_F(Checkpoint, AFormatVersion3ConvCheckpointLoadsAndGoesOn) {
  const std::string file = std::string(DEN_SERIALIZATION_TEST_DATA) + "/format3-conv-import.den";
  LoadedCheckpoint c = load_checkpoint(file);
  EXPECT_EQ(c.format_version, 3u);
  EXPECT_EQ(engine::layers_to_text(c.engine.config().layers), "conv3x3p1:4,maxpool2,conv2x2:6,avgpool2,fc:8");
  EXPECT_EQ(c.engine.config().input_shape, (std::vector<int64_t>{1, 10, 10}));
  EXPECT_FALSE(c.extras.images.has_value());
  EXPECT_TRUE(c.extras.class_names.empty());
  // Its outputs are the imported model's own (the fixture's inputs and outputs).
  torch::jit::Module io = torch::jit::load(std::string(DEN_SERIALIZATION_TEST_DATA) + "/import/conv_sequential_script.io.pt");
  EXPECT_TRUE(at::allclose(c.engine.predict(1, io.attr("x").toTensor().flatten(1)), io.attr("y").toTensor(), 1e-5, 1e-5));
  save_checkpoint(c.engine, path("again.den"), c.extras);
  EXPECT_EQ(load_checkpoint(path("again.den")).format_version, kFormatVersion);
}

TEST_F(Checkpoint, AFormatVersion1CheckpointStillLoads) {
  // tests/serialization/data/README.md says how the file was made.
  const std::string file = std::string(DEN_SERIALIZATION_TEST_DATA) + "/format1-one-task.den";
  const LoadedCheckpoint c = load_checkpoint(file);
  EXPECT_EQ(c.format_version, 1u);
  EXPECT_EQ(c.engine.num_tasks(), 1);
  EXPECT_EQ(c.extras.evaluations.size(), 1u);
  ASSERT_TRUE(c.extras.run.has_value());
  EXPECT_EQ(c.extras.run->protocol, "permuted");
  EXPECT_FALSE(c.extras.agnostic.has_value());
  EXPECT_FALSE(c.extras.normalization.has_value());
  EXPECT_EQ(c.engine.predict(1, at::zeros({2, c.engine.input_dim()})).size(0), 2);
  EXPECT_EQ(c.engine.config().layers, (engine::Layers{3, 2}));  // Config.hidden, as fc layers
  // NOTE: [presets] Written before the den preset, it resumes with the released code's behaviour.
  const engine::EngineConfig& config = c.engine.config();
  const engine::EngineConfig released = engine::preset("released");
  EXPECT_EQ(config.selection_budget, released.selection_budget);
  EXPECT_EQ(config.restore_drifted, released.restore_drifted);
  EXPECT_EQ(config.relative_sigma, released.relative_sigma);
  EXPECT_EQ(config.relative_tau, released.relative_tau);
  EXPECT_EQ(config.expansion_min_gain, released.expansion_min_gain);
  EXPECT_EQ(config.selective_iter_fraction, released.selective_iter_fraction);
  EXPECT_EQ(config.early_stop_patience, released.early_stop_patience);
  try {
    agnostic_classifier(c, file);
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_EQ(e.kind(), Kind::LacksState);
    EXPECT_NE(std::string(e.what()).find("format version 1"), std::string::npos) << e.what();
  }
}

TEST_F(Checkpoint, TensorsLargerThanTheRecordLimitAreCutIntoChunks) {
  // NOTE: [checkpoint layout]: protobuf caps a message at 2 GiB. Lowering the record limit to 1 KiB
  // makes every tensor here larger than a record, as a > 2 GiB network is with the real limit.
  den::testing::SyntheticSpec wide;
  wide.dim = 400;  // layer 0 alone is larger than the header and than a reader's lowered limit
  engine::Engine trained_wide(small_config(), wide.dim);
  const engine::RunResult run = engine::run_stream(trained_wide, 2, [&](int64_t t) {
    return den::testing::synthetic_task(t, wide);
  });
  const engine::Engine* engine = &trained_wide;
  const std::vector<engine::TaskEvaluation>& evaluations = run.evaluations;
  const int64_t largest = engine->network().layer(0).numel() * 4;
  ASSERT_GT(largest, 24 * 1024);
  SaveOptions small;
  small.max_record_bytes = 1024;
  int64_t records = 0;
  small.on_record_written = [&](int64_t) { ++records; };
  save_checkpoint(*engine, path("chunked.den"), {evaluations, std::nullopt}, small);
  const int64_t tensors = engine->network().num_layers() + engine->num_tasks();
  EXPECT_GT(records, tensors + largest / 1024);

  // A reader whose limit is below the largest tensor still reads it, piece by piece.
  LoadOptions strict;
  strict.max_record_bytes = 12 * 1024;
  ASSERT_LT(strict.max_record_bytes, largest);
  const LoadedCheckpoint c = load_checkpoint(path("chunked.den"), strict);
  for (int64_t l = 0; l < engine->network().num_layers(); ++l) {
    EXPECT_TRUE(at::equal(c.engine.network().layer(l), engine->network().layer(l)));
  }
  for (int64_t t = 1; t <= engine->num_tasks(); ++t) {
    EXPECT_TRUE(at::equal(c.engine.network().head(t), engine->network().head(t)));
  }

  // Written with the default limit, the largest tensor is one record, over that reader's limit.
  save_checkpoint(*engine, path("whole.den"));
  try {
    load_checkpoint(path("whole.den"), strict);
    FAIL() << "a record over the limit was accepted";
  } catch (const CheckpointError& e) {
    EXPECT_EQ(e.kind(), Kind::Corrupt);
    EXPECT_NE(std::string(e.what()).find("limit"), std::string::npos) << e.what();
  }
  EXPECT_THROW(save_checkpoint(*engine, path("tiny.den"), {}, SaveOptions{100, {}}), WriteError);
}

TEST_F(Checkpoint, AFailedWriteLeavesTheOldFileAndNoTemporaries) {
  const auto& [engine, evaluations] = trained();
  save_checkpoint(*engine, path("keep.den"), {evaluations, std::nullopt});
  const std::string before = read_bytes(path("keep.den"));

  SaveOptions crash;
  crash.max_record_bytes = 1024;
  crash.on_record_written = [](int64_t record) {
    if (record == 3) throw std::runtime_error("simulated crash");
  };
  EXPECT_THROW(save_checkpoint(*engine, path("keep.den"), {}, crash), std::runtime_error);
  EXPECT_EQ(read_bytes(path("keep.den")), before);
  int64_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    ++files;
    EXPECT_EQ(entry.path().filename(), "keep.den");
  }
  EXPECT_EQ(files, 1);

  EXPECT_THROW(save_checkpoint(*engine, path("no/such/dir/x.den")), WriteError);
  fs::create_directories(path("a_directory"));
  EXPECT_THROW(save_checkpoint(*engine, path("a_directory")), WriteError);
}

TEST_F(Checkpoint, TheNextSaveRemovesTemporariesOfAKilledWriterOnly) {
  const auto& [engine, evaluations] = trained();
  // What a SIGKILL during a save leaves: an unlocked temporary. A live writer's is locked.
  write_bytes(path(".keep.den.tmp-dead01"), "half a checkpoint");
  write_bytes(path(".keep.den.tmp-live01"), "being written");
  const int live = ::open(path(".keep.den.tmp-live01").c_str(), O_RDONLY);
  ASSERT_GE(live, 0);
  ASSERT_EQ(::flock(live, LOCK_EX), 0);
  write_bytes(path(".keep.den.tmp-longer1"), "not a temporary name");
  write_bytes(path(".other.den.tmp-dead02"), "another file's temporary");
  save_checkpoint(*engine, path("keep.den"), {evaluations, std::nullopt});
  EXPECT_FALSE(fs::exists(path(".keep.den.tmp-dead01")));
  EXPECT_TRUE(fs::exists(path(".keep.den.tmp-live01")));
  EXPECT_TRUE(fs::exists(path(".keep.den.tmp-longer1")));
  EXPECT_TRUE(fs::exists(path(".other.den.tmp-dead02")));
  ::close(live);
  EXPECT_EQ(load_checkpoint(path("keep.den")).engine.num_tasks(), 3);
}

TEST_F(Checkpoint, AWrittenFileHasTheModeTheUmaskAllows) {
  const auto& [engine, evaluations] = trained();
  for (const mode_t mask : {mode_t{022}, mode_t{027}, mode_t{077}}) {
    const mode_t old = ::umask(mask);
    write_file_atomically(path("f"), "bytes");
    save_checkpoint(*engine, path("c.den"));
    ::umask(old);
    struct stat st {};
    ASSERT_EQ(::stat(path("f").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask) << std::oct << mask;
    ASSERT_EQ(::stat(path("c.den").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask) << std::oct << mask;
  }
}

TEST_F(Checkpoint, MissingAndNonCheckpointFilesAreNamed) {
  try {
    load_checkpoint(path("absent.den"));
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_EQ(e.kind(), Kind::Missing);
    EXPECT_NE(std::string(e.what()).find("absent.den"), std::string::npos) << e.what();
  }
  EXPECT_EQ(load_error(""), Kind::NotACheckpoint);
  EXPECT_EQ(load_error("hello, world: this is a text file and not a checkpoint"), Kind::NotACheckpoint);
  EXPECT_EQ(load_error(std::string("\x89PNG\r\n\x1a\n", 8) + std::string(100, '\0')), Kind::NotACheckpoint);
  fs::create_directories(path("dir.den"));
  EXPECT_THROW(load_checkpoint(path("dir.den")), CheckpointError);
}

TEST_F(Checkpoint, EveryTruncationIsDetected) {
  const auto& [engine, evaluations] = trained();
  SaveOptions chunked;
  chunked.max_record_bytes = 2048;  // many record boundaries to cut at
  save_checkpoint(*engine, path("t.den"), {evaluations, sample_run()}, chunked);
  const std::string bytes = read_bytes(path("t.den"));
  ASSERT_GT(bytes.size(), 10000u);
  for (size_t cut = 1; cut < bytes.size(); cut += (cut < 64 ? 1 : 97)) {
    EXPECT_EQ(load_error(bytes.substr(0, cut)), Kind::Truncated) << "cut at " << cut;
  }
  EXPECT_EQ(load_error(bytes.substr(0, bytes.size() - 1)), Kind::Truncated);
  // Bytes after the last record are refused too.
  EXPECT_EQ(load_error(bytes + "x"), Kind::Corrupt);
}

TEST_F(Checkpoint, EveryBitFlipIsDetected) {
  const auto& [engine, evaluations] = trained();
  SaveOptions chunked;
  chunked.max_record_bytes = 2048;
  save_checkpoint(*engine, path("f.den"), {evaluations, sample_run()}, chunked);
  const std::string bytes = read_bytes(path("f.den"));
  for (size_t i = 0; i < bytes.size(); i += (i < 64 ? 1 : 13)) {
    std::string flipped = bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ (1 << (i % 8)));
    const Kind kind = load_error(flipped);
    EXPECT_TRUE(kind == Kind::NotACheckpoint || kind == Kind::Corrupt || kind == Kind::Truncated)
        << "byte " << i << " kind " << static_cast<int>(kind);
  }
}

TEST_F(Checkpoint, ANewerFormatVersionIsRefusedByName) {
  const auto& [engine, evaluations] = trained();
  save_checkpoint(*engine, path("v.den"));
  std::string bytes = read_bytes(path("v.den"));
  // The next version with a valid preamble checksum, as a newer den would write it.
  bytes[8] = static_cast<char>(kFormatVersion + 1);
  const uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(bytes.data()), 12);
  for (int i = 0; i < 4; ++i) bytes[12 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  try {
    load_checkpoint_bytes(bytes, "v.den");
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_EQ(e.kind(), Kind::NewerVersion);
    EXPECT_NE(std::string(e.what()).find("version " + std::to_string(kFormatVersion + 1)), std::string::npos)
        << e.what();
  }
}

TEST_F(Checkpoint, TensorsThatDoNotMatchTheGraphAreRefused) {
  const auto& [engine, evaluations] = trained();
  {
    engine::EngineState s = engine->state().clone();
    s.layers[0] = s.layers[0].narrow(0, 0, s.layers[0].size(0) - 1);  // one unit short
    save_state(s, path("short.den"));
    try {
      load_checkpoint(path("short.den"));
      FAIL();
    } catch (const CheckpointError& e) {
      EXPECT_EQ(e.kind(), Kind::Inconsistent);
      EXPECT_NE(std::string(e.what()).find("layer 0"), std::string::npos) << e.what();
    }
  }
  {
    engine::EngineState s = engine->state().clone();
    s.heads.pop_back();  // a head missing
    save_state(s, path("nohead.den"));
    EXPECT_THROW(load_checkpoint(path("nohead.den")), CheckpointError);
  }
  {
    engine::EngineState s = engine->state().clone();
    s.layers[1] = at::cat({s.layers[1], s.layers[1].narrow(1, 0, 1)}, 1);  // one column too many
    save_state(s, path("wide.den"));
    EXPECT_THROW(load_checkpoint(path("wide.den")), CheckpointError);
  }
  {
    engine::EngineState s = engine->state().clone();
    s.layers[0][0][0] = std::nanf("");
    save_state(s, path("nan.den"));
    EXPECT_THROW(load_checkpoint(path("nan.den")), CheckpointError);
  }
}

TEST_F(Checkpoint, AGraphThatContradictsItselfIsRefused) {
  const auto& [engine, evaluations] = trained();
  engine::EngineState s = engine->state().clone();
  std::vector<std::vector<graph::Unit>> layers;
  for (int64_t l = 0; l < s.graph.num_layers(); ++l) layers.push_back(s.graph.units(l));
  layers[1][0].id = layers[0][0].id;  // duplicate id
  EXPECT_THROW(graph::UnitGraph::restore(s.graph.input_dim(), layers, s.graph.heads(), s.graph.removed_units(),
                                         s.graph.next_id()),
               std::invalid_argument);
  layers[1][0].id = s.graph.next_id() + 5;  // id beyond next_id
  EXPECT_THROW(graph::UnitGraph::restore(s.graph.input_dim(), layers, s.graph.heads(), s.graph.removed_units(),
                                         s.graph.next_id()),
               std::invalid_argument);
}

/// Replays the fuzz corpus and mutations of a real checkpoint, checksums off so that the parser
/// behind them is reached: loading either works or raises CheckpointError, nothing else.
TEST_F(Checkpoint, TheLoaderSurvivesTheFuzzCorpusAndMutations) {
  std::vector<std::string> inputs;
  for (const auto& entry : fs::directory_iterator(DEN_FUZZ_CORPUS)) inputs.push_back(read_bytes(entry.path()));
  ASSERT_FALSE(inputs.empty()) << "no corpus in " << DEN_FUZZ_CORPUS;
  // Seeded mutants of the corpus inputs (tests/fuzz/mutate.h).
  inputs = den::testing::with_mutations(std::move(inputs), 1500, 7);
  LoadOptions unchecked;
  unchecked.verify_checksums = false;
  int64_t loaded = 0;
  for (const std::string& input : inputs) {
    for (const LoadOptions& options : {LoadOptions{}, unchecked}) {
      try {
        load_checkpoint_bytes(input, "fuzz", options);
        ++loaded;
      } catch (const CheckpointError&) {
      } catch (const std::exception& e) {
        ADD_FAILURE() << "unexpected exception: " << e.what();
      }
    }
  }
  EXPECT_GT(loaded, 0);  // the corpus itself loads
}

}  // namespace

}  // namespace den::io
