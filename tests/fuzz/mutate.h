#pragma once

// Seeded byte mutations of fuzz-corpus inputs, for the default tests' short fuzz-like replays (the
// libFuzzer targets beside this file do the real campaigns).

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace den::testing {

/// `inputs` followed by `count` mutants of them: each one to four edits (overwrite a byte, erase
/// up to 16, insert up to 8 copies of a byte, cut the rest), drawn from `seed`.
inline std::vector<std::string> with_mutations(std::vector<std::string> inputs, int count, uint32_t seed) {
  std::mt19937 rng(seed);
  const size_t originals = inputs.size();
  for (int i = 0; i < count && originals > 0; ++i) {
    std::string m = inputs[rng() % originals];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !m.empty(); ++e) {
      const size_t at = rng() % m.size();
      switch (rng() % 4) {
        case 0:
          m[at] = static_cast<char>(rng());
          break;
        case 1:
          m.erase(at, 1 + rng() % 16);
          break;
        case 2:
          m.insert(at, std::string(1 + rng() % 8, static_cast<char>(rng())));
          break;
        default:
          m.resize(at);
          break;
      }
    }
    inputs.push_back(m);
  }
  return inputs;
}

}  // namespace den::testing
