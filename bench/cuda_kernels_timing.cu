// Bytes per second of the CUDA kernels (cuda/kernels.h) against a device-to-device copy that moves the
// same bytes, timed with CUDA events in one process. For GPU machines without Google Benchmark (where
// den_ops_bench cannot build); the byte counts are den_ops_bench's: what each op must read and write once.
//
//   den_cuda_timing [--smoke]      one line per kernel and shape, then the Adam goal line
//
// Exit codes: 0 measured, 77 no CUDA device (nothing to time), 1 a CUDA error.

#include "cuda/cuda_check.h"
#include "cuda/kernels.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace {

using den::cuda::kAnchored;
using den::cuda::kTrainable;

// A device buffer of `n` elements of T, filled from the host.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(const std::vector<T>& host) : n_(host.size()) {
    DEN_CUDA_CHECK(cudaMalloc(&ptr_, bytes()));
    DEN_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), bytes(), cudaMemcpyHostToDevice));
  }
  explicit DeviceBuffer(size_t n) : n_(n) { DEN_CUDA_CHECK(cudaMalloc(&ptr_, bytes())); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { cudaFree(ptr_); }
  T* get() const { return ptr_; }
  size_t bytes() const { return std::max<size_t>(1, n_ * sizeof(T)); }

 private:
  size_t n_;
  T* ptr_ = nullptr;
};

std::vector<float> normal(size_t n, float scale, std::mt19937& gen) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> out(n);
  for (float& x : out) x = dist(gen);
  return out;
}

std::vector<uint8_t> bytes_below(size_t n, int bound, std::mt19937& gen) {
  std::uniform_int_distribution<int> dist(0, bound - 1);
  std::vector<uint8_t> out(n);
  for (uint8_t& x : out) x = static_cast<uint8_t>(dist(gen));
  return out;
}

// Seconds per call: the best of five trials, each the mean over enough calls to fill 20 ms, after
// warm-up calls. The best trial is the least disturbed by anything else on the device.
double seconds_per_call(const std::function<void()>& call) {
  cudaEvent_t start, stop;
  DEN_CUDA_CHECK(cudaEventCreate(&start));
  DEN_CUDA_CHECK(cudaEventCreate(&stop));
  auto time_calls = [&](int reps) {
    DEN_CUDA_CHECK(cudaEventRecord(start));
    for (int i = 0; i < reps; ++i) call();
    DEN_CUDA_CHECK(cudaEventRecord(stop));
    DEN_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    DEN_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    return ms * 1e-3 / reps;
  };
  const double first = time_calls(3);
  const int reps = static_cast<int>(std::clamp(0.02 / std::max(first, 1e-7), 3.0, 2000.0));
  double best = first;
  for (int trial = 0; trial < 5; ++trial) best = std::min(best, time_calls(reps));
  DEN_CUDA_CHECK(cudaEventDestroy(start));
  DEN_CUDA_CHECK(cudaEventDestroy(stop));
  return best;
}

// Bytes per second of a device-to-device copy that moves `bytes` (reads bytes/2, writes bytes/2).
double copy_rate(int64_t bytes) {
  const size_t half = static_cast<size_t>(std::max<int64_t>(1, bytes / 2));
  DeviceBuffer<uint8_t> src(half), dst(half);
  DEN_CUDA_CHECK(cudaMemset(src.get(), 1, half));
  const double s = seconds_per_call([&] { DEN_CUDA_CHECK(cudaMemcpyAsync(dst.get(), src.get(), half, cudaMemcpyDeviceToDevice)); });
  return static_cast<double>(2 * half) / s;
}

struct Result {
  std::string kernel;
  int64_t rows, cols;
  double ratio;
};

void report(std::vector<Result>& results, const char* kernel, int64_t rows, int64_t cols, int64_t bytes,
            const std::function<void()>& call) {
  const double s = seconds_per_call(call);
  DEN_CUDA_CHECK(cudaGetLastError());
  const double rate = static_cast<double>(bytes) / s;
  const double copy = copy_rate(bytes);
  std::printf("%-22s %6lld x %-6lld %10.1f us %8.1f GB/s   copy %8.1f GB/s   ratio %.3f\n", kernel,
              static_cast<long long>(rows), static_cast<long long>(cols), s * 1e6, rate * 1e-9, copy * 1e-9,
              rate / copy);
  std::fflush(stdout);
  results.push_back({kernel, rows, cols, rate / copy});
}

void time_shape(std::vector<Result>& results, int64_t rows, int64_t cols) {
  const size_t n = static_cast<size_t>(rows * cols);
  std::mt19937 gen(17);
  DeviceBuffer<float> w(normal(n, 0.05f, gen)), grad(normal(n, 0.1f, gen)), m(std::vector<float>(n, 0.0f)),
      v(std::vector<float>(n, 0.0f)), anchor(normal(n, 0.05f, gen)), norms(static_cast<size_t>(rows));
  DeviceBuffer<uint8_t> l1_mask(bytes_below(n, 10, gen));   // 0 = frozen: 90% of elements set
  DeviceBuffer<uint8_t> adam_mask(bytes_below(n, 4, gen));  // every combination of kTrainable, kAnchored
  DeviceBuffer<uint8_t> group_rows(bytes_below(static_cast<size_t>(rows), 2, gen));
  const int64_t el = static_cast<int64_t>(n);

  report(results, "l1_prox", rows, cols, el * (2 * 4 + 1),
         [&] { den::cuda::l1_prox<float>(w.get(), l1_mask.get(), el, 1e-5f, nullptr); });
  report(results, "group_prox_rows", rows, cols, el * 2 * 4,
         [&] { den::cuda::group_prox_rows<float>(w.get(), nullptr, rows, cols, 1e-3, nullptr); });
  report(results, "drift_row_norms", rows, cols, el * 2 * 4,
         [&] { den::cuda::row_norms<float>(norms.get(), w.get(), anchor.get(), rows, cols, nullptr); });

  den::cuda::MaskedAdamArgs<float> a;
  a.w = w.get();
  a.grad = grad.get();
  a.exp_avg = m.get();
  a.exp_avg_sq = v.get();
  a.anchor = anchor.get();
  a.mask = adam_mask.get();
  a.rows = rows;
  a.cols = cols;
  const int step = 10;
  a.consts = {1e-3f, 0.9f, 0.999f, 1e-8f, static_cast<float>(1.0 - std::pow(0.9, step)),
              static_cast<float>(std::sqrt(1.0 - std::pow(0.999, step)))};
  a.reg = {2e-4f, 1.0f, 1e-5f};
  a.group_threshold = 1e-3;
  const int64_t adam_bytes = el * (5 * 4 + 1 + 3 * 4);  // read w, grad, m, v, anchor, mask; write w, m, v
  report(results, "masked_adam_step", rows, cols, adam_bytes, [&] { den::cuda::masked_adam_step<float>(a, nullptr); });
  a.group_rows = group_rows.get();
  report(results, "masked_adam_group_step", rows, cols, adam_bytes,
         [&] { den::cuda::masked_adam_step<float>(a, nullptr); });
}

}  // namespace

int main(int argc, char** argv) {
  const bool smoke = argc > 1 && std::strcmp(argv[1], "--smoke") == 0;
  if (den::cuda::device_count() == 0) {
    std::printf("den_cuda_timing: no CUDA device, nothing to time\n");
    return 77;
  }
  try {
    cudaDeviceProp prop{};
    DEN_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("den_cuda_timing on %s (sm_%d%d), float32, bytes each op must move, over a D2D copy of the same bytes\n",
                prop.name, prop.major, prop.minor);
    std::vector<Result> results;
    const std::vector<std::pair<int64_t, int64_t>> shapes =
        smoke ? std::vector<std::pair<int64_t, int64_t>>{{37, 53}}
              : std::vector<std::pair<int64_t, int64_t>>{{312, 784}, {4096, 4096}, {16384, 1024}};
    for (const auto& [rows, cols] : shapes) time_shape(results, rows, cols);
    // The goal of the first GPU run: the fused Adam step at >= 0.8 of the copy at 4096 x 4096 and at 16M elements.
    for (const Result& r : results) {
      if (r.kernel == "masked_adam_step" && (r.rows * r.cols == 4096 * 4096)) {
        std::printf("goal fused Adam %lld x %lld: ratio %.3f (%s 0.8)\n", static_cast<long long>(r.rows),
                    static_cast<long long>(r.cols), r.ratio, r.ratio >= 0.8 ? "meets" : "below");
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "den_cuda_timing: %s\n", e.what());
    return 1;
  }
  return 0;
}
