# Finds LibTorch and resolves DEN_CUDA (cmake/den_cuda.cmake); included by the top-level build and by
# cuda/standalone in place of find_package(Torch).

set(DEN_CUDA_ARCHITECTURES "80-real;90-real;90-virtual" CACHE STRING
    "CUDA architectures of the kernels (CUDA_ARCHITECTURES syntax): sm_80 and sm_90 code plus sm_90 PTX")

# A CUDA build of PyTorch 2.x sets the architecture flags of its own targets from TORCH_CUDA_ARCH_LIST
# and, when that is unset, compiles and runs a probe on the visible GPU to choose them. Give it ours
# ("80-real;90-real;90-virtual" -> "8.0;9.0+PTX") so that configuring is the same with or without a GPU.
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(_den_torch_archs "")
  set(_den_torch_ptx "")
  foreach(arch IN LISTS DEN_CUDA_ARCHITECTURES)
    if(NOT arch MATCHES "^([0-9]+)([0-9])(-real|-virtual)?$")
      message(FATAL_ERROR "DEN_CUDA_ARCHITECTURES: cannot read '${arch}' (expected e.g. 90, 90-real, 90-virtual)")
    endif()
    list(APPEND _den_torch_archs "${CMAKE_MATCH_1}.${CMAKE_MATCH_2}")
    if(NOT CMAKE_MATCH_3 STREQUAL "-real")
      list(APPEND _den_torch_ptx "${CMAKE_MATCH_1}.${CMAKE_MATCH_2}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES _den_torch_archs)
  list(JOIN _den_torch_ptx "|" _den_ptx_regex)
  string(REPLACE "." "[.]" _den_ptx_regex "${_den_ptx_regex}")
  list(TRANSFORM _den_torch_archs APPEND "+PTX" REGEX "^(${_den_ptx_regex})$")
  set(ENV{TORCH_CUDA_ARCH_LIST} "${_den_torch_archs}")
endif()

find_package(Torch REQUIRED)

# Newer PyTorch headers refuse C++17 (#error ... C++20 ... required to use ATen); den's C++ is also
# valid C++20. The kernels (cuda/) include no LibTorch header and stay C++17.
if(Torch_VERSION VERSION_GREATER_EQUAL 2.12 AND CMAKE_CXX_STANDARD LESS 20)
  set(CMAKE_CXX_STANDARD 20)
  message(STATUS "den: C++20 for LibTorch ${Torch_VERSION}")
endif()

include(${CMAKE_CURRENT_LIST_DIR}/den_cuda.cmake)
