// main() of the den benchmark executables: the same thread settings as the `den` command.

#include "engine/threads.h"

#include <benchmark/benchmark.h>

int main(int argc, char** argv) {
  den::engine::configure_threads(0);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
