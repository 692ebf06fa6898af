#!/usr/bin/env bash
# Run here, before a GPU check: fills .gpu/ (ignored by git, never committed) with what the GPU
# machine lacks and cannot download, to travel there with the working tree:
#   .gpu/googletest      GoogleTest's sources (Debian's googletest, /usr/src/googletest), built there
#                        by cuda/standalone (-DDEN_GTEST_SOURCE_DIR)
#   .gpu/fashion-mnist   the default data (Debian's dataset-fashion-mnist), for the engine step
# Then on the GPU machine: scripts/gpu_check.sh (docs/cuda.md).
set -euo pipefail
cd "$(dirname "$0")/.."
gtest=${GTEST_SOURCE:-/usr/src/googletest}
data=${DEN_DATA:-/usr/share/datasets/fashion-mnist}
if [ ! -f "$gtest/CMakeLists.txt" ]; then
  echo "gpu_prepare: no GoogleTest sources at $gtest (apt install googletest, or set GTEST_SOURCE)" >&2
  exit 2
fi
rm -rf .gpu/googletest .gpu/fashion-mnist
mkdir -p .gpu
cp -r "$gtest" .gpu/googletest
if [ -d "$data" ]; then
  cp -r "$data" .gpu/fashion-mnist
else
  echo "gpu_prepare: no data at $data; the engine step will need --data there" >&2
fi
echo "gpu_prepare: .gpu holds $(du -sh .gpu | cut -f1) (carry [\".gpu\"] with the run)"
