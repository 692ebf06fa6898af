// Teach a trained network new classes, with the C++ API.
//
// Task 1 learns the first 8 Fashion-MNIST classes. Then each of the last two classes arrives as a
// task of its own (the new class against examples of the known ones), and DEN grows the network
// only as much as it needs. After every task the program prints the accuracy on the old classes
// and on the new one, both told the task (task-aware) and not told it (task-agnostic: one answer
// among all classes seen so far).
//
//   den_example_new_classes [DATA_DIR] [MAX_ITER] [TRAIN_LIMIT]
//
// Defaults: /usr/share/datasets/fashion-mnist, 1000 iterations per phase, all training samples.

#include "data/idx_reader.h"
#include "data/task_stream.h"
#include "engine/engine.h"
#include "engine/evaluation/task_agnostic.h"
#include "engine/training/threads.h"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

namespace {

/// Fraction of `predicted` equal to `labels`, over the rows where `labels` >= 0.
double accuracy_of(const at::Tensor& predicted, const at::Tensor& labels) {
  const at::Tensor known = labels.ge(0);
  return predicted.eq(labels).logical_and(known).sum().item<double>() / known.sum().item<double>();
}

}  // namespace

int main(int argc, char** argv) try {
  using namespace den;
  const std::string data_dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  const int64_t max_iter = argc > 2 ? std::atoll(argv[2]) : 1000;
  const int64_t train_limit = argc > 3 ? std::atoll(argv[3]) : 0;
  engine::configure_threads(0);

  data::TrainTest files = data::load_directory(data_dir);
  const int64_t num_classes = files.train.num_classes;
  data::StreamOptions options;
  options.protocol = data::Protocol::Split;
  options.base_classes = num_classes - 2;  // 8 old classes for Fashion-MNIST, then 2 new ones
  options.num_tasks = 3;
  options.train_limit = train_limit;
  const data::TaskStream stream(std::move(files.train), std::move(files.test), options);

  engine::Engine den(engine::EngineConfig().set_max_iter(max_iter), stream.input_dim());
  engine::TaskAgnosticClassifier agnostic;  // 20 held-out exemplars per class
  std::vector<engine::Task> seen;           // test splits of the tasks learned so far

  for (int64_t t = 1; t <= stream.num_tasks(); ++t) {
    engine::Task task = stream.task(t);
    const engine::TaskReport report = den.add_task(task);
    agnostic.add_task(t, task);
    agnostic.fit(den);
    task.train_x = task.train_y = at::Tensor();  // only the test split is kept
    seen.push_back(std::move(task));

    std::printf("after task %lld (%s): hidden", static_cast<long long>(t), report.name.c_str());
    for (int64_t n : report.hidden_units) std::printf(" %lld", static_cast<long long>(n));
    std::printf(", %lld parameters\n", static_cast<long long>(den.num_params()));
    for (int64_t j = 1; j <= t; ++j) {
      const engine::Task& old = seen[j - 1];
      const double aware = accuracy_of(den.predict(j, old.test_x).argmax(1), old.test_y);
      const double blind = accuracy_of(agnostic.predict(den, old.test_x), agnostic.global_labels(j, old.test_y));
      std::printf("  %-14s %s  task-aware %.4f  task-agnostic %.4f\n", old.name.c_str(),
                  j < t ? "old" : "new", aware, blind);
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
