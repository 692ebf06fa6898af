// The hyperparameter table (engine/hyperparameters.h) describes every field of EngineConfig once.

#include "engine/hyperparameters.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

namespace den::engine {
namespace {

size_t align_up(size_t offset, size_t alignment) { return (offset + alignment - 1) / alignment * alignment; }

// The visited fields tile EngineConfig with nothing between them but alignment padding, so a field
// added to EngineConfig and not to the table leaves a gap and fails here.
TEST(Hyperparameters, TheTableCoversEveryFieldOfEngineConfigOnce) {
  struct Span {
    size_t offset, size, alignment;
    std::string name;
  };
  const EngineConfig c;
  std::vector<Span> spans;
  std::set<std::string> names, flags;
  visit_hyperparameters([&](const char* name, auto member, const char* flag, const char* help) {
    using Field = std::remove_reference_t<decltype(c.*member)>;
    const auto offset = static_cast<size_t>(reinterpret_cast<const char*>(&(c.*member)) - reinterpret_cast<const char*>(&c));
    spans.push_back({offset, sizeof(Field), alignof(Field), name});
    EXPECT_TRUE(names.insert(name).second) << "two entries named " << name;
    if (*flag != '\0') {
      EXPECT_TRUE(flags.insert(flag).second) << "two entries with flag " << flag;
    }
    EXPECT_GT(std::strlen(help), 0u) << name;
  });
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.offset < b.offset; });
  size_t end = 0;
  for (const Span& s : spans) {
    EXPECT_EQ(s.offset, align_up(end, s.alignment))
        << "bytes " << end << ".." << s.offset << " before '" << s.name
        << "' hold a field of EngineConfig that visit_hyperparameters does not list";
    end = s.offset + s.size;
  }
  EXPECT_EQ(sizeof(EngineConfig), align_up(end, alignof(EngineConfig)))
      << "EngineConfig ends with a field that visit_hyperparameters does not list";
}

TEST(Hyperparameters, FlagsAreTheCommandLinesSpelling) {
  visit_hyperparameters([&](const char* name, auto, const char* flag, const char*) {
    const std::string f = flag;
    if (f.empty()) return;
    EXPECT_EQ(f.rfind("--", 0), 0u) << name;
    EXPECT_EQ(f.find('_'), std::string::npos) << name << ": flags use dashes";
  });
}

}  // namespace
}  // namespace den::engine
