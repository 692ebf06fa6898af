# Installs the build into a fresh prefix, then builds and runs tests/install/downstream against it
# twice: with find_package(den) and with pkg-config. Run by ctest (tests/CMakeLists.txt):
#   cmake -DBUILD_DIR=... -DWORK_DIR=... -DSOURCE_DIR=tests/install/downstream -DCXX=c++ [-DLAUNCHER=ccache] -P this
foreach(var BUILD_DIR WORK_DIR SOURCE_DIR CXX)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install_test.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
foreach(file include/den/engine/engine.h include/den/engine/training/trainer.h include/den/engine/baselines/baselines.h
             include/den/version.h include/den/serialization/checkpoint.h
             lib/cmake/den/denConfig.cmake lib/cmake/den/denConfigVersion.cmake lib/pkgconfig/den.pc
             lib/libden_engine.a lib/libden_baselines.a)
  if(NOT EXISTS ${prefix}/${file})
    message(FATAL_ERROR "the install has no ${file}")
  endif()
endforeach()
# No build-tree path may leak into the installed package.
file(READ ${prefix}/lib/cmake/den/denTargets.cmake targets)
if(targets MATCHES "${BUILD_DIR}")
  message(FATAL_ERROR "denTargets.cmake names the build tree ${BUILD_DIR}")
endif()

if(NOT LAUNCHER)
  set(LAUNCHER "")  # also for an unset or ccache-NOTFOUND launcher
endif()
set(launcher "")
if(LAUNCHER)
  set(launcher -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
run("configuring the find_package(den) consumer" ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/cmake-build
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CXX} ${launcher})
run("building the find_package(den) consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/cmake-build)
run("running the find_package(den) consumer" ${WORK_DIR}/cmake-build/den_downstream)
message(STATUS "find_package(den): ${last_output}")

find_program(PKG_CONFIG pkg-config)
if(NOT PKG_CONFIG)
  message(FATAL_ERROR "pkg-config not found (apt install pkg-config)")
endif()
set(ENV{PKG_CONFIG_PATH} ${prefix}/lib/pkgconfig)
run("pkg-config --cflags --libs den" ${PKG_CONFIG} --cflags --libs den)
separate_arguments(flags UNIX_COMMAND "${last_output}")
run("building with pkg-config" ${LAUNCHER} ${CXX} -O1 ${SOURCE_DIR}/main.cpp -o ${WORK_DIR}/pc_downstream ${flags})
run("running the pkg-config consumer" ${WORK_DIR}/pc_downstream)
message(STATUS "pkg-config den: ${last_output}")
