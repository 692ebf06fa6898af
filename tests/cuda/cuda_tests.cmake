# What the CUDA test executable needs beyond its sources, shared by the top-level build and
# cuda/standalone: included after the target den_cuda_tests (tests/cuda/*_test.cpp) is created.
string(REPLACE ";" "," _den_cuda_arch_list "${DEN_CUDA_ARCHITECTURES}")
find_program(DEN_CUOBJDUMP cuobjdump HINTS ${CUDAToolkit_BIN_DIR})
target_compile_definitions(den_cuda_tests PRIVATE DEN_CUDA_ARCHITECTURES_LIST="${_den_cuda_arch_list}"
                           DEN_CUOBJDUMP="$<$<BOOL:${DEN_CUOBJDUMP}>:${DEN_CUOBJDUMP}>")
target_link_libraries(den_cuda_tests PRIVATE den_cuda_tensor_checks)

# The kernels' PTX has no fused multiply-add (NOTE: [no contraction] in cuda/CMakeLists.txt).
add_dependencies(den_cuda_tests den_cuda_ptx)
add_test(NAME CudaKernelsPtx.NoFusedMultiplyAdd
         COMMAND ${CMAKE_COMMAND} "-DPTX=$<TARGET_OBJECTS:den_cuda_ptx>"
                 -P ${CMAKE_CURRENT_LIST_DIR}/ptx_no_contraction.cmake)
set_tests_properties(CudaKernelsPtx.NoFusedMultiplyAdd PROPERTIES LABELS unit)

# The at::Tensor glue compiles with the c10/cuda headers alone (also with a CPU-only LibTorch, which
# lacks one generated header: an empty stand-in is searched after the real include directories).
set(_den_glue_stub ${CMAKE_CURRENT_BINARY_DIR}/torch_glue_stub)
file(WRITE ${_den_glue_stub}/c10/cuda/impl/cuda_cmake_macros.h
     "#pragma once\n// Stand-in for the header a CUDA build of LibTorch generates (tests/cuda/torch_glue_headers.cmake).\n")
set(_den_glue_defines "")
if(TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=([01])")
  list(APPEND _den_glue_defines _GLIBCXX_USE_CXX11_ABI=${CMAKE_MATCH_1})
endif()
get_filename_component(_den_root ${CMAKE_CURRENT_LIST_DIR}/../.. ABSOLUTE)
add_test(NAME CudaTorchGlue.CompilesWithStreamAndGuardHeadersOnly
         COMMAND ${CMAKE_COMMAND} -DCXX=${CMAKE_CXX_COMPILER} -DSTD=${CMAKE_CXX_STANDARD} -DSOURCE=${_den_root}/cuda/torch_ops.cpp
                 "-DINCLUDES=${_den_root};${TORCH_INCLUDE_DIRS};${CUDAToolkit_INCLUDE_DIRS}"
                 "-DDEFINES=${_den_glue_defines}" -DSTUB_DIR=${_den_glue_stub}
                 -P ${CMAKE_CURRENT_LIST_DIR}/torch_glue_headers.cmake)
set_tests_properties(CudaTorchGlue.CompilesWithStreamAndGuardHeadersOnly PROPERTIES LABELS unit)
