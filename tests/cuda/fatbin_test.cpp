// The kernels were compiled for the configured architectures (by default sm_80 and sm_90 code plus
// sm_90 PTX): checked on this very test binary, which links den_cuda statically. Needs no GPU.
//
// Two independent checks: our own reader of the fat binaries embedded in the executable (always
// runs), and `cuobjdump --list-elf/--list-ptx` (skipped when the toolkit has no cuobjdump).

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#ifndef DEN_CUDA_ARCHITECTURES_LIST
#error "DEN_CUDA_ARCHITECTURES_LIST (comma-separated CUDA_ARCHITECTURES) must be defined by CMake"
#endif
#ifndef DEN_CUOBJDUMP
#define DEN_CUOBJDUMP ""
#endif

namespace {

struct Expected {
  std::set<int> sass;  // real architectures: cubin (ELF) entries
  std::set<int> ptx;   // virtual architectures: PTX entries
};

// CUDA_ARCHITECTURES entries: "90" = sass + PTX, "90-real" = sass, "90-virtual" = PTX.
Expected expected_architectures() {
  Expected e;
  std::stringstream list(DEN_CUDA_ARCHITECTURES_LIST);
  std::string item;
  while (std::getline(list, item, ',')) {
    const size_t dash = item.find('-');
    const int arch = std::stoi(item.substr(0, dash));
    const std::string kind = dash == std::string::npos ? "" : item.substr(dash + 1);
    if (kind != "virtual") e.sass.insert(arch);
    if (kind != "real") e.ptx.insert(arch);
  }
  return e;
}

std::string self_path() {
  std::array<char, 4096> buf{};
  const ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  return n > 0 ? std::string(buf.data(), static_cast<size_t>(n)) : std::string();
}

template <typename T>
T read_le(const std::vector<unsigned char>& b, size_t at) {
  T v{};
  std::memcpy(&v, b.data() + at, sizeof(T));  // x86-64 and aarch64 hosts are little-endian
  return v;
}

// Fat binary containers ("fatbin", as embedded by nvcc in .nv_fatbin): a 16-byte header (magic
// 0xBA55ED50, version 1, header size 16, payload size), then entries, each with a header of
// {u16 kind (1 = PTX, 2 = ELF cubin), u16, u32 header size, u64 payload size, ..., u32 arch at byte
// 28} followed by its payload. Returns (kind, arch) of every entry.
std::vector<std::pair<int, int>> fatbin_entries(const std::vector<unsigned char>& b) {
  std::vector<std::pair<int, int>> out;
  const unsigned char magic[4] = {0x50, 0xED, 0x55, 0xBA};
  for (size_t i = 0; i + 16 <= b.size(); ++i) {
    if (std::memcmp(b.data() + i, magic, 4) != 0) continue;
    if (read_le<uint16_t>(b, i + 4) != 1 || read_le<uint16_t>(b, i + 6) != 16) continue;
    const uint64_t size = read_le<uint64_t>(b, i + 8);
    if (size > b.size() - i - 16) continue;
    const size_t end = i + 16 + size;
    size_t e = i + 16;
    while (e + 32 <= end) {
      const uint16_t kind = read_le<uint16_t>(b, e);
      const uint32_t header = read_le<uint32_t>(b, e + 4);
      const uint64_t payload = read_le<uint64_t>(b, e + 8);
      if (header < 32 || payload > end - e - header) break;
      out.emplace_back(kind, static_cast<int>(read_le<uint32_t>(b, e + 28)));
      e += header + payload;
    }
    i = end - 1;
  }
  return out;
}

TEST(CudaFatbinTest, KernelsCarryCodeForTheConfiguredArchitectures) {
  const Expected want = expected_architectures();
  ASSERT_FALSE(want.sass.empty() && want.ptx.empty()) << DEN_CUDA_ARCHITECTURES_LIST;
  std::ifstream in(self_path(), std::ios::binary);
  ASSERT_TRUE(in) << "cannot read " << self_path();
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::set<int> sass, ptx;
  for (const auto& [kind, arch] : fatbin_entries(bytes)) {
    if (kind == 2) sass.insert(arch);
    if (kind == 1) ptx.insert(arch);
  }
  ASSERT_FALSE(sass.empty() && ptx.empty()) << "no fat binary found in " << self_path();
  for (int arch : want.sass) EXPECT_TRUE(sass.count(arch)) << "no sm_" << arch << " cubin in " << self_path();
  for (int arch : want.ptx) EXPECT_TRUE(ptx.count(arch)) << "no compute_" << arch << " PTX in " << self_path();
  // The requirement of the CUDA issue: Hopper (H100/H200) code is in the binary.
  EXPECT_TRUE(sass.count(90)) << "no sm_90 cubin";
}

std::string run(const std::string& command) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return out;
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), static_cast<int>(buf.size()), pipe) != nullptr) out += buf.data();
  pclose(pipe);
  return out;
}

TEST(CudaFatbinTest, CuobjdumpListsSm90) {
  const std::string tool = DEN_CUOBJDUMP;
  if (tool.empty() || access(tool.c_str(), X_OK) != 0) {
    GTEST_SKIP() << "cuobjdump not found with the CUDA toolkit (the fat binary reader above still checks)";
  }
  const std::string elf = run("'" + tool + "' --list-elf '" + self_path() + "'");
  EXPECT_NE(elf.find("sm_90"), std::string::npos) << elf;
  EXPECT_NE(elf.find("sm_80"), std::string::npos) << elf;
  const std::string ptx = run("'" + tool + "' --list-ptx '" + self_path() + "'");
  EXPECT_NE(ptx.find("sm_90"), std::string::npos) << ptx;
}

}  // namespace
