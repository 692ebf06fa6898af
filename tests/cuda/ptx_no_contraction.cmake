# Fails when the kernels' PTX holds a fused multiply-add (NOTE: [no contraction] in cuda/CMakeLists.txt):
# PTX is what ptxas turns into sm_80/sm_90 code, and it writes mul.rn/add.rn, which ptxas never fuses,
# unless nvcc contracted them into fma.
#   cmake -DPTX="a.ptx;b.ptx" -P this
if(NOT PTX)
  message(FATAL_ERROR "ptx_no_contraction.cmake: -DPTX=<list of .ptx files> is required")
endif()
foreach(file IN LISTS PTX)
  file(READ ${file} text)
  if(NOT text MATCHES "\\.entry ")
    message(FATAL_ERROR "${file} holds no kernel entry: not the kernels' PTX")
  endif()
  string(REGEX MATCHALL "[^\n]*[ \t]fma\\.[^\n]*" fused "${text}")
  list(LENGTH fused count)
  if(count GREATER 0)
    list(GET fused 0 first)
    message(FATAL_ERROR "${file}: ${count} fused multiply-adds, e.g.\n${first}\nbuild the kernels with --fmad=false")
  endif()
  string(REGEX MATCHALL "mul\\.rn\\.f(32|64)" rounded "${text}")
  list(LENGTH rounded muls)
  message(STATUS "${file}: no fma, ${muls} rounded multiplies")
endforeach()
