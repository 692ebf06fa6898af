#include "cuda/cuda_check.h"
#include "cuda/detail/launch.h"
#include "cuda/kernels.h"

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace den::cuda {

namespace detail {

void check_cuda(cudaError_t status, const char* expr, const char* file, int line) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();  // reset the sticky error of a failed launch so later calls start clean
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + expr +
                           " failed: " + cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
}

int multiprocessor_count() {
  static std::mutex mutex;
  static std::vector<int> cache;  // per device ordinal; 0 = not queried yet
  int device = 0;
  DEN_CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mutex);
  if (static_cast<size_t>(device) >= cache.size()) cache.resize(device + 1, 0);
  if (cache[device] == 0) {
    DEN_CUDA_CHECK(cudaDeviceGetAttribute(&cache[device], cudaDevAttrMultiProcessorCount, device));
  }
  return cache[device];
}

}  // namespace detail

int device_count() noexcept {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

}  // namespace den::cuda
