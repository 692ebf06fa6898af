# NOTE: [installed layout] `cmake --install build --prefix P` gives
#   P/include/den/{cuda,ops,graph,engine,data,serialization}/*.h   the public headers, and den/version.h
#   P/lib/libden_*.a                                               the libraries (static)
#   P/lib/cmake/den/denConfig.cmake                                find_package(den): targets den::engine, den::baselines,
#                                                                  den::io, den::data, den::graph, den::ops, den::cuda
#   P/lib/pkgconfig/den.pc                                         for builds without CMake
#   P/bin/den                                                      the command line (DEN_BUILD_CLI)
# Headers include each other root-relative ("engine/config.h"), as in the source tree, so the targets
# put both P/include/den and P/include on the include path: a user writes <den/engine/engine.h> or
# <engine/engine.h>. Included last by the top-level CMakeLists.txt.
include(CMakePackageConfigHelpers)

set(_den_export_targets den_cuda den_ops den_graph den_engine den_baselines den_data den_io)
foreach(optional den_cuda_tensor_checks den_cuda_torch)
  if(TARGET ${optional})
    list(APPEND _den_export_targets ${optional})
  endif()
endforeach()
foreach(target IN LISTS _den_export_targets)
  string(REGEX REPLACE "^den_" "" short ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${short})
endforeach()

install(TARGETS ${_den_export_targets} EXPORT denTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(module cuda ops graph engine data serialization)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${module}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/den/${module}
          FILES_MATCHING PATTERN "*.h" PATTERN "standalone" EXCLUDE PATTERN "internal" EXCLUDE)
endforeach()
install(FILES ${PROJECT_BINARY_DIR}/include/den/version.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/den)

set(_den_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/den)
install(EXPORT denTargets NAMESPACE den:: DESTINATION ${_den_cmake_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/denConfig.cmake.in ${PROJECT_BINARY_DIR}/denConfig.cmake
                              INSTALL_DESTINATION ${_den_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/denConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/denConfig.cmake ${PROJECT_BINARY_DIR}/denConfigVersion.cmake
        DESTINATION ${_den_cmake_dir})

# den.pc: the libraries in link order, then what they need. LibTorch ships no .pc file: its libraries
# are named from TORCH_LIBRARY's folder, torch_cpu (and torch_cuda) linked even if no symbol is used
# directly, since their operators register themselves at load time (as TorchConfig.cmake links them).
get_filename_component(_den_torch_libdir "${TORCH_LIBRARY}" DIRECTORY)
set(_den_pc_torch_libs " -L${_den_torch_libdir} -Wl,--no-as-needed -ltorch -ltorch_cpu")
if(TORCH_CUDA_LIBRARIES)
  string(APPEND _den_pc_torch_libs " -ltorch_cuda")
endif()
string(APPEND _den_pc_torch_libs " -Wl,--as-needed -lc10")
set(_den_pc_torch_cflags "")
foreach(dir IN LISTS TORCH_INCLUDE_DIRS)
  string(APPEND _den_pc_torch_cflags " -I${dir}")
endforeach()
if(TORCH_CXX_FLAGS MATCHES "(-D_GLIBCXX_USE_CXX11_ABI=[01])")
  string(APPEND _den_pc_torch_cflags " ${CMAKE_MATCH_1}")
endif()
set(_den_pc_libs "-lden_io -lden_data -lden_baselines -lden_engine -lden_graph -lden_ops")
if(TARGET den_cuda_torch)
  string(APPEND _den_pc_libs " -lden_cuda_torch -lden_cuda_tensor_checks")
endif()
if(DEN_CUDA_ENABLED)
  string(APPEND _den_pc_libs " -lden_cuda -L${CUDAToolkit_LIBRARY_DIR} -lcudart")
endif()
if(DEN_HAVE_ONNX)
  string(APPEND _den_pc_libs " -lonnx -lonnx_proto")
endif()
# Relocatable: the prefix is found from the .pc file's own place, so `--prefix P` at install time works.
file(RELATIVE_PATH _den_pc_to_prefix /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" _den_pc_to_prefix "${_den_pc_to_prefix}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/den.pc.in ${PROJECT_BINARY_DIR}/den.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/den.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

if(TARGET den)
  install(TARGETS den RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
