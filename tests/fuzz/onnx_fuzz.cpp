// libFuzzer target for the ONNX translator (den::io::translate_onnx_bytes). Any input must translate
// or raise io::ImportError: another exception, a crash, a hang or a sanitizer report is a bug. A
// translated module whose forward is small also runs once, on a batch of one (symbolic dims as 1):
// when every dimension was declared, LibTorch must accept the graph the translator accepted and give
// the output shape the translation computed (serialization/onnx_import.h); with symbolic dimensions a
// LibTorch error may be the file's (a Reshape that needs another batch size), but a result must still
// have the computed shape.
//
// Build and run: tests/fuzz/README.md.

#include "serialization/onnx_import.h"

#include <ATen/Parallel.h>
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  at::set_num_threads(1);
  return 0;
}

namespace {

[[noreturn]] void bug(const std::string& what) {
  std::fprintf(stderr, "den_onnx_fuzz: %s\n", what.c_str());
  std::abort();
}

/// Runs `m` on a batch of one when its values are small, checking what the comment above says.
void run_forward(den::io::OnnxModule& m) {
  constexpr int64_t kMaxElements = 1 << 14;  // and so at most 2^28 multiply-adds in a conv or a product
  if (m.max_elements > kMaxElements) return;
  std::vector<int64_t> shape;
  bool symbolic = false;
  for (const int64_t d : m.input_shape) {
    symbolic = symbolic || d < 0;
    shape.push_back(d < 0 ? 1 : d);
  }
  at::Tensor out;
  try {
    const at::Tensor x = at::linspace(-2, 2, at::ones(shape).numel()).reshape(shape);
    out = m.module.forward({x}).toTensor();
  } catch (const std::exception& e) {  // c10::Error, or the interpreter's std::runtime_error with its traceback
    if (symbolic) return;
    bug(std::string("LibTorch refused a translated static graph: ") + e.what());
  }
  if (static_cast<size_t>(out.dim()) != m.output_shape.size()) bug("the output's rank differs from the translation's");
  for (size_t d = 0; d < m.output_shape.size(); ++d) {
    if (m.output_shape[d] >= 0 && m.output_shape[d] != out.size(static_cast<int64_t>(d))) {
      bug("output dimension " + std::to_string(d) + " is " + std::to_string(out.size(static_cast<int64_t>(d))) +
          ", the translation computed " + std::to_string(m.output_shape[d]));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    den::io::OnnxModule m = den::io::translate_onnx_bytes(bytes, "fuzz");
    run_forward(m);
  } catch (const den::io::ImportError&) {
  }
  return 0;
}
