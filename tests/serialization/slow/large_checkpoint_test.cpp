// A network whose parameters exceed protobuf's 2 GiB message limit saves and loads (label: slow;
// needs ~5 GiB of memory and disk). The fast suite proves the same path with a lowered record limit
// (Checkpoint.TensorsLargerThanTheRecordLimitAreCutIntoChunks).

#include "serialization/checkpoint.h"

#include "engine/engine_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

namespace den::io {

TEST(LargeCheckpoint, ATensorOverTwoGibibytesRoundTrips) {
  namespace fs = std::filesystem;
  const int64_t input = 4095;
  const int64_t units = 131200;  // one layer [131200, 4096] float32 = 2.15e9 bytes > 2^31
  engine::EngineState s;
  s.config = engine::EngineConfig().set_hidden({units});
  s.input_dim = input;
  s.graph = graph::UnitGraph(input, {units});
  at::Tensor layer = at::zeros({units, input + 1}, at::kFloat);
  ASSERT_GT(layer.numel() * 4, int64_t{1} << 31);
  layer.select(1, 0).copy_(at::arange(units, at::kFloat));
  layer.select(1, input).fill_(-1.5f);
  layer[units - 1].fill_(3.25f);
  s.layers = {layer};
  s.rng_state = at::make_generator<at::CPUGeneratorImpl>(5).get_state();

  const fs::path file = fs::temp_directory_path() / ("den_large_" + std::to_string(::getpid()) + ".den");
  const auto t0 = std::chrono::steady_clock::now();
  save_state(s, file.string());
  const auto t1 = std::chrono::steady_clock::now();
  EXPECT_GT(fs::file_size(file), uint64_t{1} << 31);
  {
    const LoadedCheckpoint c = load_checkpoint(file.string());
    const auto t2 = std::chrono::steady_clock::now();
    EXPECT_TRUE(at::equal(c.engine.network().layer(0), layer));
    std::printf("%.2f GB: save %.1f s, load %.1f s\n", static_cast<double>(fs::file_size(file)) / 1e9,
                std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(t2 - t1).count());
  }
  fs::remove(file);
}

}  // namespace den::io
