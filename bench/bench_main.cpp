// main() of the den benchmark executables: the same thread and allocator settings as the `den`
// command, so that the suites time what `den` runs.

#include "engine/training/threads.h"

#include <benchmark/benchmark.h>

int main(int argc, char** argv) {
  den::engine::configure_threads(0);
  den::engine::keep_freed_buffers_in_heap();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
