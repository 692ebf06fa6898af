#pragma once

namespace den::engine {

/// Sets the threads used for training and prediction: the matrix products (OpenBLAS) get
/// `threads` (0 = all hardware threads) and ATen's element-wise ops run on the calling thread.
/// See NOTE: [threads] in engine/threads.cpp.
void configure_threads(int threads);

}  // namespace den::engine
