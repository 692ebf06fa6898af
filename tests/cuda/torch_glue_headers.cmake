# Compiles cuda/torch_ops.cpp (the at::Tensor glue) for syntax only and checks the headers it pulls
# in: it must compile against LibTorch's c10/cuda headers, and must not include the cuBLAS, cuSPARSE
# or cuSOLVER headers (<ATen/cuda/CUDAContext.h> does). Runs with a CPU-only LibTorch too: the one
# header that only a CUDA build of LibTorch generates comes from STUB_DIR, searched last.
#   cmake -DCXX=g++ -DSTD=17 -DSOURCE=cuda/torch_ops.cpp -DINCLUDES="dir;dir" -DDEFINES="X=1" -DSTUB_DIR=dir -P this
foreach(var CXX STD SOURCE INCLUDES STUB_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "torch_glue_headers.cmake: -D${var}=... is required")
  endif()
endforeach()

set(args -std=c++${STD} -fsyntax-only -H)
foreach(dir IN LISTS INCLUDES)
  list(APPEND args -I${dir})
endforeach()
foreach(def IN LISTS DEFINES)
  list(APPEND args -D${def})
endforeach()
list(APPEND args -idirafter ${STUB_DIR} ${SOURCE})

execute_process(COMMAND ${CXX} ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cuda/torch_ops.cpp does not compile:\n${err}")
endif()
# -H prints one line per included header: dots for the depth, then the path.
string(REGEX MATCHALL "[^\n]*(cublas|cusparse|cusolver)[^\n]*" heavy "${err}")
if(heavy)
  list(JOIN heavy "\n" heavy)
  message(FATAL_ERROR "cuda/torch_ops.cpp includes cuBLAS/cuSPARSE/cuSOLVER headers it does not need:\n${heavy}")
endif()
string(REGEX MATCHALL "\n\\.+ [^\n]*c10/cuda/CUDAStream\\.h" stream "\n${err}")
if(NOT stream)
  message(FATAL_ERROR "cuda/torch_ops.cpp no longer includes c10/cuda/CUDAStream.h; the check above saw nothing")
endif()
message(STATUS "cuda/torch_ops.cpp compiles with the c10/cuda stream and guard headers alone")
