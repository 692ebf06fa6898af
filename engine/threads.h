#pragma once

namespace den::engine {

/// Sets the threads used for training and prediction: the matrix products (OpenBLAS) get
/// `threads` (0 = all hardware threads) and ATen's element-wise ops run on the calling thread.
/// See NOTE: [threads] in engine/threads.cpp.
void configure_threads(int threads);

/// Keeps freed buffers in the heap (glibc mallopt) rather than returning them to the kernel, so
/// the activation-sized buffers that training allocates and frees every step do not fault in
/// afresh on the next one. Page faults are costly on the sandboxed 2-core machine (measured for
/// `den run`: 3.6 s -> 3.2 s for 600 steps). A process-wide setting: executables call it at start.
void keep_freed_buffers_in_heap();

}  // namespace den::engine
