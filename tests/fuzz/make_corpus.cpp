// Writes the seed corpus of the checkpoint-loader fuzzer (tests/fuzz/corpus): small valid
// checkpoints of tiny engines with 0, 1 and 2 tasks, one with growth and split lineage, and one
// cut into 256-byte records. Run: den_make_fuzz_corpus tests/fuzz/corpus

#include "serialization/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cstdio>
#include <string>

namespace {

den::engine::Task tiny_task(uint64_t seed, int64_t dim, int64_t classes) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  den::engine::Task task;
  task.name = "tiny-" + std::to_string(seed);
  task.num_classes = classes;
  const at::Tensor means = at::randn({classes, dim}, gen, at::kFloat);
  auto split = [&](int64_t n) {
    at::Tensor y = at::randint(classes, {n}, gen, at::kLong);
    at::Tensor x = means.index_select(0, y) + 0.3 * at::randn({n, dim}, gen, at::kFloat);
    return std::make_pair(x, y);
  };
  std::tie(task.train_x, task.train_y) = split(64);
  std::tie(task.val_x, task.val_y) = split(32);
  std::tie(task.test_x, task.test_y) = split(32);
  return task;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  using den::engine::EngineConfig;
  const EngineConfig cfg =
      EngineConfig().set_hidden({3, 2}).set_max_iter(20).set_batch_size(16).set_eval_every(10).set_k(2).set_tau(0).set_sigma(0.01);
  den::engine::Engine engine(cfg, 4);
  den::io::save_checkpoint(engine, dir + "/no-task.den");
  den::engine::RunResult r =
      den::engine::run_stream(engine, 1, [](int64_t t) { return tiny_task(t, 4, 2); });
  den::io::RunInfo run;
  run.data_dir = "/tmp/data";
  run.protocol = "permuted";
  run.num_tasks = 3;
  run.data_crc32 = 42;
  den::io::save_checkpoint(engine, dir + "/one-task.den", {r.evaluations, run});
  r = den::engine::resume_stream(engine, 2, [](int64_t t) { return tiny_task(t, 4, 2); },
                                 den::engine::RunPrior{r.evaluations, 0.0});
  den::io::save_checkpoint(engine, dir + "/two-tasks-grown.den", {r.evaluations, run});
  den::io::SaveOptions chunked;
  chunked.max_record_bytes = 256;
  den::io::save_checkpoint(engine, dir + "/two-tasks-chunked.den", {r.evaluations, std::nullopt}, chunked);
  // Format 4's image input, class names and a frozen trunk (its archive as opaque bytes: the loader
  // never deserializes it), with the task-agnostic state, in small records.
  den::io::CheckpointExtras images{r.evaluations, std::nullopt, r.agnostic};
  images.images = den::io::ImageInput{1, 2, 2, 3, {0.5}, {0.25}};
  images.class_names = {{0, "ant"}, {1, "bee, with a comma"}};
  den::io::FrozenTrunk trunk;
  trunk.module = std::string(300, 'z');
  trunk.input_shape = {1, 2, 2};
  trunk.feature_shape = {4};
  trunk.cut = "layer4";
  images.trunk = trunk;
  den::io::save_checkpoint(engine, dir + "/two-tasks-images-trunk.den", images, chunked);
  std::printf("hidden %lld-%lld after 2 tasks; corpus written to %s\n",
              static_cast<long long>(engine.graph().layer_size(0)), static_cast<long long>(engine.graph().layer_size(1)),
              dir.c_str());
  return 0;
}
