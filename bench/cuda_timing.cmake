# den_cuda_timing (bench/cuda_kernels_timing.cu): the kernels' bytes/s over a device-to-device copy,
# for GPU machines without Google Benchmark. Needs only den_cuda; included by the top-level build and
# by cuda/standalone when the kernels are built. Its ctest times a small shape and skips (exit 77)
# without a device; scripts/gpu_check.sh runs the full timing.
add_executable(den_cuda_timing ${CMAKE_CURRENT_LIST_DIR}/cuda_kernels_timing.cu)
target_link_libraries(den_cuda_timing PRIVATE den_cuda)
set_target_properties(den_cuda_timing PROPERTIES CUDA_ARCHITECTURES "${DEN_CUDA_ARCHITECTURES}"
                      CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
add_test(NAME CudaTiming.SmokeRun_CUDA COMMAND den_cuda_timing --smoke)
set_tests_properties(CudaTiming.SmokeRun_CUDA PROPERTIES LABELS unit SKIP_RETURN_CODE 77)
