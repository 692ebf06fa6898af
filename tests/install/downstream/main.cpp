// Learns two small tasks with an installed den, saves and reloads a checkpoint, and checks that the
// reloaded engine predicts the same. Prints "den <version>: ok" (tests/install/install_test.cmake).

#include <den/engine/engine.h>
#include <den/serialization/checkpoint.h>
#include <den/version.h>

#include <ATen/ATen.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace {

// Two Gaussian classes in 8 dimensions, told apart by the sign of feature `t`.
den::engine::Task make_task(int64_t t) {
  den::engine::Task task;
  task.name = "task-" + std::to_string(t);
  task.num_classes = 2;
  auto split = [&](int64_t n, at::Tensor& x, at::Tensor& y) {
    y = at::randint(0, 2, {n}, at::kLong);
    x = at::randn({n, 8});
    x.select(1, t).add_(y.to(at::kFloat).mul(4).sub(2));
  };
  split(256, task.train_x, task.train_y);
  split(64, task.val_x, task.val_y);
  split(64, task.test_x, task.test_y);
  return task;
}

}  // namespace

int main() {
  at::manual_seed(0);
  den::engine::Engine engine(den::engine::EngineConfig().set_hidden({16, 8}).set_max_iter(60).set_eval_every(20), 8);
  engine.add_task(make_task(0));
  engine.add_task(make_task(1));
  const at::Tensor x = make_task(1).test_x;
  const std::string path = (std::filesystem::temp_directory_path() / "den_downstream.den").string();
  den::io::save_checkpoint(engine, path);
  const den::io::LoadedCheckpoint loaded = den::io::load_checkpoint(path);
  std::filesystem::remove(path);
  const bool same = loaded.engine.num_tasks() == 2 && at::equal(loaded.engine.predict(2, x), engine.predict(2, x));
  std::printf("den %s: %s\n", den::kVersion, same ? "ok" : "reloaded engine differs");
  return same ? 0 : 1;
}
