#pragma once

// Shared helpers of the serialization tests: a small fast config, byte files, and comparisons of
// graphs and task reports.

#include "engine/config.h"
#include "engine/engine.h"
#include "graph/unit_graph.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace den::io::testing {

/// Small and quick, with expansion and splits happening on the synthetic stream.
inline engine::EngineConfig small_config() {
  return engine::EngineConfig()
      .set_hidden({16, 8})
      .set_max_iter(120)
      .set_batch_size(64)
      .set_eval_every(40)
      .set_k(4)
      .set_tau(0)       // always expand
      .set_sigma(0.02)  // and split
      .set_seed(3);
}

/// A fresh directory under the system's temporary directory, removed with its contents.
class TempDir {
 public:
  TempDir() {
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = test ? test->name() : "x";
    std::replace(name.begin(), name.end(), '/', '_');  // parameterized tests are named "Name/3"
    path_ = std::filesystem::temp_directory_path() / ("den_test_" + std::to_string(::getpid()) + "_" + name);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline bool equal_units(const graph::Unit& a, const graph::Unit& b) {
  return a.id == b.id && a.birth_stage == b.birth_stage && a.origin == b.origin && a.split_from == b.split_from &&
         a.alive == b.alive;
}

/// Same units (in order, with stamps and lineage), heads, pruned units and next id.
inline ::testing::AssertionResult equal_graphs(const graph::UnitGraph& a, const graph::UnitGraph& b) {
  if (a.input_dim() != b.input_dim() || a.num_layers() != b.num_layers() || a.next_id() != b.next_id()) {
    return ::testing::AssertionFailure() << "input, layer count or next id differ";
  }
  for (int64_t l = 0; l < a.num_layers(); ++l) {
    if (a.units(l).size() != b.units(l).size()) return ::testing::AssertionFailure() << "layer " << l << " size";
    for (size_t p = 0; p < a.units(l).size(); ++p) {
      if (!equal_units(a.units(l)[p], b.units(l)[p])) {
        return ::testing::AssertionFailure() << "unit " << p << " of layer " << l;
      }
    }
  }
  if (a.num_heads() != b.num_heads()) return ::testing::AssertionFailure() << "head count";
  for (int64_t t = 1; t <= a.num_heads(); ++t) {
    if (a.head(t).num_outputs != b.head(t).num_outputs) return ::testing::AssertionFailure() << "head " << t;
  }
  if (a.removed_units().size() != b.removed_units().size()) return ::testing::AssertionFailure() << "pruned count";
  for (size_t i = 0; i < a.removed_units().size(); ++i) {
    if (a.removed_units()[i].first != b.removed_units()[i].first ||
        !equal_units(a.removed_units()[i].second, b.removed_units()[i].second)) {
      return ::testing::AssertionFailure() << "pruned unit " << i;
    }
  }
  return ::testing::AssertionSuccess();
}

/// Same growth, losses and iterations; wall times too when `with_seconds`.
inline ::testing::AssertionResult equal_reports(const engine::TaskReport& a, const engine::TaskReport& b,
                                                bool with_seconds) {
  auto fail = [](const char* what) { return ::testing::AssertionFailure() << what << " differs"; };
  if (a.task != b.task || a.name != b.name || a.num_classes != b.num_classes) return fail("task");
  if (a.selected_units != b.selected_units || a.subnetwork.inputs != b.subnetwork.inputs ||
      a.subnetwork.hidden != b.subnetwork.hidden) {
    return fail("selection");
  }
  if (a.added != b.added || a.pruned != b.pruned || a.split != b.split || a.expanded != b.expanded) return fail("growth");
  if (a.split_pairs.size() != b.split_pairs.size()) return fail("split pairs");
  for (size_t i = 0; i < a.split_pairs.size(); ++i) {
    const auto& p = a.split_pairs[i];
    const auto& q = b.split_pairs[i];
    if (p.layer != q.layer || p.original_id != q.original_id || p.copy_id != q.copy_id || p.drift != q.drift) {
      return fail("split pair");
    }
  }
  if (a.hidden_units != b.hidden_units || a.params != b.params || a.nonzero_params != b.nonzero_params) {
    return fail("size");
  }
  if (a.val_loss != b.val_loss || a.val_loss_after_selective != b.val_loss_after_selective) return fail("val loss");
  if (a.phases.size() != b.phases.size()) return fail("phase count");
  for (size_t i = 0; i < a.phases.size(); ++i) {
    const auto& p = a.phases[i];
    const auto& q = b.phases[i];
    if (p.name != q.name || p.iterations != q.iterations || p.train_loss != q.train_loss ||
        p.val_loss != q.val_loss || p.early_stopped != q.early_stopped || p.best_iteration != q.best_iteration) {
      return fail("phase");
    }
    if (with_seconds && (p.seconds != q.seconds || p.optimizer_seconds != q.optimizer_seconds)) {
      return fail("phase seconds");
    }
  }
  if (with_seconds && a.seconds != b.seconds) return fail("seconds");
  return ::testing::AssertionSuccess();
}

}  // namespace den::io::testing
