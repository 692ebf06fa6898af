# NOTE: [DEN_CUDA] Resolves the DEN_CUDA option (AUTO | ON | OFF) and, when the kernels are to be built,
# enables the CUDA language. Included from cmake/den_torch.cmake right after find_package(Torch):
# CMake wants enable_language(CUDA) in the highest directory whose targets link CUDA objects, and a
# CUDA build of LibTorch may already have enabled it (its Caffe2 config does).
#   AUTO  build the kernels whenever a CUDA compiler is found (check_language), else skip them;
#   ON    the same, but stop with an error when no usable CUDA compiler is found;
#   OFF   never compile CUDA.
# Sets DEN_CUDA_ENABLED (kernels in den_cuda) and DEN_CUDA_TORCH_GLUE (at::Tensor entry points, only
# when LibTorch itself was built with CUDA; Debian's libtorch-dev is CPU-only).

string(TOUPPER "${DEN_CUDA}" _den_cuda_mode)
if(NOT _den_cuda_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "DEN_CUDA must be AUTO, ON or OFF, got '${DEN_CUDA}'")
endif()

set(DEN_CUDA_ENABLED OFF)
set(DEN_CUDA_TORCH_GLUE OFF)
set(_den_cuda_why "DEN_CUDA=OFF")
if(NOT _den_cuda_mode STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER_LOADED)
    include(CheckLanguage)
    check_language(CUDA)
    if(CMAKE_CUDA_COMPILER)
      if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
        set(CMAKE_CUDA_ARCHITECTURES ${DEN_CUDA_ARCHITECTURES})
      endif()
      enable_language(CUDA)
    endif()
  endif()
  if(CMAKE_CUDA_COMPILER_LOADED)
    if(CMAKE_CUDA_COMPILER_VERSION VERSION_LESS 11.8)
      set(_den_cuda_why "nvcc ${CMAKE_CUDA_COMPILER_VERSION} is older than 11.8, the first with sm_90")
    else()
      find_package(CUDAToolkit REQUIRED)
      set(DEN_CUDA_ENABLED ON)
    endif()
  else()
    set(_den_cuda_why "no CUDA compiler found (nvcc on the PATH, or -DCMAKE_CUDA_COMPILER=...)")
  endif()
  if(NOT DEN_CUDA_ENABLED AND _den_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "DEN_CUDA=ON but the CUDA kernels cannot be built: ${_den_cuda_why}. "
                        "Use -DDEN_CUDA=AUTO or OFF to build without them.")
  endif()
endif()

if(DEN_CUDA_ENABLED)
  # TorchConfig.cmake sets TORCH_CUDA_LIBRARIES only for a LibTorch built with CUDA.
  if(TORCH_CUDA_LIBRARIES)
    set(DEN_CUDA_TORCH_GLUE ON)
  endif()
  if(DEN_CCACHE AND NOT CMAKE_CUDA_COMPILER_LAUNCHER)
    set(CMAKE_CUDA_COMPILER_LAUNCHER ${DEN_CCACHE})
  endif()
  message(STATUS "den: CUDA kernels ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${DEN_CUDA_ARCHITECTURES}); "
                 "at::Tensor CUDA dispatch ${DEN_CUDA_TORCH_GLUE} (LibTorch with CUDA: ${DEN_CUDA_TORCH_GLUE})")
else()
  message(STATUS "den: CUDA kernels OFF (${_den_cuda_why})")
endif()
